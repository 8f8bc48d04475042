import { buildDescribe } from "../../gateway/src/engine/fcall/describe.js";
import { createAndClaim, expectCode, rawCall, spec, startEngine, type EngineFixture } from "../support/engine.js";

let fx: EngineFixture;
beforeAll(async () => { fx = await startEngine(); });
afterAll(async () => { await fx.stop(); });

describe("ff_describe / ff_get_result (no-writes)", () => {
  test("describe maps every record field", async () => {
    const deadline = Date.now() + 100_000;
    const a = await createAndClaim(fx, {
      priority: -3, tags: { k: "v" }, requiredCapabilities: ["a", "b"], deadlineAtMs: deadline, traceparent: "tp", tracestate: "ts",
    }, { capabilities: ["a", "b"] });
    const d = await fx.backend.describe(a.id);
    expect(d).toMatchObject({
      executionId: a.id, namespace: a.spec.namespace, lane: "default", kind: "test.kind", priority: -3, state: "active",
      lifecyclePhase: "active", ownershipState: "leased", eligibilityState: "not_applicable", blockingReason: "none",
      terminalOutcome: "none", attemptState: "running_attempt", attemptIndex: 0, attemptCount: 1, retryCount: 0,
      reclaimCount: 0, leaseEpoch: 1, leaseExpiresAtMs: a.grant.leaseExpiresAtMs, workerInstanceId: "inst-1",
      createdAtMs: a.grant.createdAtMs, completedAtMs: 0, delayUntilMs: 0, deadlineAtMs: deadline, progressPercent: 0,
      progressMessage: "", failureReason: "", failureCategory: "", cancelReason: "", cancelledBy: "",
      tags: { k: "v" }, requiredCapabilities: ["a", "b"], hasResult: false, traceparent: "tp", tracestate: "ts",
    });
    expect(d.startedAtMs).toBeGreaterThan(0);
  });

  test("get_result of a waiting execution; NOT_FOUND; INVALID_ARGUMENT", async () => {
    const [c] = await fx.backend.create([spec()]);
    expect(await fx.backend.getResult(c!.executionId)).toEqual({ state: "waiting", failureReason: "", failureCategory: "" });
    const missing = "1:00000000-0000-4000-8000-000000000000";
    await expectCode(fx.backend.describe(missing), "NOT_FOUND");
    await expectCode(fx.backend.getResult(missing), "NOT_FOUND");
    await expectCode(fx.backend.describe("garbage"), "INVALID_ARGUMENT");
    await expectCode(fx.backend.describe("7:00000000-0000-4000-8000-000000000000"), "NOT_FOUND");
    const good = buildDescribe(missing, 4);
    expect((await rawCall(fx, "ff_describe", good.keys, ["extra"])).slice(0, 2)).toEqual([0, "INVALID_ARGUMENT"]);
  });

  test("read-only functions run under FCALL_RO; writing ones are refused there", async () => {
    const good = buildDescribe("1:00000000-0000-4000-8000-000000000000", 4);
    await expect(fx.redis.call("FCALL_RO", "ff_describe", 2, ...good.keys)).resolves.toEqual([0, "NOT_FOUND", "no such execution"]);
    await expect(fx.redis.call("FCALL_RO", "ff_expire_leases", 1, good.keys[0]!, "1")).rejects.toThrow(/write flag/);
  });
});
