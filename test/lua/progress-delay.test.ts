import { buildDelay } from "../../gateway/src/engine/fcall/delay.js";
import { buildProgress } from "../../gateway/src/engine/fcall/progress.js";
import { claimReq, createAndClaim, expectCode, keysOf, rawCall, record, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

describe("ff_progress", () => {
  test("records percent and message; fenced", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.progress(a.grant.fence, 42.5, "half-ish ünïcode");
    const d = await fx.backend.describe(a.id);
    expect(d.progressPercent).toBe(42.5);
    expect(d.progressMessage).toBe("half-ish ünïcode");
    await expectCode(fx.backend.progress({ ...a.grant.fence, leaseId: "z" }, 1, ""), "STALE_LEASE");
    const good = buildProgress(a.grant.fence, 4, 1, "m");
    const argv = [...good.argv];
    argv[3] = "101";
    expect((await rawCall(fx, "ff_progress", good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    await fx.backend.complete(a.grant.fence, undefined);
    await expectCode(fx.backend.progress(a.grant.fence, 1, ""), "EXECUTION_NOT_ACTIVE");
  });
});

describe("ff_delay", () => {
  test("releases the lease; delayed; the same attempt resumes after promotion", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 100_000 });
    const until = Date.now() + 60_000;
    await fx.backend.delay(a.grant.fence, until);
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "delayed", "waiting_for_delay", "none", "attempt_interrupted", "delayed"]);
    const { k, uuid } = keysOf(a.id);
    expect(await record(fx, a.id)).toMatchObject({ lid: "", delay_until: String(until) });
    expect(await fx.redis.zscore(k.delayed(), uuid)).toBe(String(until));
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBe((await record(fx, a.id)).deadline);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("interrupted");
    expect((await fx.backend.renew([a.grant.fence], "s", 1000))[0]).toMatchObject({ renewed: false, reason: "EXECUTION_NOT_ACTIVE" });
    // not claimable while delayed
    expect((await fx.backend.claim(claimReq(a.spec, a.partition))).grants).toHaveLength(0);
    await fx.redis.zadd(k.delayed(), 1, uuid);
    expect(await fx.backend.promoteDelayed(a.partition, 10)).toEqual({ processed: 1, more: false });
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g).toMatchObject({ resumed: true, attemptIndex: 0 });
    expect(g.fence.attemptId).toBe(a.grant.fence.attemptId);
    expect(g.fence.leaseEpoch).toBe(2);
    expect(await fx.redis.hgetall(`${k.core(uuid)}:a:0`)).toMatchObject({ state: "started", resumed: "1", lease_epoch: "2" });
    expect(await record(fx, a.id)).toMatchObject({ acount: "1", resumed: "1" });
  });

  test("a due delay goes straight back to eligible", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.delay(a.grant.fence, Date.now() - 1);
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "attempt_interrupted", "waiting"]);
    const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants[0]!;
    expect(g.resumed).toBe(true);
  });

  test("fence errors and INVALID_ARGUMENT", async () => {
    const a = await createAndClaim(fx);
    await expectCode(fx.backend.delay({ ...a.grant.fence, leaseEpoch: 5 }, 0), "STALE_LEASE");
    const good = buildDelay(a.grant.fence, 4, 0);
    const argv = [...good.argv];
    argv[3] = "tomorrow";
    expect((await rawCall(fx, "ff_delay", good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });
});
