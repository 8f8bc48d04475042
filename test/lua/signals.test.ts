import { randomUUID } from "node:crypto";
import { buildSuspend } from "../../gateway/src/engine/fcall/suspend.js";
import type { SignalSpec, SuspendSpec } from "../../gateway/src/engine/signal-types.js";
import type { LeaseFence } from "../../gateway/src/engine/types.js";
import { claimReq, createAndClaim, expectCode, keysOf, rawCall, record, startEngine, stateVector, type EngineFixture } from "../support/engine.js";

/** ff_suspend, ff_create_waitpoint, ff_deliver_signal, ff_resume, ff_resume_signals, ff_expire_suspensions, ff_keyring. */
let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

function suspendSpec(over: Partial<SuspendSpec> = {}): SuspendSpec {
  return {
    reasonCode: "approval", mode: "any", signalNames: ["approved"], count: 0, timeoutAtMs: 0, onTimeout: "fail",
    waitpointId: randomUUID(), waitpointKey: "", maxWaitpoints: 64, ...over,
  };
}

function signal(executionId: string, waitpointId: string, name: string, over: Partial<SignalSpec> = {}): SignalSpec {
  return {
    executionId, waitpointId, name, payload: Buffer.from(`payload of ${name}`), source: "test", idempotencyKey: "",
    maxSignals: 1000, traceparent: "", tracestate: "", ...over,
  };
}

async function suspended(over: Partial<SuspendSpec> = {}) {
  const a = await createAndClaim(fx);
  const s = suspendSpec(over);
  const out = await fx.backend.suspend(a.grant.fence, s);
  return { ...a, s, out };
}

async function reclaim(a: { spec: Parameters<typeof claimReq>[0]; partition: number; id: string }) {
  const g = (await fx.backend.claim(claimReq(a.spec, a.partition))).grants.find((x) => x.fence.executionId === a.id);
  if (!g) throw new Error("not granted");
  return g;
}

describe("ff_suspend", () => {
  test("releases the lease: suspended state vector, attempt suspended, out of leases, timeout filed, waitpoint active", async () => {
    const due = Date.now() + 60_000;
    const a = await suspended({ timeoutAtMs: due, waitpointKey: "approval" });
    expect(a.out).toEqual({ outcome: "suspended", waitpointId: a.s.waitpointId, waitpointCount: 1, timeoutAtMs: due, reconciled: false });
    expect(await stateVector(fx, a.id)).toEqual(["suspended", "unowned", "not_applicable", "waiting_for_signal", "none", "attempt_interrupted", "suspended"]);
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.zscore(k.leases(), uuid)).toBeNull();
    expect(await fx.redis.zscore(k.suspended(), uuid)).toBe(String(due));
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("suspended");
    expect(await fx.redis.hgetall(k.waitpoint(uuid, a.s.waitpointId))).toMatchObject({ state: "active", key: "approval", expires: String(due), aidx: "0" });
    // fenced operations now fail; not claimable
    await expectCode(fx.backend.complete(a.grant.fence, undefined), "EXECUTION_NOT_ACTIVE");
    expect((await fx.backend.claim(claimReq(a.spec, a.partition))).grants).toHaveLength(0);
    const d = await fx.backend.describe(a.id);
    expect(d.suspension).toMatchObject({ reasonCode: "approval", timeoutAtMs: due, onTimeout: "fail", mode: "any", signalNames: ["approved"] });
    expect(d.waitpoints).toEqual([expect.objectContaining({ waitpointId: a.s.waitpointId, key: "approval", state: "active", signalCount: 0 })]);
  });

  test("a replay after a lost reply answers the committed suspension (reconciled), writing nothing", async () => {
    const due = Date.now() + 60_000;
    const a = await suspended({ timeoutAtMs: due });
    const before = await record(fx, a.id);
    const again = await fx.backend.suspend(a.grant.fence, suspendSpec({ timeoutAtMs: due + 5 }));
    expect(again).toEqual({ outcome: "suspended", waitpointId: a.s.waitpointId, waitpointCount: 1, timeoutAtMs: due, reconciled: true });
    expect(await record(fx, a.id)).toEqual(before);
    // another fence is still refused, and so is a forged lease id with the right epoch and attempt
    await expectCode(fx.backend.suspend({ ...a.grant.fence, leaseEpoch: 9 }, suspendSpec()), "EXECUTION_NOT_ACTIVE");
    const forged = { ...a.grant.fence, leaseId: "00000000-0000-4000-8000-000000000000" };
    await expectCode(fx.backend.suspend(forged, suspendSpec()), "EXECUTION_NOT_ACTIVE");
  });

  test("fenced; INVALID_ARGUMENT names the argument", async () => {
    const a = await createAndClaim(fx);
    await expectCode(fx.backend.suspend({ ...a.grant.fence, leaseId: "zz" }, suspendSpec()), "STALE_LEASE");
    const good = buildSuspend(a.grant.fence, fx.partitions, suspendSpec());
    for (const [i, bad, field] of [[4, "sometimes", "mode"], [8, "never", "on_timeout"], [7, "-1", "timeout_at"]] as const) {
      const argv = [...good.argv];
      argv[i] = bad;
      expect(await rawCall(fx, "ff_suspend", good.keys, argv)).toEqual([0, "INVALID_ARGUMENT", expect.any(String), "field", field]);
    }
    const count = [...good.argv];
    count[4] = "count";
    count[6] = "0";
    expect((await rawCall(fx, "ff_suspend", good.keys, count)).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });
});

