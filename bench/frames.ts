/**
 * Output frames benchmark (issue #3; DESIGN §11 target: append -> tail delivery p50 <= 2 ms).
 *
 *   latency     one worker task appends frames open-loop at R frames/s for D ms (after a warm-up);
 *               one consumer tails the attempt's stream through the gateway (FlowFabricClient.tailStream);
 *               delivery latency = tail receipt - the appendFrame call, same process clock.
 *               Default R = 1000 and 10000, D = 3000.
 *   throughput  frames/s one worker task can append (appendFrame over its Session stream, a window of
 *               W appends in flight), 100-byte payloads. Default N = 50000, W = 1000.
 *
 * `runFramesBench(url)` runs both against a Valkey/Redis at `url` (a gateway is started on it);
 * `npx tsx bench/frames.ts [--rates 1000,10000] [--duration-ms 3000] [--n 50000] [--window 1000]
 * [--no-persistence] [--in-process]` starts its own server and prints a table. The gateway runs in
 * its own process (bench/gateway-process.ts) unless --in-process (or BENCH_FF_INPROCESS=1).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess } from "../gateway/src/embedded/server-process.js";
import { startGateway } from "../gateway/src/index.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask } from "@flowfabric/sdk";
import { startGatewayProcess } from "./gateway-process.js";
import { round, summarize } from "./stats.js";

export interface FramesBenchOptions {
  /** Offered append rates, frames/s. */
  readonly rates?: readonly number[];
  /** Measured time per rate, ms (after a 500 ms warm-up). */
  readonly durationMs?: number;
  /** Frames appended by the throughput scenario. */
  readonly n?: number;
  /** Appends in flight in the throughput scenario. */
  readonly window?: number;
  /** Runs the gateway inside this process instead of its own (as deployed). */
  readonly inProcess?: boolean;
}

