import { Redis } from "iovalkey";
import { EngineError } from "../../gateway/src/engine/errors.js";
import { ValkeyBackend } from "../../gateway/src/engine/valkey-backend.js";
import { PartitionKeys, idempotencyPartition, parseExecutionId } from "../../gateway/src/engine/keys.js";
import type { ClaimRequest, CreateSpec, Grant } from "../../gateway/src/engine/types.js";
import { startTestServer, type TestServer } from "./redis.js";

/** A fresh server, a ValkeyBackend on it (4 partitions) and a raw client for inspecting keys. */
export interface EngineFixture {
  readonly server: TestServer;
  readonly backend: ValkeyBackend;
  readonly redis: Redis;
  readonly partitions: number;
  /** Closes the backend and the raw client, then stops the server. */
  stop(): Promise<void>;
}

export async function startEngine(partitions = 4): Promise<EngineFixture> {
  const server = await startTestServer();
  const backend = await ValkeyBackend.connect({ url: server.url, partitions });
  const redis = new Redis(server.url);
  return {
    server, backend, redis, partitions,
    async stop() {
      await backend.close();
      await redis.quit();
      await server.stop();
    },
  };
}

let seq = 0;

/** A CreateSpec with defaults; every call gets its own namespace unless given (isolated keys). */
export function spec(over: Partial<CreateSpec> = {}): CreateSpec {
  return {
    namespace: over.namespace ?? `ns${++seq}`,
    lane: "default",
    kind: "test.kind",
    input: Buffer.from("input"),
    priority: 0,
    delayUntilMs: 0,
    retry: {
      maxRetries: 0, backoff: "fixed", initialDelayMs: 1000, maxDelayMs: 60000, multiplier: 2, jitter: 0,
      retryableCategories: [],
    },
    requiredCapabilities: [],
    tags: {},
    deadlineAtMs: 0,
    attemptTimeoutMs: 0,
    idempotencyKey: "",
    maxReclaims: 0,
    traceparent: "",
    tracestate: "",
    ...over,
  };
}

/** Partition keys and uuid of an execution id. */
export function keysOf(executionId: string, partitions = 4): { k: PartitionKeys; uuid: string; partition: number } {
  const p = parseExecutionId(executionId, partitions);
  if (!p) throw new Error(`bad id ${executionId}`);
  return { k: new PartitionKeys(p.partition), uuid: p.uuid, partition: p.partition };
}

/** A claim request for the queue of `s` in `partition`, with defaults. */
export function claimReq(s: Pick<CreateSpec, "namespace" | "lane">, partition: number, over: Partial<ClaimRequest> = {}): ClaimRequest {
  return {
    partition,
    namespace: s.namespace,
    lane: s.lane,
    count: 10,
    capabilities: [],
    maxScore: Infinity,
    claimant: { sessionId: "sess-1", workerId: "worker-1", workerInstanceId: "inst-1" },
    leaseTtlMs: 30000,
    ...over,
  };
}

/** Creates one execution and claims it; returns the grant. */
export async function createAndClaim(fx: EngineFixture, over: Partial<CreateSpec> = {}, claim: Partial<ClaimRequest> = {}): Promise<{ spec: CreateSpec; id: string; grant: Grant; partition: number }> {
  const s = spec(over);
  const [created] = await fx.backend.create([s]);
  const id = created!.executionId;
  const { partition } = keysOf(id, fx.partitions);
  const out = await fx.backend.claim(claimReq(s, partition, claim));
  const grant = out.grants.find((g) => g.fence.executionId === id);
  if (!grant) throw new Error(`not granted: ${id}`);
  return { spec: s, id, grant, partition };
}

/** The record hash of an execution (raw). */
export async function record(fx: EngineFixture, id: string): Promise<Record<string, string>> {
  const { k, uuid } = keysOf(id, fx.partitions);
  return fx.redis.hgetall(k.core(uuid));
}

/** The state-vector fields of an execution. */
export async function stateVector(fx: EngineFixture, id: string): Promise<string[]> {
  const r = await record(fx, id);
  return [r.phase, r.own, r.elig, r.block, r.outcome, r.astate, r.pstate].map((v) => v ?? "");
}

let pinSeq = 0;

/**
 * Creates specs in one given partition (an idempotency key is chosen to land there), one at a
 * time so their creation times, hence their FIFO order, are distinct.
 */
export async function createInPartition(fx: EngineFixture, partition: number, specs: readonly CreateSpec[]): Promise<string[]> {
  const ids: string[] = [];
  for (const s of specs) {
    let key = "";
    do key = `pin-${++pinSeq}`; while (idempotencyPartition(s.namespace, key, fx.partitions) !== partition);
    ids.push((await fx.backend.create([{ ...s, idempotencyKey: key }]))[0]!.executionId);
    await new Promise((r) => setTimeout(r, 2));
  }
  return ids;
}

/** Expects `p` to reject with an EngineError of `code`; returns its detail. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<Readonly<Record<string, string>>> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe(code);
    return (err as EngineError).detail;
  }
  throw new Error(`expected ${code}, got success`);
}

/** Calls a function raw (no wrapper) and returns the reply array. */
export async function rawCall(fx: EngineFixture, fn: string, keys: readonly string[], argv: readonly (string | Buffer)[]): Promise<unknown[]> {
  return (await fx.redis.call("FCALL", fn, keys.length, ...keys, ...argv)) as unknown[];
}