describe("ff_deliver_signal", () => {
  test("any: the first matching signal resumes with the original score, a wake and the same attempt", async () => {
    const a = await suspended({ signalNames: ["approved", "rejected"] });
    const before = await record(fx, a.id);
    const ignored = await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "unrelated"));
    expect(ignored.effect).toBe("accepted");
    expect((await stateVector(fx, a.id))[6]).toBe("suspended");
    const out = await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "rejected"));
    expect(out.effect).toBe("triggered_resume");
    expect(await stateVector(fx, a.id)).toEqual(["runnable", "unowned", "eligible_now", "waiting_for_worker", "none", "attempt_interrupted", "waiting"]);
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.zscore(k.eligible(a.spec.namespace, a.spec.lane), uuid)).toBe(before.score);
    expect(await fx.redis.hget(k.waitpoint(uuid, a.s.waitpointId), "state")).toBe("closed");
    const g = await reclaim(a);
    expect(g).toMatchObject({ resumed: true, resumeReason: "signal", attemptIndex: 0 });
    expect(g.fence.attemptId).toBe(a.grant.fence.attemptId);
    const sigs = await fx.backend.resumeSignals(g.fence);
    expect(sigs.map((x) => [x.name, Buffer.from(x.payload).toString(), x.source, x.waitpointId])).toEqual([["rejected", "payload of rejected", "test", a.s.waitpointId]]);
    expect(sigs[0]!.signalId).toBe(out.signalId);
    expect(sigs[0]!.acceptedAtMs).toBeGreaterThan(Date.now() - 60_000);
    // the waitpoint is closed now
    const d = await expectCode(fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "approved")), "WAITPOINT_CLOSED");
    expect(d).toMatchObject({ state: "closed" });
  });

  test("all: every name at least once; repeats of a name do not count twice", async () => {
    const a = await suspended({ mode: "all", signalNames: ["a", "b", "c"] });
    for (const n of ["a", "a", "b"]) expect((await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, n))).effect).toBe("accepted");
    expect((await fx.backend.describe(a.id)).suspension?.matchedSignals).toBe(3);
    expect((await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "c"))).effect).toBe("triggered_resume");
    const g = await reclaim(a);
    expect((await fx.backend.resumeSignals(g.fence)).map((x) => x.name)).toEqual(["a", "a", "b", "c"]);
  });

  test("count: n matching signals; empty names match any signal", async () => {
    const a = await suspended({ mode: "count", count: 3, signalNames: [] });
    expect((await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "x"))).effect).toBe("accepted");
    expect((await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "y"))).effect).toBe("accepted");
    expect((await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "z"))).effect).toBe("triggered_resume");
  });

  test("idempotency key: a repeat on the same waitpoint is a duplicate with the first id, and counts once", async () => {
    const a = await suspended({ mode: "count", count: 2, signalNames: ["s"] });
    const first = await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "s", { idempotencyKey: "k1" }));
    const again = await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "s", { idempotencyKey: "k1" }));
    expect(again).toMatchObject({ effect: "duplicate", signalId: first.signalId });
    expect((await stateVector(fx, a.id))[6]).toBe("suspended");
    const resumed = await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "s", { idempotencyKey: "k2" }));
    expect(resumed.effect).toBe("triggered_resume");
    expect((await fx.backend.describe(a.id)).signalCount).toBe(2);
    // a retry of the resuming signal after a lost reply is answered as a duplicate, though the waitpoint closed
    expect(await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "s", { idempotencyKey: "k2" }))).toMatchObject({ effect: "duplicate", signalId: resumed.signalId });
    await expectCode(fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "s", { idempotencyKey: "k3" })), "WAITPOINT_CLOSED");
  });

  test("per-execution signal cap: LIMIT_EXCEEDED naming it", async () => {
    const a = await suspended({ signalNames: ["never"] });
    await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "x", { maxSignals: 2 }));
    await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "x", { maxSignals: 2 }));
    const d = await expectCode(fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "x", { maxSignals: 2 })), "LIMIT_EXCEEDED");
    expect(d).toMatchObject({ limit: "signals_per_execution", max: "2" });
  });

  test("unknown execution or waitpoint: NOT_FOUND; binary payloads round-trip", async () => {
    const a = await suspended({ signalNames: ["bin"] });
    await expectCode(fx.backend.deliverSignal(signal(a.id, randomUUID(), "bin")), "NOT_FOUND");
    const { partition } = keysOf(a.id);
    await expectCode(fx.backend.deliverSignal(signal(`${partition}:${randomUUID()}`, a.s.waitpointId, "bin")), "NOT_FOUND");
    const bytes = Buffer.from([0, 255, 1, 128, 0, 10, 13]);
    await fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "bin", { payload: bytes }));
    const g = await reclaim(a);
    expect(Buffer.from((await fx.backend.resumeSignals(g.fence))[0]!.payload)).toEqual(bytes);
  });
});