export interface FramesLatencyResult {
  readonly rate: number;
  readonly frames: number;
  /** Achieved append rate, frames/s. */
  readonly offeredPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface FramesBenchResult {
  readonly latency: FramesLatencyResult[];
  readonly throughput: { readonly frames: number; readonly window: number; readonly framesPerSec: number };
}

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the frame scenarios against the server at `url` with a fresh gateway. */
export async function runFramesBench(url: string, opts: FramesBenchOptions = {}): Promise<FramesBenchResult> {
  const rates = opts.rates ?? [1000, 10_000];
  const durationMs = opts.durationMs ?? 3000;
  const n = opts.n ?? 50_000;
  const window = opts.window ?? 1000;
  const gateway: { grpcAddress: string; close(): Promise<void> } = opts.inProcess === true
    ? await startGateway({ valkeyUrl: url, grpcPort: 0, httpPort: 0, maxStreamFrames: 10_000_000 })
    : await startGatewayProcess(url, { FLOWFABRIC_MAX_STREAM_FRAMES: "10000000" });
  const client = await FlowFabricClient.connect({ address: gateway.grpcAddress });
  const tasks: ClaimedTask[] = [];
  const waiters: ((t: ClaimedTask) => void)[] = [];
  const release = new Map<string, () => void>();
  const worker = await FlowFabricWorker.connect({ address: gateway.grpcAddress, workerId: "frames-bench", lanes: ["frames-bench"], maxConcurrentTasks: 4 });
  void worker.run(async (task) => {
    const waiter = waiters.shift();
    if (waiter) waiter(task);
    else tasks.push(task);
    await new Promise<void>((r) => release.set(task.executionId, r));
  });
  const nextTask = async (): Promise<ClaimedTask> => {
    const p = new Promise<ClaimedTask>((r) => waiters.push(r));
    await client.createExecution({ lane: "frames-bench", kind: "bench", input: "" });
    return tasks.shift() ?? p;
  };
  try {
    const latency: FramesLatencyResult[] = [];
    for (const rate of rates) latency.push(await latencyAt(client, await nextTask(), rate, durationMs, release));
    const throughput = await appendThroughput(await nextTask(), n, window, release);
    return { latency, throughput };
  } finally {
    for (const r of release.values()) r();
    await worker.close({ graceMs: 1000 });
    client.close();
    await gateway.close();
  }
}

async function latencyAt(client: FlowFabricClient, task: ClaimedTask, rate: number, durationMs: number, release: Map<string, () => void>): Promise<FramesLatencyResult> {
  const sentAt = new Map<number, number>();
  const samples: number[] = [];
  const warmupMs = 500;
  let measureFrom = Infinity;
  let received = 0;
  const tail = client.tailStream(task.executionId, task.attemptIndex);
  const consumed = (async () => {
    for await (const f of tail) {
      const t = now();
      const seq = f.seq;
      const s = sentAt.get(seq);
      sentAt.delete(seq);
      if (s !== undefined && s >= measureFrom) samples.push(t - s);
      received++;
    }
  })();
  await sleep(100); // the tail is live
  const payload = Buffer.alloc(100, 120);
  const start = now();
  measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  let sent = 0;
  let outstanding = 0;
  let failure: unknown;
  // Open loop: every ~1 ms tick, append every frame due by now (pipelined, not awaited one by one).
  while (now() < end) {
    const due = Math.floor(((now() - start) / 1000) * rate);
    while (sent < due) {
      sent++;
      sentAt.set(sent, now());
      outstanding++;
      void task.appendFrame("token", payload).then(() => { outstanding--; }, (err: unknown) => { failure ??= err; outstanding--; });
    }
    await sleep(1); // a timer tick, not a spin: the bench process must not eat a core
  }
  while (outstanding > 0) await sleep(1);
  if (failure !== undefined) throw failure;
  const deadline = now() + 10_000;
  while (received < sent && now() < deadline) await sleep(5);
  release.get(task.executionId)?.();
  await consumed;
  const s = summarize(Float64Array.from(samples).sort());
  return {
    rate,
    frames: samples.length,
    offeredPerSec: round((sent / (end - start)) * 1000, 0),
    p50Ms: round(s.p50, 3),
    p99Ms: round(s.p99, 3),
    maxMs: round(s.max, 3),
  };
}

async function appendThroughput(task: ClaimedTask, n: number, window: number, release: Map<string, () => void>): Promise<FramesBenchResult["throughput"]> {
  const payload = Buffer.alloc(100, 121);
  const t0 = now();
  let next = 0;
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < n) {
      next++;
      await task.appendFrame("token", payload);
    }
  }));
  const seconds = (now() - t0) / 1000;
  release.get(task.executionId)?.();
  return { frames: n, window, framesPerSec: round(n / seconds, 0) };
}

/** Markdown table of a result. */
export function renderFramesTable(r: FramesBenchResult): string {
  const lines = ["| scenario | metric | value |", "|---|---|---|"];
  for (const l of r.latency) {
    lines.push(`| append -> tail delivery @ ${l.rate}/s (achieved ${l.offeredPerSec}/s, ${l.frames} samples) | p50 / p99 / max | ${l.p50Ms} / ${l.p99Ms} / ${l.maxMs} ms |`);
  }
  lines.push(`| appends by one worker (window ${r.throughput.window}, ${r.throughput.frames} frames) | frames/s | ${r.throughput.framesPerSec} |`);
  return lines.join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const list = (s: string | undefined): number[] | undefined => s?.split(",").map(Number);
  const persistence = !args.includes("--no-persistence");
  const dataDir = mkdtempSync(join(tmpdir(), "ff-frames-bench-"));
  const server = await startServerProcess({ port: 0, dataDir, persistence });
  try {
    const opts: FramesBenchOptions = {
      ...(list(get("rates")) ? { rates: list(get("rates"))! } : {}),
      ...(get("duration-ms") ? { durationMs: Number(get("duration-ms")) } : {}),
      ...(get("n") ? { n: Number(get("n")) } : {}),
      ...(get("window") ? { window: Number(get("window")) } : {}),
      ...(args.includes("--in-process") || process.env["BENCH_FF_INPROCESS"] === "1" ? { inProcess: true } : {}),
    };
    const result = await runFramesBench(server.url, opts);
    console.log(`frames benchmark (${persistence ? "AOF everysec" : "no persistence"})\n`);
    console.log(renderFramesTable(result));
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
