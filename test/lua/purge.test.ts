import { DEFAULT_FRAME_LIMITS } from "../../gateway/src/rpc/validate.js";
import { buildScan } from "../../gateway/src/engine/fcall/scanners.js";
import { claimReq, createAndClaim, keysOf, rawCall, record, spec, startEngine, type EngineFixture } from "../support/engine.js";

/** ff_purge_terminal: retention of ended executions. */
let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

const DAY = 86_400_000;

/** Every key of the server that belongs to this execution. */
async function keysOfExecution(id: string): Promise<string[]> {
  const { uuid } = keysOf(id);
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await fx.redis.scan(cursor, "MATCH", `*${uuid}*`, "COUNT", 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== "0");
  return found.sort();
}

/** Backdates an ended execution in the retention index (ended `ageMs` ago). */
async function age(id: string, ageMs: number): Promise<void> {
  const { k, uuid } = keysOf(id);
  await fx.redis.zadd(`${k.prefix}terminal`, Date.now() - ageMs, uuid);
}

/** Creates, runs and completes executions until `n` landed in partition `p`, each ended two days ago. */
async function oldCompleted(p: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < n) {
    const a = await createAndClaim(fx);
    await fx.backend.complete(a.grant.fence, undefined);
    if (a.partition !== p) continue;
    await age(a.id, 2 * DAY);
    ids.push(a.id);
  }
  return ids;
}

/** Purges partition `p` until no batch is full; returns the number purged. */
async function purgeAll(p: number, retentionMs: number, batch = 100): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await fx.backend.purgeTerminal(p, batch, retentionMs);
    total += r.processed;
    if (!r.more) return total;
  }
}

test("every terminal transition files the execution under its end time", async () => {
  const a = await createAndClaim(fx);
  const before = Date.now();
  await fx.backend.complete(a.grant.fence, Buffer.from("r"));
  const { k, uuid } = keysOf(a.id);
  const score = Number(await fx.redis.zscore(`${k.prefix}terminal`, uuid));
  expect(score).toBeGreaterThanOrEqual(before - 1000);
  expect(score).toBe(Number((await record(fx, a.id)).ended));
  // Not terminal yet: not filed.
  const b = await createAndClaim(fx);
  expect(await fx.redis.zscore(`${keysOf(b.id).k.prefix}terminal`, keysOf(b.id).uuid)).toBeNull();
});

