import type { EngineEvent } from "../../gateway/src/engine/types.js";
import { buildCancelByOperator } from "../../gateway/src/engine/fcall/cancel.js";
import { createAndClaim, expectCode, keysOf, rawCall, record, spec, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

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

const TERMINAL_CANCELLED = ["terminal", "unowned", "not_applicable", "none", "cancelled", "attempt_terminal", "cancelled"];

describe("ff_cancel", () => {
  test("operator cancel of a leased execution: terminal, indexes cleaned, holder told", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 100_000 });
    const out = await fx.backend.cancelByOperator(a.id, "no longer needed", "alice");
    expect(out).toEqual({ cancelled: true, state: "cancelled", reconciled: false });
    expect(await stateVector(fx, a.id)).toEqual(TERMINAL_CANCELLED);
    expect(await record(fx, a.id)).toMatchObject({ cancel_reason: "no longer needed", cancelled_by: "alice", lid: "" });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("ended_cancelled");
    for (const key of [k.leases(), k.timeouts(), k.delayed(), k.eligible(a.spec.namespace, a.spec.lane)]) {
      expect(await fx.redis.zscore(key, uuid)).toBeNull();
    }
    const ev = await waitFor(() => events.find((e) => e.type === "cancel" && e.executionId === a.id));
    expect(ev).toEqual({ type: "cancel", executionId: a.id, leaseId: a.grant.fence.leaseId, by: "alice", reason: "no longer needed" });
  });

  test("operator cancel of waiting and delayed executions", async () => {
    const [w] = await fx.backend.create([spec()]);
    const [d] = await fx.backend.create([spec({ delayUntilMs: Date.now() + 60_000 })]);
    for (const id of [w!.executionId, d!.executionId]) {
      expect((await fx.backend.cancelByOperator(id, "r", "ops")).cancelled).toBe(true);
      expect(await stateVector(fx, id)).toEqual(TERMINAL_CANCELLED);
      const { k, uuid } = keysOf(id);
      expect(await fx.redis.zscore(k.delayed(), uuid)).toBeNull();
      expect(await fx.redis.zcard(k.eligible(`x`, "default"))).toBe(0);
    }
    const { k, uuid } = keysOf(w!.executionId);
    const s = await record(fx, w!.executionId);
    expect(await fx.redis.zscore(k.eligible(s.ns!, "default"), uuid)).toBeNull();
  });

  test("holder cancel: fenced, no event, replay reconciled", async () => {
    const a = await createAndClaim(fx);
    const out = await fx.backend.cancelByHolder(a.grant.fence, "gave up");
    expect(out).toEqual({ cancelled: true, state: "cancelled", reconciled: false });
    expect(await record(fx, a.id)).toMatchObject({ cancelled_by: "holder", cancel_reason: "gave up" });
    expect(await fx.backend.cancelByHolder(a.grant.fence, "gave up")).toEqual({ cancelled: true, state: "cancelled", reconciled: true });
    const b = await createAndClaim(fx);
    await expectCode(fx.backend.cancelByHolder({ ...b.grant.fence, leaseId: "z" }, "r"), "STALE_LEASE");
  });

  test("already terminal: not an error for an operator; the holder's fence is checked as by ff_fail", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.complete(a.grant.fence, undefined);
    expect(await fx.backend.cancelByOperator(a.id, "r", "ops")).toEqual({ cancelled: false, state: "completed", reconciled: false });
    const detail = await expectCode(fx.backend.cancelByHolder(a.grant.fence, "r"), "EXECUTION_NOT_ACTIVE");
    expect(detail).toMatchObject({ state: "completed", outcome: "success" });
    await expectCode(fx.backend.fail(a.grant.fence, "r", "error", 0), "EXECUTION_NOT_ACTIVE");
  });

  test("a forged fence on an ended execution is refused, never answered OK or reconciled", async () => {
    const a = await createAndClaim(fx);
    await fx.backend.cancelByHolder(a.grant.fence, "gave up");
    const forged = { ...a.grant.fence, leaseId: "00000000-0000-4000-8000-000000000001" };
    await expectCode(fx.backend.cancelByHolder(forged, "r"), "EXECUTION_NOT_ACTIVE");
    await expectCode(fx.backend.cancelByHolder({ ...a.grant.fence, leaseEpoch: 99 }, "r"), "EXECUTION_NOT_ACTIVE");
    // An operator cancel is not the holder's: a holder's late cancel learns what raced in.
    const b = await createAndClaim(fx);
    await fx.backend.cancelByOperator(b.id, "stop", "ops");
    await expectCode(fx.backend.cancelByHolder(b.grant.fence, "r"), "EXECUTION_NOT_ACTIVE");
  });

  test("NOT_FOUND and INVALID_ARGUMENT", async () => {
    await expectCode(fx.backend.cancelByOperator("0:00000000-0000-4000-8000-000000000000", "r", "ops"), "NOT_FOUND");
    const good = buildCancelByOperator("0:00000000-0000-4000-8000-000000000000", 4, "r", "ops");
    const argv = [...good.argv];
    argv[0] = "everyone";
    expect((await rawCall(fx, "ff_cancel", good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
    argv[0] = "holder";
    argv[4] = "x";
    expect((await rawCall(fx, "ff_cancel", good.keys, argv)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });
});
