import { buildComplete } from "../../gateway/src/engine/fcall/complete.js";
import { createAndClaim, expectCode, keysOf, rawCall, record, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

const ALL_BYTES = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80])]);

describe("ff_complete", () => {
  test("terminal success with a binary result; indexes cleaned; attempt ended", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 100_000 });
    const out = await fx.backend.complete(a.grant.fence, ALL_BYTES);
    expect(out).toEqual({ reconciled: false });
    expect(await stateVector(fx, a.id)).toEqual(["terminal", "unowned", "not_applicable", "none", "success", "attempt_terminal", "completed"]);
    const r = await record(fx, a.id);
    expect(r).toMatchObject({ has_result: "1", lid: "" });
    expect(Number(r.ended)).toBeGreaterThan(0);
    const { k, uuid } = keysOf(a.id);
    expect(Buffer.compare((await fx.redis.getBuffer(k.result(uuid)))!, ALL_BYTES)).toBe(0);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("ended_success");
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.timeouts(), uuid)).toBeNull();
    const res = await fx.backend.getResult(a.id);
    expect(res.state).toBe("completed");
    expect(Buffer.compare(Buffer.from(res.result!), ALL_BYTES)).toBe(0);
  });

  test("without a result", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.complete(a.grant.fence, undefined);
    expect((await record(fx, a.id)).has_result).toBe("0");
    expect((await fx.backend.getResult(a.id)).result).toBeUndefined();
  });

  test("replay after a lost reply is reconciled; a different outcome is reported", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.complete(a.grant.fence, Buffer.from("r"));
    expect(await fx.backend.complete(a.grant.fence, Buffer.from("r"))).toEqual({ reconciled: true });
    const b = await createAndClaim(fx);
    await fx.backend.cancelByOperator(b.id, "stop", "ops");
    const detail = await expectCode(fx.backend.complete(b.grant.fence, undefined), "EXECUTION_NOT_ACTIVE");
    expect(detail).toMatchObject({ state: "cancelled", outcome: "cancelled", epoch: "1", attempt_id: b.grant.fence.attemptId });
  });

  test("a replay with a forged lease id (right epoch and attempt) is refused, not reconciled", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.complete(a.grant.fence, Buffer.from("r"));
    const forged = { ...a.grant.fence, leaseId: "00000000-0000-4000-8000-000000000001" };
    await expectCode(fx.backend.complete(forged, Buffer.from("other")), "EXECUTION_NOT_ACTIVE");
    expect(Buffer.from((await fx.backend.getResult(a.id)).result!).toString()).toBe("r");
  });

  test("fence errors: NOT_FOUND, STALE_LEASE, EXECUTION_NOT_ACTIVE, INVALID_ARGUMENT", async () => {
    const a = await createAndClaim(fx);
    await expectCode(fx.backend.complete({ ...a.grant.fence, executionId: `${a.partition}:00000000-0000-4000-8000-000000000000` }, undefined), "NOT_FOUND");
    await expectCode(fx.backend.complete({ ...a.grant.fence, leaseId: "zombie" }, undefined), "STALE_LEASE");
    await expectCode(fx.backend.complete({ ...a.grant.fence, leaseEpoch: 2 }, undefined), "STALE_LEASE");
    await fx.backend.delay(a.grant.fence, Date.now() + 60_000);
    await expectCode(fx.backend.complete(a.grant.fence, undefined), "EXECUTION_NOT_ACTIVE");
    await expectCode(fx.backend.complete({ ...a.grant.fence, executionId: "nope" }, undefined), "INVALID_ARGUMENT");
    const good = buildComplete(a.grant.fence, 4, undefined);
    const argv = [...good.argv];
    argv[3] = "2";
    expect((await rawCall(fx, "ff_complete", good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    argv[3] = "0";
    argv[1] = "x";
    expect((await rawCall(fx, "ff_complete", good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });

  test("an expired lease not yet requeued still completes", async () => {
    const a = await createAndClaim(fx);
    const { k, uuid } = keysOf(a.id);
    await fx.redis.hset(k.core(uuid), "lexp", "1");
    expect(await fx.backend.complete(a.grant.fence, undefined)).toEqual({ reconciled: false });
  });
});