test("deletes an old completed execution with its input, result, tags, attempts and frames; nothing else", async () => {
  const a = await createAndClaim(fx, { tags: { t: "1" } });
  await fx.backend.appendFrame(a.grant.fence, { frameType: "log", payload: Buffer.from("x"), correlationId: "", metadata: {}, durable: false }, DEFAULT_FRAME_LIMITS);
  await fx.backend.complete(a.grant.fence, Buffer.from("result"));
  const { uuid } = keysOf(a.id);
  expect((await keysOfExecution(a.id)).map((key) => key.slice(key.indexOf(uuid) + uuid.length))).toEqual(
    ["", ":a:0", ":a:0:frames", ":a:0:frames:meta", ":in", ":out", ":tags"]);
  // Running and waiting executions of the same partition, and a young terminal one, are kept.
  const running = await createAndClaim(fx);
  const young = await createAndClaim(fx);
  await fx.backend.complete(young.grant.fence, undefined);
  await age(a.id, 2 * DAY);
  await age(young.id, 1000);
  const purged = [a, running, young].map((x) => x.partition);
  let total = 0;
  for (const p of new Set(purged)) total += await purgeAll(p, DAY);
  expect(total).toBe(1);
  expect(await keysOfExecution(a.id)).toEqual([]);
  await expect(fx.backend.describe(a.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
  expect((await fx.backend.describe(running.id)).state).toBe("active");
  expect((await fx.backend.describe(young.id)).state).toBe("completed");
});

test("a failed execution with several attempts and a cancelled one that never ran are deleted whole", async () => {
  const s = spec({ retry: { maxRetries: 1, backoff: "fixed", initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0, retryableCategories: [] } });
  const [created] = await fx.backend.create([s]);
  const id = created!.executionId;
  const { partition } = keysOf(id);
  for (let attempt = 0; attempt < 2; attempt++) {
    const out = await fx.backend.claim(claimReq(s, partition));
    await fx.backend.fail(out.grants[0]!.fence, "boom", "bug", 0);
  }
  expect((await fx.backend.describe(id)).state).toBe("failed");
  expect((await keysOfExecution(id)).filter((key) => key.includes(":a:"))).toHaveLength(2);
  const [waiting] = await fx.backend.create([spec()]);
  await fx.backend.cancelByOperator(waiting!.executionId, "not needed", "ops");
  await age(id, 2 * DAY);
  await age(waiting!.executionId, 2 * DAY);
  for (const p of new Set([partition, keysOf(waiting!.executionId).partition])) await purgeAll(p, DAY);
  expect(await keysOfExecution(id)).toEqual([]);
  expect(await keysOfExecution(waiting!.executionId)).toEqual([]);
});

test("batches: `more` while a batch was full; a stale index entry is dropped without touching its record", async () => {
  const p = keysOf((await createAndClaim(fx)).id).partition;
  const ids = await oldCompleted(p, 3);
  // A non-terminal execution wrongly in the index: dropped from it, kept.
  const live = await createAndClaim(fx);
  await age(live.id, 2 * DAY);
  await purgeAll(live.partition, DAY);
  await purgeAll(p, DAY); // whatever other tests left there
  for (const id of ids) expect(await keysOfExecution(id)).toEqual([]);
  expect((await fx.backend.describe(live.id)).state).toBe("active");
  const { k, uuid } = keysOf(live.id);
  expect(await fx.redis.zscore(`${k.prefix}terminal`, uuid)).toBeNull();

  await oldCompleted(p, 3);
  expect(await fx.backend.purgeTerminal(p, 2, DAY)).toEqual({ processed: 2, more: true });
  expect(await fx.backend.purgeTerminal(p, 2, DAY)).toEqual({ processed: 1, more: false });
});

test("an execution with thousands of attempts, and a frame stream past the last attempt, is deleted whole", async () => {
  const a = await createAndClaim(fx);
  await fx.backend.complete(a.grant.fence, undefined);
  const { k, uuid } = keysOf(a.id);
  const core = k.core(uuid);
  // As if it had been reclaimed 3,000 times, with a stream left open on a released claim's index.
  await fx.redis.hset(core, "acount", "3000", "fopen", "3000");
  for (const i of [1, 1499, 2999, 3000]) {
    await fx.redis.hset(`${core}:a:${i}`, "state", "ended_failure");
    await fx.redis.xadd(`${core}:a:${i}:frames`, "*", "t", "log");
    await fx.redis.hset(`${core}:a:${i}:frames:meta`, "frames", "1");
  }
  await age(a.id, 2 * DAY);
  await purgeAll(a.partition, DAY);
  expect(await keysOfExecution(a.id)).toEqual([]);
  expect(await fx.redis.zscore(`${k.prefix}terminal`, uuid)).toBeNull();
});

test("bad arguments: INVALID_ARGUMENT naming the field", async () => {
  const good = buildScan(0, 10, DAY);
  expect((await rawCall(fx, "ff_purge_terminal", good.keys, ["10", "0"])).slice(0, 5)).toEqual([0, "INVALID_ARGUMENT", "invalid retention_ms: 0", "field", "retention_ms"]);
  expect((await rawCall(fx, "ff_purge_terminal", good.keys, ["0", String(DAY)])).slice(3, 5)).toEqual(["field", "batch"]);
  expect((await rawCall(fx, "ff_purge_terminal", good.keys, ["10"])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
});