describe("pending waitpoints", () => {
  async function pending(fence: LeaseFence, key: string, expiresAtMs = Date.now() + 60_000, maxWaitpoints = 64): Promise<string> {
    const w = randomUUID();
    await fx.backend.createWaitpoint(fence, { waitpointId: w, waitpointKey: key, expiresAtMs, maxWaitpoints });
    return w;
  }

  test("signals are buffered; a suspend they satisfy returns already_satisfied and keeps the lease", async () => {
    const a = await createAndClaim(fx);
    const w = await pending(a.grant.fence, "callback");
    expect((await fx.backend.deliverSignal(signal(a.id, w, "done"))).effect).toBe("accepted");
    expect((await stateVector(fx, a.id))[6]).toBe("active");
    const out = await fx.backend.suspend(a.grant.fence, suspendSpec({ signalNames: ["done"] }));
    expect(out).toEqual({ outcome: "already_satisfied", waitpointId: "", waitpointCount: 1, timeoutAtMs: 0, reconciled: false });
    expect((await stateVector(fx, a.id))[6]).toBe("active");
    expect((await fx.backend.resumeSignals(a.grant.fence)).map((x) => x.name)).toEqual(["done"]);
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.hget(k.waitpoint(uuid, w), "state")).toBe("closed");
    await fx.backend.complete(a.grant.fence, undefined);
  });

  test("a suspend not yet satisfied activates the pending waitpoints and keeps their buffered progress", async () => {
    const a = await createAndClaim(fx);
    const w1 = await pending(a.grant.fence, "one");
    await fx.backend.deliverSignal(signal(a.id, w1, "a"));
    const out = await fx.backend.suspend(a.grant.fence, suspendSpec({ mode: "all", signalNames: ["a", "b"] }));
    expect(out).toMatchObject({ outcome: "suspended", waitpointCount: 2 });
    const d = await fx.backend.describe(a.id);
    expect(d.waitpoints.map((x) => x.state)).toEqual(["active", "active"]);
    expect(d.suspension?.matchedSignals).toBe(1);
    // the second signal may come through either waitpoint
    expect((await fx.backend.deliverSignal(signal(a.id, out.waitpointId, "b"))).effect).toBe("triggered_resume");
  });

  test("key unique among open waitpoints; waitpoint cap; expired pending waitpoint refuses signals", async () => {
    const a = await createAndClaim(fx);
    await pending(a.grant.fence, "k");
    await expectCode(pending(a.grant.fence, "k"), "WAITPOINT_EXISTS");
    await pending(a.grant.fence, "");
    await pending(a.grant.fence, "");
    const d = await expectCode(pending(a.grant.fence, "x", Date.now() + 60_000, 3), "LIMIT_EXCEEDED");
    expect(d).toMatchObject({ limit: "waitpoints_per_execution", max: "3" });
    await expectCode(fx.backend.suspend(a.grant.fence, suspendSpec({ maxWaitpoints: 3 })), "LIMIT_EXCEEDED");
    const w = await pending(a.grant.fence, "soon");
    const { k, uuid } = keysOf(a.id);
    await fx.redis.hset(k.waitpoint(uuid, w), "expires", String(Date.now() - 1)); // its expiry has passed
    expect(await expectCode(fx.backend.deliverSignal(signal(a.id, w, "late")), "WAITPOINT_CLOSED")).toMatchObject({ state: "expired" });
  });

  test("a pending waitpoint of an earlier attempt is closed; resumeSignals is for the current attempt only", async () => {
    const a = await createAndClaim(fx, { retry: { maxRetries: 1, backoff: "fixed", initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0, retryableCategories: [] } });
    const w = await pending(a.grant.fence, "p");
    await fx.backend.deliverSignal(signal(a.id, w, "go"));
    await fx.backend.suspend(a.grant.fence, suspendSpec({ signalNames: ["go"] }));
    expect(await fx.backend.resumeSignals(a.grant.fence)).toHaveLength(1);
    await fx.backend.fail(a.grant.fence, "boom", "error", 0);
    const g = await reclaim(a);
    expect(g.attemptIndex).toBe(1);
    expect(await fx.backend.resumeSignals(g.fence)).toEqual([]);
    const w2 = await pending(g.fence, "p"); // the old key is free again: its waitpoint is closed
    expect(w2).not.toBe(w);
  });
});

