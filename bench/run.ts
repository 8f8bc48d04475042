/**
 * `npm run bench`: FlowFabric vs BullMQ on one fresh redis-server/valkey-server (AOF everysec) that
 * this process starts on a free loopback port and both systems share; the data is flushed (and the
 * AOF compacted) before every scenario.
 *
 * Scenarios
 *   warm-up 2,000 items drained per system first, not recorded.
 *   drain   N pre-created no-op executions/jobs, one consumer with C slots; jobs/s from the
 *           consumer's start to the last completion committed. Default N=20000, C=10 and 100.
 *   steady  R executions/s offered (open loop) to one consumer with 100 slots for a 1 s warm-up
 *           (left out) and then D ms; create-to-handler-start latency p50/p99 (creation time
 *           carried in the payload, same process clock). Default R=2000, D=5000.
 *
 * Flags (each also an environment variable):
 *   --only flowfabric|bullmq          BENCH_ONLY
 *   --scenarios drain,steady,frames,suspend   BENCH_SCENARIOS (frames, suspend: FlowFabric only)
 *   --n 20000                         BENCH_N
 *   --concurrency 10,100              BENCH_CONCURRENCY
 *   --rates 2000[,5000]               BENCH_RATES
 *   --duration-ms 5000                BENCH_DURATION_MS
 *   --warmup-ms 1000                  BENCH_WARMUP_MS
 *   --steady-concurrency 100          BENCH_STEADY_CONCURRENCY
 *   --out .bench/results.json         BENCH_OUT
 *   --no-persistence                  BENCH_PERSISTENCE=0 (default: AOF everysec)
 *   --tracing                         BENCH_TRACING=1: FlowFabric with tracing on, spans to an
 *                                     in-memory exporter in every process (bench/tracing.ts);
 *                                     compare with a run without it for the overhead
 * Output: a Markdown table on stdout, raw results as JSON in .bench/results.json.
 */
import { renderFramesTable, runFramesBench, type FramesBenchResult } from "./frames.js";
import { renderSuspendTable, runSuspendBench, type SuspendBenchResult } from "./suspend.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { startServerProcess, type ServerProcess } from "../gateway/src/embedded/server-process.js";
import { bullmq } from "./bullmq.js";
import {
  type BenchServer, type BenchSystem, type DrainResult, type ServerCounters, type SteadyResult, ServerAdmin, now,
} from "./common.js";
import { flowfabric } from "./flowfabric.js";
import { round } from "./stats.js";
import { enableTracing, spansInThisProcess, tracingRequested } from "./tracing.js";

interface Config {
  readonly only: string[];
  readonly scenarios: string[];
  readonly n: number;
  readonly concurrency: number[];
  readonly rates: number[];
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly steadyConcurrency: number;
  readonly out: string;
  readonly persistence: boolean;
  readonly tracing: boolean;
}

interface ScenarioRecord {
  readonly system: string;
  readonly scenario: string;
  readonly params: Record<string, number>;
  readonly ok: boolean;
  readonly error?: string;
  readonly result?: DrainResult | SteadyResult;
  /** Server commands and server CPU seconds spent during the scenario (admin calls included). */
  readonly server?: { commands: number; cpuSec: number; commandsPerItem: number };
  readonly wallMs: number;
}

const SYSTEMS: Record<string, BenchSystem> = { flowfabric, bullmq };

