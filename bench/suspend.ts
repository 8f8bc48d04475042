/**
 * Suspend → signal → resume → complete benchmark (issue #10; DESIGN §11 target: p50 <= 2 ms; the
 * reference reports 9.1 ms on a 16-core server).
 *
 * One cycle: the handler of a pushed task calls `task.suspend` (lease released); as soon as the
 * suspend is answered the waitpoint's token is used to `client.deliverSignal`, which meets the
 * condition; the gateway pushes the execution again (same attempt) and the resumed handler
 * completes it. Cycle latency = from the suspend call to the resumed attempt's complete being
 * answered (one process clock). C chains run closed-loop (each starts its next execution when the
 * previous completes), for `cycles` cycles per concurrency after a warm-up. Default C = 1 and 100.
 *
 * `runSuspendBench(url)` runs it against a Valkey/Redis at `url` (a gateway is started on it);
 * `npx tsx bench/suspend.ts [--concurrency 1,100] [--cycles 2000] [--no-persistence] [--in-process]`
 * starts its own server and prints a table.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess } from "../gateway/src/embedded/server-process.js";
import { startGateway } from "../gateway/src/index.js";
import { FlowFabricClient, FlowFabricWorker } from "@flowfabric/sdk";
import { startGatewayProcess } from "./gateway-process.js";
import { round, summarize } from "./stats.js";

export interface SuspendBenchOptions {
  /** Chains in flight. */
  readonly concurrency?: readonly number[];
  /** Measured cycles per concurrency (after a warm-up of min(200, cycles) cycles). */
  readonly cycles?: number;
  /** Runs the gateway inside this process instead of its own (as deployed). */
  readonly inProcess?: boolean;
}

export interface SuspendBenchResult {
  readonly concurrency: number;
  readonly cycles: number;
  readonly cyclesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const now = (): number => performance.now();

export async function runSuspendBench(url: string, opts: SuspendBenchOptions = {}): Promise<SuspendBenchResult[]> {
  const levels = opts.concurrency ?? [1, 100];
  const cycles = opts.cycles ?? 2000;
  const gateway: { grpcAddress: string; close(): Promise<void> } = opts.inProcess === true
    ? await startGateway({ valkeyUrl: url, grpcPort: 0, httpPort: 0 })
    : await startGatewayProcess(url, {});
  const client = await FlowFabricClient.connect({ address: gateway.grpcAddress });
  const startedAt = new Map<string, number>();
  const finished = new Map<string, (endMs: number) => void>();
  const worker = await FlowFabricWorker.connect({
    address: gateway.grpcAddress, workerId: "suspend-bench", lanes: ["suspend-bench"], maxConcurrentTasks: Math.max(...levels) * 2,
  });
  void worker.run(async (task) => {
    if (!task.resumed) {
      startedAt.set(task.executionId, now());
      const s = await task.suspend({ waitFor: { signals: ["go"] } });
      if (s.status !== "suspended") throw new Error(`unexpected ${s.status}`);
      await client.deliverSignal({ executionId: task.executionId, waitpointId: s.waitpoint.waitpointId, token: s.waitpoint.token, name: "go" });
      return;
    }
    await task.complete();
    finished.get(task.executionId)?.(now());
  });
  const cycle = async (): Promise<number> => {
    const { executionId } = await client.createExecution({ lane: "suspend-bench", kind: "bench", input: "" });
    const end = await new Promise<number>((resolve) => finished.set(executionId, resolve));
    finished.delete(executionId);
    const start = startedAt.get(executionId) ?? end;
    startedAt.delete(executionId);
    return end - start;
  };
  const run = async (c: number, n: number): Promise<{ samples: number[]; wallMs: number }> => {
    const samples: number[] = [];
    let left = n;
    const t0 = now();
    await Promise.all(Array.from({ length: c }, async () => {
      while (left > 0) {
        left--;
        samples.push(await cycle());
      }
    }));
    return { samples, wallMs: now() - t0 };
  };
  try {
    const results: SuspendBenchResult[] = [];
    for (const c of levels) {
      await run(c, Math.min(200, cycles)); // warm-up
      const { samples, wallMs } = await run(c, cycles);
      const s = summarize(samples);
      results.push({ concurrency: c, cycles: s.count, cyclesPerSec: round((s.count / wallMs) * 1000, 0), p50Ms: round(s.p50, 2), p99Ms: round(s.p99, 2), maxMs: round(s.max, 2) });
    }
    return results;
  } finally {
    await worker.close({ graceMs: 1000 });
    client.close();
    await gateway.close();
  }
}

export function renderSuspendTable(results: readonly SuspendBenchResult[]): string {
  const rows = ["| concurrency | cycles | cycles/s | p50 ms | p99 ms | max ms |", "|---:|---:|---:|---:|---:|---:|"];
  for (const r of results) rows.push(`| ${r.concurrency} | ${r.cycles} | ${r.cyclesPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} |`);
  return rows.join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const persistence = !args.includes("--no-persistence");
  const dataDir = mkdtempSync(join(tmpdir(), "ff-suspend-bench-"));
  const server = await startServerProcess({ port: 0, dataDir, persistence });
  try {
    const concurrency = get("concurrency")?.split(",").map(Number);
    const result = await runSuspendBench(server.url, {
      ...(concurrency ? { concurrency } : {}),
      ...(get("cycles") ? { cycles: Number(get("cycles")) } : {}),
      ...(args.includes("--in-process") || process.env["BENCH_FF_INPROCESS"] === "1" ? { inProcess: true } : {}),
    });
    console.log(`suspend → signal → resume → complete (${persistence ? "AOF everysec" : "no persistence"})\n`);
    console.log(renderSuspendTable(result));
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