describe("ff_resume (operator) and cancel", () => {
  test("operator resume: waiting, resume reason operator, no signals; not suspended -> EXECUTION_NOT_SUSPENDED", async () => {
    const a = await suspended({ timeoutAtMs: Date.now() + 60_000 });
    await fx.backend.resume(a.id);
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.zscore(k.suspended(), uuid)).toBeNull();
    expect(await fx.redis.hgetall(k.waitpoint(uuid, a.s.waitpointId))).toMatchObject({ state: "closed", reason: "operator" });
    expect(await expectCode(fx.backend.resume(a.id), "EXECUTION_NOT_SUSPENDED")).toMatchObject({ state: "waiting" });
    const g = await reclaim(a);
    expect(g.resumeReason).toBe("operator");
    expect(await fx.backend.resumeSignals(g.fence)).toEqual([]);
  });

  test("cancel while suspended closes the waitpoints; signals then get WAITPOINT_CLOSED", async () => {
    const a = await suspended({ timeoutAtMs: Date.now() + 60_000 });
    expect(await fx.backend.cancelByOperator(a.id, "no", "op")).toMatchObject({ cancelled: true, state: "cancelled" });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.redis.zscore(k.suspended(), uuid)).toBeNull();
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe("ended_cancelled");
    expect((await fx.backend.describe(a.id)).waitpoints[0]).toMatchObject({ state: "closed", closeReason: "cancelled" });
    expect(await expectCode(fx.backend.deliverSignal(signal(a.id, a.s.waitpointId, "approved")), "WAITPOINT_CLOSED")).toMatchObject({ execution_state: "cancelled" });
  });

  test("a deadline passing while suspended expires it and closes its waitpoints", async () => {
    const a = await createAndClaim(fx, { deadlineAtMs: Date.now() + 60_000 });
    const s = suspendSpec();
    await fx.backend.suspend(a.grant.fence, s);
    const { k, uuid } = keysOf(a.id);
    await fx.redis.hset(k.core(uuid), "deadline", "1");
    await fx.redis.zadd(k.timeouts(), 1, uuid);
    expect((await fx.backend.expireTimeouts(a.partition, 10)).processed).toBe(1);
    expect((await stateVector(fx, a.id))[6]).toBe("expired");
    expect(await fx.redis.hget(k.waitpoint(uuid, s.waitpointId), "state")).toBe("closed");
  });
});