function parseArgs(argv: string[]): Config {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === "--no-persistence" || a === "--help" || a === "--tracing") flags.set(a.slice(2), "1");
    else flags.set(a.slice(2), argv[++i] ?? "");
  }
  if (flags.has("help")) {
    console.log("usage: npm run bench -- [--only flowfabric|bullmq] [--scenarios drain,steady,frames,suspend] [--n N] " +
      "[--concurrency 10,100] [--rates 2000] [--duration-ms 5000] [--warmup-ms 1000] [--steady-concurrency 100] " +
      "[--out .bench/results.json] [--no-persistence] [--tracing]");
    process.exit(0);
  }
  const get = (flag: string, env: string, def: string) => flags.get(flag) ?? process.env[env] ?? def;
  const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
  const nums = (s: string, what: string) => list(s).map((x) => positiveInt(x, what));
  const only = list(get("only", "BENCH_ONLY", "flowfabric,bullmq").toLowerCase());
  for (const o of only) if (!SYSTEMS[o]) throw new Error(`--only: unknown system ${o} (flowfabric, bullmq)`);
  const scenarios = list(get("scenarios", "BENCH_SCENARIOS", "drain,steady,frames,suspend"));
  for (const s of scenarios) if (!["drain", "steady", "frames", "suspend"].includes(s)) throw new Error(`--scenarios: unknown scenario ${s}`);
  return {
    only,
    scenarios,
    n: positiveInt(get("n", "BENCH_N", "20000"), "n"),
    concurrency: nums(get("concurrency", "BENCH_CONCURRENCY", "10,100"), "concurrency"),
    rates: nums(get("rates", "BENCH_RATES", process.env["BENCH_RATE"] ?? "2000"), "rates"),
    durationMs: positiveInt(get("duration-ms", "BENCH_DURATION_MS", "5000"), "duration-ms"),
    warmupMs: nonNegativeInt(get("warmup-ms", "BENCH_WARMUP_MS", "1000"), "warmup-ms"),
    steadyConcurrency: positiveInt(get("steady-concurrency", "BENCH_STEADY_CONCURRENCY", "100"), "steady-concurrency"),
    out: resolve(get("out", "BENCH_OUT", ".bench/results.json")),
    persistence: !(flags.has("no-persistence") || process.env["BENCH_PERSISTENCE"] === "0"),
    tracing: flags.has("tracing") || tracingRequested(),
  };
}

function nonNegativeInt(s: string, what: string): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: expected an integer >= 0, got ${JSON.stringify(s)}`);
  return v;
}

function positiveInt(s: string, what: string): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${what}: expected a positive integer, got ${JSON.stringify(s)}`);
  return v;
}

async function runScenario(
  admin: ServerAdmin,
  system: BenchSystem,
  scenario: string,
  params: Record<string, number>,
  items: number,
  fn: () => Promise<DrainResult | SteadyResult>,
): Promise<ScenarioRecord> {
  await admin.reset();
  const before: ServerCounters = await admin.counters();
  const w0 = now();
  const label = `${system.name} ${scenario} ${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(" ")}`;
  process.stderr.write(`bench: ${label} ... `);
  try {
    const result = await fn();
    const after = await admin.counters();
    const commands = after.commands - before.commands;
    const rec: ScenarioRecord = {
      system: system.name, scenario, params, ok: true, result,
      server: { commands, cpuSec: round(after.cpuSec - before.cpuSec, 2), commandsPerItem: round(commands / items, 1) },
      wallMs: round(now() - w0, 0),
    };
    process.stderr.write(`${describe(result)}\n`);
    return rec;
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    process.stderr.write(`FAILED: ${error}\n`);
    return { system: system.name, scenario, params, ok: false, error, wallMs: round(now() - w0, 0) };
  }
}

function describe(r: DrainResult | SteadyResult): string {
  if ("jobsPerSec" in r) return `${r.jobsPerSec} jobs/s (${r.drainMs} ms; pre-create ${r.precreateMs} ms)`;
  return `p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms (${r.started}/${r.offered} started, offered ${r.achievedRate}/s)`;
}

// ---- report ----

const fmtInt = (v: number) => Math.round(v).toLocaleString("en-US");
const fmtMs = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "n/a");

function find(records: ScenarioRecord[], system: string, scenario: string, key: string, value: number): ScenarioRecord | undefined {
  return records.find((r) => r.system === system && r.scenario === scenario && r.params[key] === value);
}

