/** Shared types and helpers of the benchmark harness (bench/run.ts). */
import { performance } from "node:perf_hooks";
import { Redis } from "iovalkey";
import { round, summarize, type Summary } from "./stats.js";

/** The Valkey/Redis server both systems share, and what a system needs to know about it. */
export interface BenchServer {
  /** redis://127.0.0.1:port */
  readonly url: string;
  readonly host: string;
  readonly port: number;
}

export interface DrainParams {
  /** Executions/jobs pre-created before any consumer starts. */
  readonly n: number;
  /** Consumer slots (BullMQ worker concurrency, FlowFabric maxConcurrentTasks). */
  readonly concurrency: number;
  /** Give up after this long (ms). */
  readonly timeoutMs: number;
}

export interface DrainResult {
  readonly n: number;
  readonly concurrency: number;
  /** Time to pre-create the N items (not part of the throughput). */
  readonly precreateMs: number;
  /** From the consumer's start (connect/creation) to the last completion committed. */
  readonly drainMs: number;
  readonly jobsPerSec: number;
  /** Extra per-system figures (e.g. when the last handler returned). */
  readonly extra?: Record<string, number>;
}

export interface SteadyParams {
  /** Offered load, items per second. */
  readonly rate: number;
  /** How long the measured load is offered (ms), after the warm-up. */
  readonly durationMs: number;
  /** Load is first offered for warmupMs at the same rate; those samples are left out. */
  readonly warmupMs: number;
  /** Consumer slots. */
  readonly concurrency: number;
  /** Give up waiting for the last items after this long past the end of the offering (ms). */
  readonly settleTimeoutMs: number;
}

export interface SteadyResult {
  readonly rate: number;
  readonly durationMs: number;
  readonly concurrency: number;
  /** Items created (offered, warm-up included) and started by a handler. */
  readonly offered: number;
  readonly started: number;
  readonly createErrors: number;
  /** Rate actually offered (warm-up included). */
  readonly achievedRate: number;
  /** Create (just before the create call) to handler start, in ms, warm-up excluded. */
  readonly latencyMs: Summary;
  /** Create call round trip, in ms, warm-up excluded. */
  readonly createRttMs: Summary;
}

/** One system under test. Each scenario runs on a freshly flushed server. */
export interface BenchSystem {
  readonly name: string;
  drain(server: BenchServer, params: DrainParams): Promise<DrainResult>;
  steady(server: BenchServer, params: SteadyParams): Promise<SteadyResult>;
}

export const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The payload both systems carry: a sequence number and the creation time (performance.now()). */
export interface BenchPayload {
  readonly s: number;
  readonly t: number;
}

export function encodePayload(p: BenchPayload): Buffer {
  return Buffer.from(JSON.stringify(p));
}

export function decodePayload(bytes: Uint8Array): BenchPayload {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as BenchPayload;
}

/** Rejects after ms with a message naming what timed out. */
export async function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise with its resolve/reject exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** Runs fn(i) for i in [0, n) with at most `parallel` calls in flight. */
export async function forEachParallel(n: number, parallel: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(parallel, n) }, async () => {
    while (next < n) await fn(next++);
  });
  await Promise.all(lanes);
}

/**
 * Offers `create` calls at a fixed rate for durationMs (open loop: calls are not awaited before
 * the next is due, up to maxInFlight outstanding). Returns per-call round trips and counts.
 */
export async function offerLoad(
  rate: number,
  durationMs: number,
  create: (seq: number, createdAt: number) => Promise<void>,
  maxInFlight = 2000,
): Promise<{ offered: number; errors: number; elapsedMs: number; rtts: Float64Array; createdAt: Float64Array; firstError?: string }> {
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const rtts = new Float64Array(total).fill(NaN);
  const createdAt = new Float64Array(total).fill(NaN);
  let sent = 0;
  let inFlight = 0;
  let errors = 0;
  let firstError: string | undefined;
  const allDone = deferred();
  let settled = 0;
  const start = now();
  const fire = (seq: number) => {
    const t = now();
    createdAt[seq] = t;
    inFlight++;
    create(seq, t).then(
      () => { rtts[seq] = now() - t; },
      (err: unknown) => { errors++; firstError ??= String(err); },
    ).finally(() => {
      inFlight--;
      if (++settled === total) allDone.resolve();
    });
  };
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
    while (sent < due && inFlight < maxInFlight) fire(sent++);
    if (sent < total) await sleep(1);
  }
  const elapsedMs = now() - start;
  await allDone.promise;
  return { offered: total, errors, elapsedMs, rtts, createdAt, ...(firstError ? { firstError } : {}) };
}

