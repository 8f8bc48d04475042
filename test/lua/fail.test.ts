import { buildFail } from "../../gateway/src/engine/fcall/fail.js";
import type { RetryPolicySpec } from "../../gateway/src/engine/types.js";
import { claimReq, createAndClaim, expectCode, keysOf, rawCall, record, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

function retry(over: Partial<RetryPolicySpec>): RetryPolicySpec {
  return { maxRetries: 3, backoff: "fixed", initialDelayMs: 10_000, maxDelayMs: 60_000, multiplier: 2, jitter: 0, retryableCategories: [], ...over };
}

describe("ff_fail", () => {
  test("no retries left -> terminal failed; attempt ended_failure; indexes cleaned", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 100_000 });
    const out = await fx.backend.fail(a.grant.fence, "boom", "bug", 0.5);
    expect(out).toEqual({ outcome: "failed", retryAtMs: 0, retryCount: 0, reconciled: false });
    expect(await stateVector(fx, a.id)).toEqual(["terminal", "unowned", "not_applicable", "none", "failed", "attempt_terminal", "failed"]);
    expect(await record(fx, a.id)).toMatchObject({ fail_reason: "boom", fail_cat: "bug", lid: "" });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hgetall(`${k.core(uuid)}:a:0`)).toMatchObject({ state: "ended_failure", fail_reason: "boom", fail_cat: "bug" });
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBeNull();
    expect(await fx.backend.getResult(a.id)).toEqual({ state: "failed", failureReason: "boom", failureCategory: "bug" });
  });

  test("fixed backoff retry: delayed, retry count, next claim is a new attempt of type retry", async () => {
    const a = await createAndClaim(fx, { retry: retry({}), deadlineAtMs: Date.now() + 100_000 });
    const before = Date.now();
    const out = await fx.backend.fail(a.grant.fence, "flaky", "io", 0);
    expect(out.outcome).toBe("retry_scheduled");
    expect(out.retryCount).toBe(1);
    expect(out.retryAtMs).toBeGreaterThanOrEqual(before + 9_000);
    expect(out.retryAtMs).toBeLessThanOrEqual(Date.now() + 10_000);
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "delayed", "waiting_for_retry_backoff", "none", "pending_retry_attempt", "delayed"]);
    const r = await record(fx, a.id);
    expect(r).toMatchObject({ retries: "1", epoch: "1", aid: a.grant.fence.attemptId, lid: "", delay_until: String(out.retryAtMs) });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.zscore(k.delayed(), uuid)).toBe(String(out.retryAtMs));
    expect(await fx.redis.zscore(k.leases(), uuid)).toBe(null);
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBe(r.deadline);
    // due now -> promote -> claim: attempt 1 of type retry
    await fx.redis.zadd(k.delayed(), 1, uuid);
    await fx.backend.promoteDelayed(a.partition, 100);
    const c = await fx.backend.claim(claimReq(a.spec, a.partition));
    expect(c.grants[0]).toMatchObject({ attemptIndex: 1, resumed: false, retryCount: 1 });
    expect(c.grants[0]!.fence.leaseEpoch).toBe(2);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:1`, "type")).toBe("retry");
  });

  test("exponential backoff with cap and jitter", async () => {
    const a = await createAndClaim(fx, { retry: retry({ backoff: "exponential", initialDelayMs: 1000, multiplier: 3, maxDelayMs: 5000, jitter: 0.5, maxRetries: 5 }) });
    const { k, uuid } = keysOf(a.id);
    const delays: number[] = [];
    let fence = a.grant.fence;
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const out = await fx.backend.fail(fence, "x", "y", 0.5); // delay * (1 - 0.25)
      delays.push(out.retryAtMs - t0);
      await fx.redis.zadd(k.delayed(), 1, uuid);
      await fx.backend.promoteDelayed(a.partition, 100);
      fence = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!.fence;
    }
    // 1000*0.75, 3000*0.75, min(9000,5000)*0.75 (allow a few ms of clock skew)
    for (const [i, want] of [750, 2250, 3750].entries()) {
      expect(delays[i]).toBeGreaterThanOrEqual(want - 20);
      expect(delays[i]).toBeLessThanOrEqual(want + 20);
    }
  });

  test("retryable categories: other categories fail for good", async () => {
    const a = await createAndClaim(fx, { retry: retry({ retryableCategories: ["io", "net"] }) });
    expect((await fx.backend.fail(a.grant.fence, "bad input", "validation", 0)).outcome).toBe("failed");
    const b = await createAndClaim(fx, { retry: retry({ retryableCategories: ["io", "net"] }) });
    expect((await fx.backend.fail(b.grant.fence, "timeout", "net", 0)).outcome).toBe("retry_scheduled");
  });

  test("zero delay goes straight back to eligible with its original score", async () => {
    const a = await createAndClaim(fx, { retry: retry({ initialDelayMs: 0 }) });
    const out = await fx.backend.fail(a.grant.fence, "x", "", 0);
    expect(out.outcome).toBe("retry_scheduled");
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "pending_retry_attempt", "waiting"]);
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.zscore(k.eligible(a.spec.namespace, a.spec.lane), uuid)).toBe((await record(fx, a.id)).score);
  });

  test("a replay with a forged lease id (right epoch and attempt) is refused, not reconciled", async () => {
    const forged = (f: { leaseId: string }) => ({ ...f, leaseId: "00000000-0000-4000-8000-000000000001" });
    const a = await createAndClaim(fx, { retry: retry({}) });
    await fx.backend.fail(a.grant.fence, "x", "y", 0);
    await expectCode(fx.backend.fail(forged(a.grant.fence) as typeof a.grant.fence, "x", "y", 0), "EXECUTION_NOT_ACTIVE");
    const b = await createAndClaim(fx);
    await fx.backend.fail(b.grant.fence, "x", "y", 0);
    await expectCode(fx.backend.fail(forged(b.grant.fence) as typeof b.grant.fence, "x", "y", 0), "EXECUTION_NOT_ACTIVE");
  });

  test("replay reconciliation: same outcome reconciled; a later transition is reported", async () => {
    const a = await createAndClaim(fx, { retry: retry({}) });
    const first = await fx.backend.fail(a.grant.fence, "x", "y", 0);
    expect(await fx.backend.fail(a.grant.fence, "x", "y", 0)).toEqual({ ...first, reconciled: true });
    const b = await createAndClaim(fx);
    await fx.backend.fail(b.grant.fence, "x", "y", 0);
    expect(await fx.backend.fail(b.grant.fence, "x", "y", 0)).toEqual({ outcome: "failed", retryAtMs: 0, retryCount: 0, reconciled: true });
    // retry scheduled, then cancelled by an operator: the replay reports what raced in
    await fx.backend.cancelByOperator(a.id, "stop", "ops");
    const detail = await expectCode(fx.backend.fail(a.grant.fence, "x", "y", 0), "EXECUTION_NOT_ACTIVE");
    expect(detail).toMatchObject({ state: "cancelled", outcome: "cancelled" });
    // completed, then a fail with the same fence
    const c = await createAndClaim(fx);
    await fx.backend.complete(c.grant.fence, undefined);
    expect(await expectCode(fx.backend.fail(c.grant.fence, "x", "y", 0), "EXECUTION_NOT_ACTIVE")).toMatchObject({ state: "completed" });
  });

  test("fence errors and INVALID_ARGUMENT", async () => {
    const a = await createAndClaim(fx);
    await expectCode(fx.backend.fail({ ...a.grant.fence, leaseId: "z" }, "x", "y", 0), "STALE_LEASE");
    await expectCode(fx.backend.fail({ ...a.grant.fence, executionId: `${a.partition}:00000000-0000-4000-8000-000000000000` }, "x", "y", 0), "NOT_FOUND");
    const good = buildFail(a.grant.fence, 4, "x", "y", 0);
    for (const v of ["1.5", "-0.1", "abc"]) {
      const argv = [...good.argv];
      argv[5] = v;
      expect((await rawCall(fx, "ff_fail", good.keys, argv)).slice(0, 3)).toEqual([0, "INVALID_ARGUMENT", "invalid jitter_sample: " + v]);
    }
    expect((await rawCall(fx, "ff_fail", good.keys, good.argv.slice(0, 5))).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });
});