function ratio(ff: number | undefined, bq: number | undefined): string {
  if (ff === undefined || bq === undefined || !Number.isFinite(ff) || !Number.isFinite(bq) || bq === 0) return "n/a";
  return `${(ff / bq).toFixed(2)}×`;
}

function renderTable(cfg: Config, records: ScenarioRecord[]): string {
  const systems = cfg.only.map((o) => (SYSTEMS[o] as BenchSystem).name);
  const ffName = flowfabric.name;
  const bqName = bullmq.name;
  const cell = (rec: ScenarioRecord | undefined, pick: (r: ScenarioRecord) => string) =>
    rec === undefined ? "—" : rec.ok ? pick(rec) : "failed";
  const rows: string[] = [];
  const header = ["scenario", "metric", ...systems];
  const both = systems.includes(ffName) && systems.includes(bqName);
  if (both) header.push("FlowFabric / BullMQ");
  rows.push(`| ${header.join(" | ")} |`);
  rows.push(`|${header.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`);

  if (cfg.scenarios.includes("drain")) {
    for (const c of cfg.concurrency) {
      const recs = systems.map((s) => find(records, s, "drain", "concurrency", c));
      const val = (r: ScenarioRecord | undefined) => (r?.ok ? (r.result as DrainResult).jobsPerSec : undefined);
      const cells = recs.map((r) => cell(r, (x) => fmtInt((x.result as DrainResult).jobsPerSec)));
      const row = [`drain ${fmtInt(cfg.n)}, concurrency ${c}`, "jobs/s (higher is better)", ...cells];
      if (both) row.push(ratio(val(find(records, ffName, "drain", "concurrency", c)), val(find(records, bqName, "drain", "concurrency", c))));
      rows.push(`| ${row.join(" | ")} |`);
    }
  }
  if (cfg.scenarios.includes("steady")) {
    for (const rate of cfg.rates) {
      for (const pct of ["p50", "p99"] as const) {
        const recs = systems.map((s) => find(records, s, "steady", "rate", rate));
        const val = (r: ScenarioRecord | undefined) => (r?.ok ? (r.result as SteadyResult).latencyMs[pct] : undefined);
        const cells = recs.map((r) => cell(r, (x) => fmtMs((x.result as SteadyResult).latencyMs[pct])));
        const row = [
          `steady ${fmtInt(rate)}/s × ${cfg.durationMs / 1000} s, concurrency ${cfg.steadyConcurrency}`,
          `${pct} create→start ms (lower is better)`,
          ...cells,
        ];
        if (both) row.push(ratio(val(find(records, ffName, "steady", "rate", rate)), val(find(records, bqName, "steady", "rate", rate))));
        rows.push(`| ${row.join(" | ")} |`);
      }
    }
  }
  const perItem = records.filter((r) => r.ok && r.server).map((r) =>
    `${r.system} ${r.scenario} ${Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(" ")}: ` +
    `${r.server?.commandsPerItem} server commands/item, server CPU ${r.server?.cpuSec} s`);
  return [rows.join("\n"), "", ...perItem.map((l) => `- ${l}`)].join("\n");
}