/** Items offered in a steady-state run: warm-up plus measured period. */
export function steadyTotal(params: SteadyParams): number {
  return Math.max(1, Math.round((params.rate * (params.warmupMs + params.durationMs)) / 1000));
}

/** Offers the steady-state load (warm-up plus measured period) through create. */
export function offerSteady(params: SteadyParams, create: (seq: number, createdAt: number) => Promise<void>): ReturnType<typeof offerLoad> {
  return offerLoad(params.rate, params.warmupMs + params.durationMs, create);
}

/** Builds a SteadyResult from per-sequence start latencies (NaN = never started). */
export function steadyResult(
  params: SteadyParams,
  offer: { offered: number; errors: number; elapsedMs: number; rtts: Float64Array; createdAt: Float64Array },
  startLatency: Float64Array,
): SteadyResult {
  const t0 = offer.createdAt[0] ?? 0;
  const lat: number[] = [];
  const rtt: number[] = [];
  let started = 0;
  for (let i = 0; i < offer.offered; i++) {
    const l = startLatency[i] as number;
    if (!Number.isNaN(l)) started++;
    if ((offer.createdAt[i] as number) - t0 < params.warmupMs) continue;
    if (!Number.isNaN(l)) lat.push(l);
    const r = offer.rtts[i] as number;
    if (!Number.isNaN(r)) rtt.push(r);
  }
  return {
    rate: params.rate,
    durationMs: params.durationMs,
    concurrency: params.concurrency,
    offered: offer.offered,
    started,
    createErrors: offer.errors,
    achievedRate: round(offer.offered / (offer.elapsedMs / 1000), 1),
    latencyMs: roundSummary(summarize(lat)),
    createRttMs: roundSummary(summarize(rtt)),
  };
}

function roundSummary(s: Summary): Summary {
  return {
    count: s.count, min: round(s.min), mean: round(s.mean), p50: round(s.p50), p90: round(s.p90),
    p99: round(s.p99), p999: round(s.p999), max: round(s.max),
  };
}

/** Server-side counters read around a scenario (INFO stats / cpu). */
export interface ServerCounters {
  readonly commands: number;
  readonly cpuSec: number;
}

/** An admin connection to the shared server: flush, AOF rewrite, counters. */
export class ServerAdmin {
  readonly #redis: Redis;

  constructor(url: string) {
    this.#redis = new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: false });
  }

  async version(): Promise<string> {
    const info = await this.#redis.info("server");
    return /(?:valkey|redis)_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  }

  async config(name: string): Promise<string> {
    const res = (await this.#redis.call("CONFIG", "GET", name)) as string[];
    return res[1] ?? "";
  }

  /** FLUSHALL (data only: a loaded function library stays), then compact the AOF so it starts small. */
  async reset(): Promise<void> {
    await this.#redis.flushall();
    await this.#waitRewriteIdle();
    await this.#redis.bgrewriteaof();
    await sleep(20);
    await this.#waitRewriteIdle();
  }

  async counters(): Promise<ServerCounters> {
    const info = await this.#redis.info();
    const num = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, "m").exec(info)?.[1] ?? NaN);
    return {
      commands: num("total_commands_processed"),
      cpuSec: num("used_cpu_user") + num("used_cpu_sys"),
    };
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #waitRewriteIdle(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = await this.#redis.info("persistence");
      const busy = /aof_rewrite_in_progress:1|aof_rewrite_scheduled:1|rdb_bgsave_in_progress:1/.test(info);
      if (!busy) return;
      if (Date.now() > deadline) throw new Error("AOF rewrite did not finish within 60 s");
      await sleep(20);
    }
  }
}
