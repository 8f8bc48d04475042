/**
 * FlowFabric side of the benchmark: a gateway started in this process on the shared server, a
 * FlowFabricClient producer and a FlowFabricWorker consumer, over loopback gRPC.
 *
 * API used:
 *   gateway/src/index.ts  startGateway({ valkeyUrl, grpcPort: 0, httpPort: 0, partitions? })
 *                         -> { grpcAddress: "host:port", close(graceMs?) }
 *   @flowfabric/sdk       FlowFabricClient.connect({ address }); client.createExecutions(specs),
 *                         client.createExecution(spec), client.getResult(id) -> { state }, client.close()
 *                         FlowFabricWorker.connect({ address, workerId, lanes, maxConcurrentTasks });
 *                         worker.run(handler) (returning completes the task); worker.close()
 */
import { startGateway } from "../gateway/src/index.js";
import { startGatewayProcess } from "./gateway-process.js";
import { asProducer, gatewayNodeArgs } from "./tracing.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask, type ExecutionSpec } from "@flowfabric/sdk";
import {
  type BenchServer, type BenchSystem, type DrainParams, type DrainResult, type SteadyParams, type SteadyResult,
  decodePayload, deferred, encodePayload, now, offerSteady, sleep, steadyResult, steadyTotal, withTimeout,
} from "./common.js";
import { round } from "./stats.js";

const LANE = "bench";
const KIND = "noop";
/** Executions per CreateExecutions call while pre-creating the drain backlog (the RPC's maximum is 1000). */
const PRECREATE_BATCH = 1000;

interface Env {
  readonly gateway: { readonly grpcAddress: string };
  readonly client: FlowFabricClient;
}

function benchPartitions(): number | undefined {
  const v = Number(process.env["BENCH_FF_PARTITIONS"] ?? "");
  return Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * A fresh gateway and client on the (already flushed) server, closed after fn. The gateway runs
 * in its own process, as it is deployed (BullMQ's counterpart, Redis, is a separate process too);
 * BENCH_FF_INPROCESS=1 runs it inside the bench process instead.
 */
async function withGateway<T>(server: BenchServer, fn: (env: Env) => Promise<T>): Promise<T> {
  const partitions = benchPartitions();
  const gateway: { grpcAddress: string; close(): Promise<void> } = process.env["BENCH_FF_INPROCESS"] === "1"
    ? await startGateway({ valkeyUrl: server.url, grpcPort: 0, httpPort: 0, ...(partitions !== undefined ? { partitions } : {}) })
    : await startGatewayProcess(server.url, partitions !== undefined ? { FLOWFABRIC_PARTITIONS: String(partitions) } : {}, gatewayNodeArgs());
  let client: FlowFabricClient | undefined;
  try {
    client = await FlowFabricClient.connect({ address: gateway.grpcAddress });
    return await fn({ gateway, client });
  } finally {
    client?.close();
    await gateway.close();
  }
}

function connectWorker(gateway: Env["gateway"], workerId: string, concurrency: number): Promise<FlowFabricWorker> {
  return FlowFabricWorker.connect({ address: gateway.grpcAddress, workerId, lanes: [LANE], maxConcurrentTasks: concurrency });
}

/** Starts worker.run(handler); settle errors and a failed run reject `failure`. */
function runWorker(worker: FlowFabricWorker, handler: (task: ClaimedTask) => string, failure: (err: unknown) => void): void {
  worker
    .run(async (task) => handler(task), { onSettleError: (err) => failure(err) })
    .catch((err: unknown) => failure(err));
}

export const flowfabric: BenchSystem = {
  name: "FlowFabric",

  drain(server: BenchServer, params: DrainParams): Promise<DrainResult> {
    return withGateway(server, async ({ gateway, client }) => {
      const ids: string[] = new Array<string>(params.n);
      const p0 = now();
      for (let i = 0; i < params.n; i += PRECREATE_BATCH) {
        const specs: ExecutionSpec[] = [];
        for (let s = i; s < Math.min(params.n, i + PRECREATE_BATCH); s++) {
          specs.push({ lane: LANE, kind: KIND, input: encodePayload({ s, t: 0 }) });
        }
        const created = await asProducer(() => client.createExecutions(specs));
        created.forEach((c, k) => { ids[i + k] = c.executionId; });
      }
      const precreateMs = now() - p0;

      // Handler order, to confirm that the last completions were committed (not just returned).
      const handledOrder: number[] = [];
      const allHandled = deferred<number>();
      const t0 = now();
      const worker = await connectWorker(gateway, "bench-drain", params.concurrency);
      try {
        runWorker(worker, (task) => {
          const { s } = decodePayload(task.inputPayload);
          handledOrder.push(s);
          if (handledOrder.length === params.n) allHandled.resolve(now());
          return "ok";
        }, allHandled.reject);
        const lastHandlerAt = await withTimeout("FlowFabric drain", params.timeoutMs, allHandled.promise);
        const tail = handledOrder.slice(-Math.min(params.n, params.concurrency * 2)).map((s) => ids[s] as string);
        const tEnd = await withTimeout("FlowFabric drain: last completions", 30_000, waitCompleted(client, tail));
        const drainMs = tEnd - t0;
        return {
          n: params.n,
          concurrency: params.concurrency,
          precreateMs: round(precreateMs, 1),
          drainMs: round(drainMs, 1),
          jobsPerSec: round(params.n / (drainMs / 1000), 0),
          extra: { lastHandlerMs: round(lastHandlerAt - t0, 1) },
        };
      } finally {
        await worker.close({ graceMs: 5000 });
      }
    });
  },

  steady(server: BenchServer, params: SteadyParams): Promise<SteadyResult> {
    return withGateway(server, async ({ gateway, client }) => {
      const total = steadyTotal(params);
      const startLatency = new Float64Array(total).fill(NaN);
      let started = 0;
      const allStarted = deferred();
      const worker = await connectWorker(gateway, "bench-steady", params.concurrency);
      try {
        runWorker(worker, (task) => {
          const at = now();
          const { s, t } = decodePayload(task.inputPayload);
          startLatency[s] = at - t;
          if (++started === total) allStarted.resolve();
          return "ok";
        }, allStarted.reject);
        await sleep(200); // let the session settle
        const offer = await offerSteady(params, async (s, t) => {
          await asProducer(() => client.createExecution({ lane: LANE, kind: KIND, input: encodePayload({ s, t }) }));
        });
        if (offer.errors > 0) throw new Error(`${offer.errors} creates failed; first: ${offer.firstError ?? "?"}`);
        await withTimeout("FlowFabric steady state: waiting for the last executions", params.settleTimeoutMs, allStarted.promise);
        return steadyResult(params, offer, startLatency);
      } finally {
        await worker.close({ graceMs: 5000 });
      }
    });
  },
};

/** Polls getResult until every id is completed; resolves with the time it saw the last one. */
async function waitCompleted(client: FlowFabricClient, ids: readonly string[]): Promise<number> {
  let pending = [...ids];
  for (;;) {
    const results = await Promise.all(pending.map((id) => client.getResult(id)));
    const failed = results.find((r) => r.state === "failed" || r.state === "cancelled" || r.state === "expired");
    if (failed) throw new Error(`an execution ended ${failed.state}: ${failed.failureReason}`);
    pending = pending.filter((_, i) => results[i]?.state !== "completed");
    if (pending.length === 0) return now();
    await sleep(1);
  }
}
