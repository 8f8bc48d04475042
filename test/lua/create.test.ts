import { EngineError } from "../../gateway/src/engine/errors.js";
import { eligibleScore, idempotencyPartition, queueKey } from "../../gateway/src/engine/keys.js";
import { buildCreate } from "../../gateway/src/engine/fcall/create.js";
import { keysOf, record, spec, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

describe("ff_create", () => {
  test("writes a waiting execution: record, input, tags, queue index, lanes set", async () => {
    const s = spec({ priority: 7, tags: { a: "1", b: "two" }, requiredCapabilities: ["gpu", "x"], traceparent: "00-abc-def-01" });
    const before = Date.now();
    const [out] = await fx.backend.create([s]);
    expect(out).toMatchObject({ duplicate: false, state: "waiting" });
    const id = out!.executionId;
    const { k, uuid } = keysOf(id);
    const r = await record(fx, id);
    expect(await stateVector(fx, id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "pending_first_attempt", "waiting"]);
    expect(r).toMatchObject({ id, ns: s.namespace, lane: "default", kind: "test.kind", prio: "7", caps: "gpu,x", aidx: "-1", max_reclaims: "10", tp: "00-abc-def-01", pend: "initial" });
    // Default-valued fields are not written (a missing field reads as its default): a lean record.
    for (const absent of ["acount", "epoch", "lid", "aid", "retries", "started", "ended", "deadline", "rp_max", "smode", "prog_msg", "fopen"]) {
      expect(r).not.toHaveProperty(absent);
    }
    expect((await fx.backend.describe(id)).attemptCount).toBe(0);
    const created = Number(r.created);
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    expect(r.score).toBe(String(eligibleScore(7, created)));
    expect(await fx.redis.get(k.input(uuid))).toBe("input");
    expect(await fx.redis.hgetall(k.tags(uuid))).toEqual({ a: "1", b: "two" });
    expect(await fx.redis.zscore(k.eligible(s.namespace, s.lane), uuid)).toBe(r.score);
    expect(await fx.redis.sismember(k.lanes(), queueKey(s.namespace, s.lane))).toBe(1);
    expect(await fx.redis.zscore(k.delayed(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBeNull();
  });

  test("a future delay_until makes it delayed; a deadline indexes timeouts", async () => {
    const until = Date.now() + 60_000;
    const deadline = Date.now() + 120_000;
    const [out] = await fx.backend.create([spec({ delayUntilMs: until, deadlineAtMs: deadline })]);
    expect(out!.state).toBe("delayed");
    const { k, uuid } = keysOf(out!.executionId);
    expect(await stateVector(fx, out!.executionId)).toEqual(["runnable", "unowned", "delayed", "waiting_for_delay", "none", "pending_first_attempt", "delayed"]);
    expect(await fx.redis.zscore(k.delayed(), uuid)).toBe(String(until));
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBe(String(deadline));
  });

  test("idempotency key: same id, duplicate, current state, pinned partition, 24 h TTL", async () => {
    const s = spec({ idempotencyKey: "order-42" });
    const [a] = await fx.backend.create([s]);
    const [b] = await fx.backend.create([{ ...s, input: Buffer.from("other") }]);
    expect(b).toEqual({ executionId: a!.executionId, duplicate: true, state: "waiting" });
    const { k, partition } = keysOf(a!.executionId);
    expect(partition).toBe(idempotencyPartition(s.namespace, "order-42", 4));
    const ttl = await fx.redis.pttl(k.idempotency(s.namespace, "order-42"));
    expect(ttl).toBeGreaterThan(86_000_000);
    expect(ttl).toBeLessThanOrEqual(86_400_000);
  });

  test("many specs in one call, results in input order", async () => {
    const specs = Array.from({ length: 50 }, (_, i) => spec({ kind: `k${i}` }));
    const outs = await fx.backend.create(specs);
    expect(outs).toHaveLength(50);
    const kinds = await Promise.all(outs.map(async (o) => (await record(fx, o.executionId)).kind));
    expect(kinds).toEqual(specs.map((s) => s.kind));
  });

  test("maxReclaims is kept when set", async () => {
    const [out] = await fx.backend.create([spec({ maxReclaims: 3 })]);
    expect((await record(fx, out!.executionId)).max_reclaims).toBe("3");
  });

  test("input bytes are stored exactly (all 256 values, invalid UTF-8)", async () => {
    const input = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from([0xc3, 0x28, 0xff, 0xfe])]);
    const [out] = await fx.backend.create([spec({ input })]);
    const { k, uuid } = keysOf(out!.executionId);
    expect(Buffer.compare((await fx.redis.getBuffer(k.input(uuid)))!, input)).toBe(0);
  });

  test.each([
    ["priority", 5, "1001"],
    ["delay_until", 6, "soon"],
    ["deadline", 7, "-1"],
    ["attempt_timeout_ms", 8, "1.5"],
    ["max_reclaims", 9, "nan"],
    ["retry_backoff", 12, "linear"],
    ["retry_jitter", 16, "2"],
    ["retry_multiplier", 15, "inf"],
    ["tag_count", 21, "3"],
  ])("INVALID_ARGUMENT naming %s", async (field, index, value) => {
    const a = buildCreate(0, "00000000-0000-4000-8000-000000000001", spec());
    const argv = [...a.argv];
    argv[index - 1] = value;
    const reply = await fx.redis.call("FCALL", "ff_create", a.keys.length, ...a.keys, ...argv) as unknown[];
    expect(reply.slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    expect(reply).toContain(field === "tag_count" ? "ARGV count" : field);
  });

  test("INVALID_ARGUMENT for a bad key, a namespace with '/', a missing argument", async () => {
    const a = buildCreate(0, "00000000-0000-4000-8000-000000000002", spec());
    const bad = await fx.redis.call("FCALL", "ff_create", 2, "ff:{p:0}:", "ff:{p:1}:e:x", ...a.argv) as unknown[];
    expect(bad.slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    const short = await fx.redis.call("FCALL", "ff_create", 2, ...a.keys, "ns") as unknown[];
    expect(short.slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    await expect(fx.backend.create([spec({ namespace: "a/b" })])).rejects.toBeInstanceOf(EngineError);
  });
});
