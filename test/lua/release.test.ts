import { claimReq, createAndClaim, createInPartition, expectCode, keysOf, record, spec, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

describe("ff_release", () => {
  test("undoes a first claim exactly: back to waiting, same score, attempt record gone, epoch kept", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 100_000, attemptTimeoutMs: 5000 });
    const before = await record(fx, a.id);
    await fx.backend.release(a.grant.fence);
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "pending_first_attempt", "waiting"]);
    const r = await record(fx, a.id);
    expect(r).toMatchObject({ aidx: "-1", acount: "0", aid: "", lid: "", epoch: "1", started: "0", score: before.score });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.exists(`${k.core(uuid)}:a:0`)).toBe(0);
    expect(await fx.redis.zscore(k.eligible(a.spec.namespace, a.spec.lane), uuid)).toBe(before.score);
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBe(r.deadline);
    // the released fence is stale; the next claim gets epoch 2, attempt 0 again
    await expectCode(fx.backend.complete(a.grant.fence, undefined), "EXECUTION_NOT_ACTIVE");
    const again = await fx.backend.claim(claimReq(a.spec, a.partition));
    expect(again.grants[0]).toMatchObject({ attemptIndex: 0, resumed: false });
    expect(again.grants[0]!.fence.leaseEpoch).toBe(2);
    await expectCode(fx.backend.release(a.grant.fence), "STALE_LEASE");
  });

  test("keeps its place in line ahead of later work", async () => {
    const s = spec();
    const [first, second] = await createInPartition(fx, 1, [s, s]);
    const g = (await fx.backend.claim(claimReq(s, 1, { count: 1 }))).grants[0]!;
    expect(g.fence.executionId).toBe(first);
    await fx.backend.release(g.fence);
    const next = await fx.backend.claim(claimReq(s, 1, { count: 2 }));
    expect(next.grants.map((x) => x.fence.executionId)).toEqual([first, second]);
  });

  test("undoing a retry claim restores the previous attempt; a resume goes back to interrupted", async () => {
    const a = await createAndClaim(fx, { retry: { maxRetries: 2, backoff: "fixed", initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0, retryableCategories: [] } });
    await fx.backend.fail(a.grant.fence, "x", "y", 0);
    const g2 = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g2.attemptIndex).toBe(1);
    await fx.backend.release(g2.fence);
    expect(await record(fx, a.id)).toMatchObject({ aidx: "0", acount: "1", aid: a.grant.fence.attemptId, astate: "pending_retry_attempt", epoch: "2" });
    expect(Number((await record(fx, a.id)).started)).toBeGreaterThan(0);
    const g3 = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    // a resume
    await fx.backend.delay(g3.fence, 0);
    const g4 = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g4).toMatchObject({ resumed: true, attemptIndex: 1 });
    await fx.backend.release(g4.fence);
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "attempt_interrupted", "waiting"]);
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:1`, "state")).toBe("interrupted");
    expect(await fx.redis.hget(`${k.core(uuid)}:a:1`, "id")).toBe(g3.fence.attemptId);
  });

  test("fence errors", async () => {
    const a = await createAndClaim(fx);
    await expectCode(fx.backend.release({ ...a.grant.fence, attemptId: "other" }), "STALE_LEASE");
    await expectCode(fx.backend.release({ ...a.grant.fence, executionId: `${a.partition}:00000000-0000-4000-8000-000000000000` }), "NOT_FOUND");
    await expectCode(fx.backend.release({ ...a.grant.fence, executionId: "9:00000000-0000-4000-8000-000000000000" }), "NOT_FOUND");
  });
});