// ---- main ----

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  if (cfg.tracing) {
    process.env["BENCH_TRACING"] = "1"; // read by bench/tracing.ts here and passed on to gateway processes
    enableTracing();
  }
  const dataDir = mkdtempSync(join(tmpdir(), "ff-bench-"));
  let server: ServerProcess | undefined;
  let admin: ServerAdmin | undefined;
  const stop = async () => {
    await admin?.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const onSignal = () => { void stop().finally(() => process.exit(130)); };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const records: ScenarioRecord[] = [];
  const startedAt = new Date().toISOString();
  try {
    server = await startServerProcess({ port: 0, dataDir, persistence: cfg.persistence });
    admin = new ServerAdmin(server.url);
    const bench: BenchServer = { url: server.url, host: "127.0.0.1", port: server.port };
    const version = await admin.version();
    const appendonly = await admin.config("appendonly");
    const appendfsync = await admin.config("appendfsync");
    process.stderr.write(`bench: ${server.binary} ${version} on ${server.url}, appendonly=${appendonly} appendfsync=${appendfsync}` +
      `${cfg.tracing ? ", tracing ON (in-memory exporter)" : ""}\n`);

    const systems = cfg.only.map((o) => SYSTEMS[o] as BenchSystem);
    // Warm-up (not recorded): JIT and connection paths of each system, so the first scenario is not the cold one.
    for (const sys of systems) {
      const n = Math.min(2000, cfg.n);
      const rec = await runScenario(admin, sys, "warm-up", { n, concurrency: 10 }, n,
        () => sys.drain(bench, { n, concurrency: 10, timeoutMs: 60_000 }));
      if (!rec.ok) records.push(rec);
    }
    if (cfg.scenarios.includes("drain")) {
      for (const c of cfg.concurrency) {
        for (const sys of systems) {
          const timeoutMs = Math.max(60_000, cfg.n); // ≥ 1,000 items/s or it counts as failed
          records.push(await runScenario(admin, sys, "drain", { n: cfg.n, concurrency: c }, cfg.n,
            () => sys.drain(bench, { n: cfg.n, concurrency: c, timeoutMs })));
        }
      }
    }
    if (cfg.scenarios.includes("steady")) {
      for (const rate of cfg.rates) {
        for (const sys of systems) {
          const items = Math.round((rate * (cfg.warmupMs + cfg.durationMs)) / 1000);
          records.push(await runScenario(admin, sys, "steady", { rate, durationMs: cfg.durationMs }, items,
            () => sys.steady(bench, {
              rate, durationMs: cfg.durationMs, warmupMs: cfg.warmupMs, concurrency: cfg.steadyConcurrency, settleTimeoutMs: 30_000,
            })));
        }
      }
    }

    // Output frames (FlowFabric only: BullMQ has no equivalent): append -> tail latency, append rate.
    let frames: FramesBenchResult | undefined;
    if (cfg.scenarios.includes("frames") && cfg.only.includes("flowfabric")) {
      await admin.reset();
      process.stderr.write("bench: FlowFabric frames ...\n");
      frames = await runFramesBench(server.url);
    }

    // Suspend -> signal -> resume -> complete cycles (FlowFabric only), at 1 and 100 concurrent.
    let suspend: SuspendBenchResult[] | undefined;
    if (cfg.scenarios.includes("suspend") && cfg.only.includes("flowfabric")) {
      await admin.reset();
      process.stderr.write("bench: FlowFabric suspend/resume ...\n");
      suspend = await runSuspendBench(server.url);
    }

    const report = {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", node: process.version, platform: process.platform },
      server: { binary: server.binary, version, appendonly, appendfsync },
      config: { ...cfg, out: undefined },
      records,
      frames,
      suspend,
    };
    mkdirSync(dirname(cfg.out), { recursive: true });
    writeFileSync(cfg.out, `${JSON.stringify(report, null, 2)}\n`);

    console.log(`\n## FlowFabric vs BullMQ (${version}, appendonly=${appendonly} appendfsync=${appendfsync}, ` +
      `${cpus().length} cores, Node ${process.version})\n`);
    console.log(renderTable(cfg, records));
    if (frames) console.log(`\n### Output frames (FlowFabric)\n\n${renderFramesTable(frames)}`);
    if (suspend) console.log(`\n### Suspend → signal → resume → complete (FlowFabric)\n\n${renderSuspendTable(suspend)}`);
    if (cfg.tracing) console.log(`\nTracing on: ${spansInThisProcess()} spans ended in the bench process (producer, worker).`);
    console.log(`\nRaw results: ${cfg.out}`);
  } finally {
    await stop();
  }
  const failed = records.filter((r) => !r.ok);
  if (failed.length > 0) {
    console.error(`\n${failed.length} scenario(s) failed:`);
    for (const f of failed) console.error(`- ${f.system} ${f.scenario}: ${f.error}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
