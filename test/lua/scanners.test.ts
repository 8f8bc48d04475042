import { buildScan } from "../../gateway/src/engine/fcall/scanners.js";
import { PartitionKeys, queueKey } from "../../gateway/src/engine/keys.js";
import type { EngineEvent } from "../../gateway/src/engine/types.js";
import { claimReq, createAndClaim, createInPartition, expectCode, keysOf, rawCall, record, spec, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
const events: EngineEvent[] = [];
beforeAll(async () => {
  fx = await startEngine();
  await fx.backend.subscribe((e) => events.push(e));
});
afterAll(async () => { await fx.stop(); });

async function waitFor<T>(find: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = find();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("event not seen");
}

/** Makes a lease look expired (record and index). */
async function expireLease(id: string): Promise<void> {
  const { k, uuid } = keysOf(id);
  await fx.redis.hset(k.core(uuid), "lexp", "1");
  await fx.redis.zadd(k.leases(), 1, uuid);
}

describe("ff_expire_leases", () => {
  test("requeues with the original score, new attempt of type reclaim, holder told, wake sent", async () => {
    const a = await createAndClaim(fx, { maxReclaims: 2 });
    const before = await record(fx, a.id);
    await expireLease(a.id);
    expect(await fx.backend.expireLeases(a.partition, 10)).toEqual({ processed: 1, more: false });
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "pending_retry_attempt", "waiting"]);
    const r = await record(fx, a.id);
    expect(r).toMatchObject({ reclaims: "1", pend: "reclaim", lid: "", epoch: "1", aid: a.grant.fence.attemptId });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("reclaimed");
    expect(await fx.redis.zscore(k.eligible(a.spec.namespace, a.spec.lane), uuid)).toBe(before.score);
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    const lost = await waitFor(() => events.find((e) => e.type === "lost" && e.executionId === a.id));
    expect(lost).toEqual({ type: "lost", executionId: a.id, leaseId: a.grant.fence.leaseId, reason: "LEASE_EXPIRED" });
    const wake = await waitFor(() => events.find((e) => e.type === "wake" && e.namespace === a.spec.namespace && e.position.score === Number(before.score)));
    expect(wake).toMatchObject({ partition: a.partition, lane: a.spec.lane });
    // the old holder is fenced out with LEASE_EXPIRED
    await expectCode(fx.backend.complete(a.grant.fence, undefined), "LEASE_EXPIRED");
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g).toMatchObject({ attemptIndex: 1, resumed: false });
    expect(await fx.redis.hget(`${k.core(uuid)}:a:1`, "type")).toBe("reclaim");
    // a stale holder of the old lease is now STALE_LEASE
    await expectCode(fx.backend.complete(a.grant.fence, undefined), "STALE_LEASE");
  });

  test("reclaim cap reached -> terminal failed", async () => {
    const a = await createAndClaim(fx, { maxReclaims: 1 });
    await expireLease(a.id);
    await fx.backend.expireLeases(a.partition, 10);
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    await expireLease(a.id);
    await fx.backend.expireLeases(a.partition, 10);
    expect(await stateVector(fx, a.id)).toEqual(["terminal", "unowned", "not_applicable", "none", "failed", "attempt_terminal", "failed"]);
    expect(await record(fx, a.id)).toMatchObject({ fail_reason: "lease expired; reclaim cap reached", fail_cat: "lease_expired", reclaims: "1" });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:1`, "state")).toBe("ended_failure");
    await expectCode(fx.backend.complete(g.fence, undefined), "EXECUTION_NOT_ACTIVE");
  });

  test("leases not yet due, renewed or stale entries are left or cleaned; batch reports more", async () => {
    const a = await createAndClaim(fx);
    const { k, uuid } = keysOf(a.id);
    // index says due, record says renewed: re-scored, not expired
    await fx.redis.zadd(k.leases(), 1, uuid);
    await fx.redis.zadd(k.leases(), 1, "00000000-0000-4000-8000-00000000dead");
    expect(await fx.backend.expireLeases(a.partition, 10)).toEqual({ processed: 0, more: false });
    expect(await fx.redis.zscore(k.leases(), uuid)).toBe((await record(fx, a.id)).lexp);
    expect(await fx.redis.zscore(k.leases(), "00000000-0000-4000-8000-00000000dead")).toBeNull();
    const p = new PartitionKeys(3);
    const s = spec();
    await createInPartition(fx, 3, [s, s, s]);
    const gs = (await fx.backend.claim(claimReq(s, 3))).grants;
    for (const g of gs) await expireLease(g.fence.executionId);
    expect(await fx.backend.expireLeases(3, 2)).toEqual({ processed: 2, more: true });
    expect(await fx.backend.expireLeases(3, 2)).toEqual({ processed: 1, more: false });
    expect(await fx.redis.zcard(p.eligible(s.namespace, s.lane))).toBe(3);
  });
});

describe("ff_promote_delayed", () => {
  test("due delayed -> waiting with the original score (keeps its place), wake; not due stays", async () => {
    const s = spec();
    const [early, late] = await createInPartition(fx, 2, [{ ...s, delayUntilMs: Date.now() + 60_000 }, s]);
    const k = new PartitionKeys(2);
    const eu = keysOf(early!).uuid;
    const [future] = await createInPartition(fx, 2, [{ ...s, delayUntilMs: Date.now() + 60_000 }]);
    await fx.redis.zadd(k.delayed(), 1, eu);
    expect(await fx.backend.promoteDelayed(2, 10)).toEqual({ processed: 1, more: false });
    expect(await stateVector(fx, early!)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "pending_first_attempt", "waiting"]);
    expect(await fx.redis.zscore(k.eligible(s.namespace, s.lane), eu)).toBe((await record(fx, early!)).score);
    expect(await fx.redis.zscore(k.delayed(), keysOf(future!).uuid)).not.toBeNull();
    const order = (await fx.backend.claim(claimReq(s, 2))).grants.map((g) => g.fence.executionId);
    expect(order).toEqual([early, late]);
    await waitFor(() => events.find((e) => e.type === "wake" && e.namespace === s.namespace && e.partition === 2));
  });

  test("stale entries are dropped; batch full reports more", async () => {
    const k = new PartitionKeys(1);
    await fx.redis.zadd(k.delayed(), 1, "00000000-0000-4000-8000-00000000dead", 2, "00000000-0000-4000-8000-00000000beef");
    expect(await fx.backend.promoteDelayed(1, 1)).toEqual({ processed: 0, more: true });
    expect(await fx.backend.promoteDelayed(1, 1)).toEqual({ processed: 0, more: true });
    expect(await fx.backend.promoteDelayed(1, 1)).toEqual({ processed: 0, more: false });
    expect(await fx.redis.zcard(k.delayed())).toBe(0);
  });
});

describe("ff_expire_timeouts", () => {
  test("deadline passed on a leased execution: expired, indexes cleaned, holder told", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 60_000 });
    const { k, uuid } = keysOf(a.id);
    await fx.redis.hset(k.core(uuid), "deadline", "1");
    await fx.redis.zadd(k.timeouts(), 1, uuid);
    expect(await fx.backend.expireTimeouts(a.partition, 10)).toEqual({ processed: 1, more: false });
    expect(await stateVector(fx, a.id)).toEqual(["terminal", "unowned", "not_applicable", "none", "expired", "attempt_terminal", "expired"]);
    expect(await record(fx, a.id)).toMatchObject({ fail_reason: "deadline" });
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("ended_expired");
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBeNull();
    const ev = await waitFor(() => events.find((e) => e.type === "cancel" && e.executionId === a.id));
    expect(ev).toMatchObject({ leaseId: a.grant.fence.leaseId, by: "deadline" });
    await expectCode(fx.backend.complete(a.grant.fence, undefined), "EXECUTION_NOT_ACTIVE");
  });

  test("deadline passed on a waiting execution: expired, out of the queue", async () => {
    const [c] = await fx.backend.create([spec({ deadlineAtMs: Date.now() + 60_000 })]);
    const { k, uuid } = keysOf(c!.executionId);
    const s = await record(fx, c!.executionId);
    await fx.redis.hset(k.core(uuid), "deadline", "1");
    await fx.redis.zadd(k.timeouts(), 1, uuid);
    await fx.backend.expireTimeouts(keysOf(c!.executionId).partition, 10);
    expect((await record(fx, c!.executionId)).pstate).toBe("expired");
    expect(await fx.redis.zscore(k.eligible(s.ns!, s.lane!), uuid)).toBeNull();
  });

  test("attempt timeout on an active execution", async () => {
    const a = await createAndClaim(fx, { attemptTimeoutMs: 50_000 });
    const { k, uuid } = keysOf(a.id);
    await fx.redis.hset(k.core(uuid), "astarted", String(Date.now() - 60_000));
    await fx.redis.zadd(k.timeouts(), 1, uuid);
    expect(await fx.backend.expireTimeouts(a.partition, 10)).toEqual({ processed: 1, more: false });
    expect(await record(fx, a.id)).toMatchObject({ pstate: "expired", fail_reason: "attempt_timeout" });
    const ev = await waitFor(() => events.find((e) => e.type === "cancel" && e.executionId === a.id));
    expect(ev).toMatchObject({ by: "attempt_timeout" });
  });

  test("not yet due entries are re-scored; stale ones removed", async () => {
    const a = await createAndClaim(fx, { attemptTimeoutMs: 50_000, deadlineAtMs: Date.now() + 100_000 });
    const { k, uuid } = keysOf(a.id);
    const r = await record(fx, a.id);
    await fx.redis.zadd(k.timeouts(), 1, uuid, 2, "00000000-0000-4000-8000-00000000dead");
    expect(await fx.backend.expireTimeouts(a.partition, 10)).toEqual({ processed: 0, more: false });
    expect(Number(await fx.redis.zscore(k.timeouts(), uuid))).toBe(Number(r.astarted) + 50_000);
    expect(await fx.redis.zscore(k.timeouts(), "00000000-0000-4000-8000-00000000dead")).toBeNull();
    // attempt no longer running (delayed): only the deadline is left
    await fx.backend.delay(a.grant.fence, Date.now() + 60_000);
    await fx.redis.zadd(k.timeouts(), 1, uuid);
    await fx.backend.expireTimeouts(a.partition, 10);
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBe(r.deadline);
  });
});

describe("scanner arguments", () => {
  test.each(["ff_expire_leases", "ff_promote_delayed", "ff_expire_timeouts"])("%s: INVALID_ARGUMENT", async (fn) => {
    const good = buildScan(0, 10);
    expect((await rawCall(fx, fn, good.keys, ["0"])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    expect((await rawCall(fx, fn, good.keys, ["many"])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    expect((await rawCall(fx, fn, ["ff:p0:"], ["1"])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    expect((await rawCall(fx, fn, good.keys, [])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });
});

describe("ff_lane_heads", () => {
  test("head score of every queue with eligible work", async () => {
    const s1 = spec();
    const s2 = spec({ lane: "other" });
    const [a] = await createInPartition(fx, 0, [{ ...s1, priority: 3 }]);
    const [b] = await createInPartition(fx, 0, [s2]);
    const heads = await fx.backend.laneHeads(0);
    expect(heads.get(queueKey(s1.namespace, s1.lane))).toEqual({ score: Number((await record(fx, a!)).score), member: a!.split(":")[1] });
    expect(heads.get(queueKey(s2.namespace, "other"))).toEqual({ score: Number((await record(fx, b!)).score), member: b!.split(":")[1] });
    await fx.backend.claim(claimReq(s2, 0));
    expect((await fx.backend.laneHeads(0)).has(queueKey(s2.namespace, "other"))).toBe(false);
    expect((await rawCall(fx, "ff_lane_heads", ["x"], [])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });

  test("a queue with nothing eligible left leaves the lane set; its next eligible execution brings it back", async () => {
    const s = spec({ lane: "one-off", retry: { maxRetries: 1, backoff: "fixed", initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0, retryableCategories: [] } });
    await createInPartition(fx, 1, [s]);
    const lanes = new PartitionKeys(1).lanes();
    const q = queueKey(s.namespace, s.lane);
    expect(await fx.redis.sismember(lanes, q)).toBe(1);
    const [grant] = (await fx.backend.claim(claimReq(s, 1))).grants;
    await fx.backend.laneHeads(1);
    expect(await fx.redis.sismember(lanes, q)).toBe(0);
    // A retry with no backoff goes straight back to eligible: listed again, and the scan sees it.
    await fx.backend.fail(grant!.fence, "flaky", "io", 0);
    expect(await fx.redis.sismember(lanes, q)).toBe(1);
    expect((await fx.backend.laneHeads(1)).has(q)).toBe(true);
  });
});
