/**
 * BullMQ side of the benchmark: the peer a TypeScript user would pick instead of FlowFabric,
 * on the same Valkey/Redis server, with its default job options (completed jobs are kept, as
 * FlowFabric keeps results).
 *
 * BullMQ 6 loads `ioredis` lazily as an optional peer; we hand it iovalkey clients instead (the
 * ioredis fork the gateway uses, same API), so no extra dependency is needed.
 */
import { Queue, Worker, type Job } from "bullmq";
import { Redis } from "iovalkey";
import {
  type BenchServer, type BenchSystem, type DrainParams, type DrainResult, type SteadyParams, type SteadyResult,
  deferred, now, offerSteady, steadyResult, steadyTotal, withTimeout,
} from "./common.js";
import { round } from "./stats.js";

const ADD_BULK_CHUNK = 1000;

interface Data {
  readonly s: number;
  readonly t: number;
}

/** A connection for a Queue (commands fail fast) or a Worker (BullMQ requires maxRetriesPerRequest: null). */
function connection(server: BenchServer, forWorker: boolean): Redis {
  return new Redis({
    host: server.host,
    port: server.port,
    maxRetriesPerRequest: forWorker ? null : 20,
    enableReadyCheck: true,
  });
}

async function quit(...clients: Redis[]): Promise<void> {
  await Promise.all(clients.map((c) => c.quit().then(() => undefined, () => c.disconnect())));
}

export const bullmq: BenchSystem = {
  name: "BullMQ",

  async drain(server: BenchServer, params: DrainParams): Promise<DrainResult> {
    const queueName = `bench-drain-c${params.concurrency}`;
    const queueConn = connection(server, false);
    const workerConn = connection(server, true);
    const queue = new Queue<Data>(queueName, { connection: queueConn });
    let worker: Worker<Data> | undefined;
    try {
      await queue.waitUntilReady();
      const p0 = now();
      for (let i = 0; i < params.n; i += ADD_BULK_CHUNK) {
        const jobs = [];
        for (let s = i; s < Math.min(params.n, i + ADD_BULK_CHUNK); s++) jobs.push({ name: "noop", data: { s, t: 0 } });
        await queue.addBulk(jobs);
      }
      const precreateMs = now() - p0;
      const waiting = await queue.getWaitingCount();
      if (waiting !== params.n) throw new Error(`expected ${params.n} waiting jobs, found ${waiting}`);

      let completed = 0;
      let handled = 0;
      let lastHandlerAt = 0;
      const done = deferred<number>();
      const t0 = now();
      worker = new Worker<Data>(
        queueName,
        async () => {
          if (++handled === params.n) lastHandlerAt = now();
          return "ok";
        },
        { connection: workerConn, concurrency: params.concurrency, autorun: false },
      );
      worker.on("completed", () => { if (++completed === params.n) done.resolve(now()); });
      worker.on("failed", (_job, err) => done.reject(err));
      worker.on("error", (err) => done.reject(err));
      void worker.run().catch((err: unknown) => done.reject(err));
      const tEnd = await withTimeout("BullMQ drain", params.timeoutMs, done.promise);
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
      await worker?.close();
      await queue.close();
      await quit(queueConn, workerConn);
    }
  },

  async steady(server: BenchServer, params: SteadyParams): Promise<SteadyResult> {
    const queueName = `bench-steady-${params.rate}`;
    const queueConn = connection(server, false);
    const workerConn = connection(server, true);
    const queue = new Queue<Data>(queueName, { connection: queueConn });
    const total = steadyTotal(params);
    const startLatency = new Float64Array(total).fill(NaN);
    let started = 0;
    const allStarted = deferred();
    const worker = new Worker<Data>(
      queueName,
      async (job: Job<Data>) => {
        startLatency[job.data.s] = now() - job.data.t;
        if (++started === total) allStarted.resolve();
        return "ok";
      },
      { connection: workerConn, concurrency: params.concurrency, autorun: false },
    );
    worker.on("error", (err) => allStarted.reject(err));
    try {
      await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
      void worker.run().catch((err: unknown) => allStarted.reject(err));
      await new Promise((r) => setTimeout(r, 200)); // let the worker reach its blocking wait
      const offer = await offerSteady(params, async (s, t) => {
        await queue.add("noop", { s, t });
      });
      if (offer.errors > 0) throw new Error(`${offer.errors} adds failed; first: ${offer.firstError ?? "?"}`);
      await withTimeout("BullMQ steady state: waiting for the last jobs", params.settleTimeoutMs, allStarted.promise);
      return steadyResult(params, offer, startLatency);
    } finally {
      await worker.close();
      await queue.close();
      await quit(queueConn, workerConn);
    }
  },
};
