/**
 * `npx tsx bench/cpu-split.ts [n=20000] [concurrency=10]`: where a drained execution's CPU goes.
 * Starts a server (AOF everysec), a gateway in its own process and a worker in this one; drains
 * a warm-up batch, then n pre-created no-op executions, and prints jobs/s and the CPU time per
 * execution (the drain only, not the pre-creation) of the server, the gateway process and the
 * worker process. Extra node flags for the
 * gateway (e.g. "--cpu-prof") go in BENCH_GATEWAY_NODE_ARGS; BENCH_TRACING=1 traces in both
 * processes as `npm run bench -- --tracing` does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "iovalkey";
import { startServerProcess } from "../gateway/src/embedded/server-process.js";
import { FlowFabricClient, FlowFabricWorker } from "@flowfabric/sdk";
import { processCpuMicros } from "./cpu.js";
import { startGatewayProcess } from "./gateway-process.js";
import { enableTracing, gatewayNodeArgs, tracingRequested } from "./tracing.js";

const LANE = "cpu-split";

async function serverCpuMicros(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

async function precreate(client: FlowFabricClient, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    await client.createExecutions(Array.from({ length: Math.min(1000, n - i) }, () => ({ lane: LANE, kind: "noop", input: "x" })));
  }
}

/** Runs n pre-created executions to completion with one worker; returns the seconds it took. */
async function drain(address: string, n: number, concurrency: number): Promise<number> {
  const t0 = performance.now();
  let handled = 0;
  let allHandled!: () => void;
  const done = new Promise<void>((resolve) => (allHandled = resolve));
  const worker = await FlowFabricWorker.connect({ address, workerId: "cpu-split", lanes: [LANE], maxConcurrentTasks: concurrency });
  void worker.run(async () => {
    if (++handled === n) allHandled();
    return "ok";
  });
  await done;
  const seconds = (performance.now() - t0) / 1000;
  await worker.close({ graceMs: 5000 });
  return seconds;
}

async function main(): Promise<void> {
  if (tracingRequested()) enableTracing();
  const n = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 10);
  const dataDir = mkdtempSync(join(tmpdir(), "ff-cpu-split-"));
  const server = await startServerProcess({ port: 0, dataDir, persistence: true });
  const redis = new Redis(server.url);
  const gateway = await startGatewayProcess(server.url, {}, gatewayNodeArgs());
  const client = await FlowFabricClient.connect({ address: gateway.grpcAddress });
  try {
    await precreate(client, 2000);
    await drain(gateway.grpcAddress, 2000, concurrency); // warm-up
    await precreate(client, n);
    const server0 = await serverCpuMicros(redis);
    const gateway0 = processCpuMicros(gateway.pid);
    const worker0 = process.cpuUsage();
    const seconds = await drain(gateway.grpcAddress, n, concurrency);
    const worker1 = process.cpuUsage();
    const per = (micros: number) => Math.round((micros / n) * 10) / 10;
    console.log(JSON.stringify({
      n, concurrency, jobsPerSec: Math.round(n / seconds),
      cpuUsPerExecution: {
        server: per((await serverCpuMicros(redis)) - server0),
        gateway: per(processCpuMicros(gateway.pid) - gateway0),
        worker: per(worker1.user + worker1.system - worker0.user - worker0.system),
      },
    }));
  } finally {
    client.close();
    await gateway.close();
    redis.disconnect();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1); });