describe("ff_expire_suspensions", () => {
  test.each([
    ["fail", "failed", "ended_failure"],
    ["cancel", "cancelled", "ended_cancelled"],
    ["expire", "expired", "ended_expired"],
  ] as const)("on timeout %s -> %s", async (on, state, attempt) => {
    const a = await suspended({ onTimeout: on, timeoutAtMs: Date.now() + 60_000 });
    const { k, uuid } = keysOf(a.id);
    expect(await fx.backend.expireSuspensions(a.partition, 10)).toEqual({ processed: 0, more: false });
    await fx.redis.hset(k.core(uuid), "s_due", "1");
    await fx.redis.zadd(k.suspended(), 1, uuid);
    expect(await fx.backend.expireSuspensions(a.partition, 10)).toEqual({ processed: 1, more: false });
    expect((await stateVector(fx, a.id))[6]).toBe(state);
    expect(await fx.redis.hget(`${k.core(uuid)}:a:0`, "state")).toBe(attempt);
    expect(await fx.redis.zscore(k.suspended(), uuid)).toBeNull();
    expect(await fx.redis.hgetall(k.waitpoint(uuid, a.s.waitpointId))).toMatchObject({ state: "closed", reason: "timeout" });
  });

  test("on timeout resume -> waiting, resume reason timeout; a not-yet-due entry is re-scored", async () => {
    const due = Date.now() + 60_000;
    const a = await suspended({ onTimeout: "resume", timeoutAtMs: due });
    const { k, uuid } = keysOf(a.id);
    await fx.redis.zadd(k.suspended(), 1, uuid);
    expect((await fx.backend.expireSuspensions(a.partition, 10)).processed).toBe(0);
    expect(await fx.redis.zscore(k.suspended(), uuid)).toBe(String(due));
    await fx.redis.hset(k.core(uuid), "s_due", "1");
    await fx.redis.zadd(k.suspended(), 1, uuid);
    expect((await fx.backend.expireSuspensions(a.partition, 10)).processed).toBe(1);
    expect((await stateVector(fx, a.id))[6]).toBe("waiting");
    expect((await reclaim(a)).resumeReason).toBe("timeout");
  });
});

describe("ff_keyring", () => {
  const secret = (c: string): string => c.repeat(64);
  test("init installs once; rotate keeps the old key for the grace and never reuses an id", async () => {
    await fx.redis.del("ff:keyring:waitpoint");
    expect(await fx.backend.updateKeyring("init", "k1", secret("a"), 0)).toMatchObject({ status: "installed", currentKeyId: "k1" });
    expect(await fx.backend.updateKeyring("init", "k9", secret("b"), 0)).toMatchObject({ status: "exists", currentKeyId: "k1" });
    const before = Date.now();
    const r = await fx.backend.updateKeyring("rotate", "k2", secret("c"), 60_000);
    expect(r).toMatchObject({ status: "rotated", currentKeyId: "k2", previousKeyId: "k1", droppedKeys: 0 });
    expect(r.previousExpiresAtMs).toBeGreaterThanOrEqual(before + 60_000);
    expect(await fx.backend.readKeyring()).toEqual({
      current: "k2", "secret:k1": secret("a"), "secret:k2": secret("c"), "expires:k1": String(r.previousExpiresAtMs),
    });
    expect(await expectCode(fx.backend.updateKeyring("rotate", "k1", secret("d"), 0), "INVALID_ARGUMENT")).toMatchObject({ field: "key_id" });
    await fx.backend.updateKeyring("rotate", "k3", secret("d"), 0);
    // k1 is past its grace only once we backdate it; the next rotation drops its secret
    await fx.redis.hset("ff:keyring:waitpoint", "expires:k1", "1");
    expect((await fx.backend.updateKeyring("rotate", "k4", secret("e"), 0)).droppedKeys).toBe(2);
    const ring = await fx.backend.readKeyring();
    expect(ring["secret:k1"]).toBeUndefined();
    expect(ring["expires:k1"]).toBe("1");
    await expectCode(fx.backend.updateKeyring("rotate", "bad id!", secret("f"), 0), "INVALID_ARGUMENT");
  });
});
