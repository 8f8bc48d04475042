import { randomUUID } from "node:crypto";
import { createLogger } from "../../gateway/src/logger.js";
import { WaitpointKeyring } from "../../gateway/src/signals/waitpoint-keyring.js";
import type { SuspendSpec } from "../../gateway/src/engine/signal-types.js";
import { keysOf } from "../support/engine.js";
import { FlowFabricClient, FlowFabricError } from "../../sdk-ts/src/index.js";
import { startHarness, type Harness } from "../support/gateway.js";

/**
 * SignalService, ResumeExecution, RotateWaitpointSecret and DescribeExecution's waitpoints, through
 * a real gateway (gRPC via the SDK client, Connect JSON via fetch). Executions are suspended on
 * the engine directly (no worker), and tokens minted by a second keyring reading the same shared
 * keyring — as another gateway of the deployment would.
 */
let h: Harness;
let client: FlowFabricClient;
let ring: WaitpointKeyring;
beforeAll(async () => {
  h = await startHarness();
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
  ring = await WaitpointKeyring.open(h.gateway.engine, { refreshMs: 60_000, log: createLogger("silent") });
});
afterAll(async () => {
  ring.close();
  client.close();
  await h.stop();
});

let lane = 0;
/** A suspended execution (claimed straight from the engine, so no worker is involved) and a genuine token. */
async function suspendedExecution(over: Partial<SuspendSpec> = {}): Promise<{ id: string; waitpointId: string; token: string }> {
  const spec = { lane: `sig-${++lane}`, kind: "k", input: new Uint8Array() };
  const { executionId: id } = await client.createExecution(spec);
  const { partition } = keysOf(id, 4);
  const claim = await h.gateway.engine.claim({
    partition, namespace: "default", lane: spec.lane, count: 1, capabilities: [], maxScore: Infinity, leaseTtlMs: 30_000,
    claimant: { sessionId: "s", workerId: "w", workerInstanceId: "i" },
  });
  const grant = claim.grants[0]!;
  const waitpointId = randomUUID();
  const timeoutAtMs = over.timeoutAtMs ?? 0;
  await h.gateway.engine.suspend(grant.fence, {
    reasonCode: "approval", mode: "any", signalNames: ["approved"], count: 0, timeoutAtMs, onTimeout: "fail",
    waitpointId, waitpointKey: "approval", maxWaitpoints: 64, ...over,
  });
  return { id, waitpointId, token: ring.mint(id, waitpointId, timeoutAtMs) };
}

async function errorOf(p: Promise<unknown>): Promise<FlowFabricError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof FlowFabricError)) throw new Error(`expected a FlowFabricError, got ${String(err)}`);
  return err;
}

async function reasonOf(p: Promise<unknown>): Promise<{ code: string; reason: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FlowFabricError);
    const e = err as FlowFabricError;
    return { code: e.code, reason: e.reason, message: e.message };
  }
  throw new Error("expected a rejection");
}

test("a genuine token resumes; describe shows the waitpoint (never a token); a second signal finds it closed", async () => {
  const s = await suspendedExecution();
  const described = await client.describeExecution(s.id);
  expect(described.state).toBe("suspended");
  expect(described.suspension).toMatchObject({ reasonCode: "approval", waitFor: { signals: ["approved"], mode: "any" } });
  expect(described.waitpoints).toEqual([expect.objectContaining({ waitpointId: s.waitpointId, key: "approval", state: "active" })]);
  expect(JSON.stringify(described)).not.toContain(s.token.split(".")[3]!);
  const out = await client.deliverSignal({ executionId: s.id, waitpointId: s.waitpointId, token: s.token, name: "approved", payload: "yes", source: "test" });
  expect(out).toMatchObject({ effect: "triggered_resume", signalId: expect.stringMatching(/^\d+-\d+$/) });
  expect((await client.describeExecution(s.id)).state).toBe("waiting");
  const closed = await reasonOf(client.deliverSignal({ executionId: s.id, waitpointId: s.waitpointId, token: s.token, name: "approved" }));
  expect(closed).toMatchObject({ code: "FAILED_PRECONDITION", reason: "WAITPOINT_CLOSED" });
});

test("forged, tampered, wrong-execution, wrong-waitpoint, expired and missing tokens: one identical PERMISSION_DENIED, existing or not", async () => {
  const s = await suspendedExecution();
  const other = await suspendedExecution();
  const [v, kid, exp, mac] = s.token.split(".");
  const flipped = `${mac!.slice(0, -2)}${mac!.endsWith("AA") ? "BB" : "AA"}`;
  const unknownExecution = `${keysOf(s.id, 4).partition}:${randomUUID()}`;
  const cases: [string, string, string][] = [
    [s.id, s.waitpointId, ""],
    [s.id, s.waitpointId, "garbage"],
    [s.id, s.waitpointId, `${v}.${kid}.${exp}.${flipped}`],
    [s.id, s.waitpointId, `${v}.${kid}.${Date.now() + 60_000}.${mac}`],
    [s.id, s.waitpointId, other.token],
    [other.id, s.waitpointId, s.token],
    [s.id, other.waitpointId, s.token],
    [s.id, s.waitpointId, ring.mint(s.id, s.waitpointId, Date.now() - 1)],
    [s.id, s.waitpointId, `${v}.nokey.${exp}.${mac}`],
    [unknownExecution, randomUUID(), "ffw1.k1.0.AAAA"],
    [unknownExecution, s.waitpointId, ring.mint(unknownExecution, randomUUID(), 0)],
  ];
  const answers = await Promise.all(cases.map(([executionId, waitpointId, token]) =>
    reasonOf(client.deliverSignal({ executionId, waitpointId, token, name: "approved" }))));
  for (const a of answers) expect(a).toEqual({ code: "PERMISSION_DENIED", reason: "INVALID_TOKEN", message: answers[0]!.message });
  expect((await client.describeExecution(s.id)).signalCount).toBe(0);
});

test("a genuine token for an execution that no longer exists (purged) is NOT_FOUND", async () => {
  const ghost = `0:${randomUUID()}`;
  const w = randomUUID();
  expect(await reasonOf(client.deliverSignal({ executionId: ghost, waitpointId: w, token: ring.mint(ghost, w, 0), name: "x" }))).toMatchObject({ reason: "NOT_FOUND" });
});

test("duplicate by idempotency key; an oversize payload names its field and limit; a bad name is INVALID_ARGUMENT naming it", async () => {
  const s = await suspendedExecution({ mode: "count", count: 5, signalNames: [] });
  const base = { executionId: s.id, waitpointId: s.waitpointId, token: s.token, name: "tick" };
  const first = await client.deliverSignal({ ...base, idempotencyKey: "same" });
  expect(await client.deliverSignal({ ...base, idempotencyKey: "same" })).toEqual({ effect: "duplicate", signalId: first.signalId });
  const big = await errorOf(client.deliverSignal({ ...base, payload: new Uint8Array(64 * 1024 + 1) }));
  expect(big).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "LIMIT_EXCEEDED", field: "payload" });
  expect(big.message).toContain(String(64 * 1024));
  const bad = await errorOf(client.deliverSignal({ ...base, name: "no spaces" }));
  expect(bad).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT", field: "name" });
});

test("operator ResumeExecution; a second one is EXECUTION_NOT_SUSPENDED", async () => {
  const s = await suspendedExecution();
  await client.resumeExecution(s.id);
  const d = await client.describeExecution(s.id);
  expect(d.state).toBe("waiting");
  expect(d.waitpoints[0]).toMatchObject({ state: "closed", closeReason: "operator" });
  expect(await reasonOf(client.resumeExecution(s.id))).toMatchObject({ code: "FAILED_PRECONDITION", reason: "EXECUTION_NOT_SUSPENDED" });
});

test("rotation: old tokens verify during the grace, new tokens use the new key; grace 0 revokes", async () => {
  const before = await suspendedExecution();
  const r1 = await client.rotateWaitpointSecret({ graceMs: 60_000 });
  expect(r1.keyId).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
  expect(r1.keyId).not.toBe(r1.previousKeyId);
  await ring.reload();
  const after = await suspendedExecution();
  expect(after.token.split(".")[1]).toBe(r1.keyId);
  // the old key is still within its grace
  expect((await client.deliverSignal({ executionId: before.id, waitpointId: before.waitpointId, token: before.token, name: "approved" })).effect).toBe("triggered_resume");
  const old = await suspendedExecution();
  const oldToken = old.token;
  const r2 = await client.rotateWaitpointSecret({ newKeyId: "revoker", graceMs: 0 });
  expect(r2).toMatchObject({ keyId: "revoker", previousKeyId: r1.keyId });
  expect(await reasonOf(client.deliverSignal({ executionId: old.id, waitpointId: old.waitpointId, token: oldToken, name: "approved" }))).toMatchObject({ code: "PERMISSION_DENIED", reason: "INVALID_TOKEN" });
  expect(await reasonOf(client.rotateWaitpointSecret({ newKeyId: "revoker" }))).toMatchObject({ reason: "INVALID_ARGUMENT" });
  expect(await reasonOf(client.rotateWaitpointSecret({ newKeyId: "bad id" }))).toMatchObject({ reason: "INVALID_ARGUMENT" });
});

test("a signal over Connect JSON exactly as curl sends it", async () => {
  await ring.reload();
  const s = await suspendedExecution();
  const post = (body: unknown) => fetch(`${h.gateway.httpAddress}/flowfabric.v1.SignalService/DeliverSignal`, {
    method: "POST", headers: { "content-type": "application/json", connection: "close" }, body: JSON.stringify(body),
  });
  const denied = await post({ executionId: s.id, waitpointId: s.waitpointId, name: "approved", token: "nope" });
  expect(denied.status).toBe(403);
  expect(((await denied.json()) as { code: string }).code).toBe("permission_denied");
  const ok = await post({ executionId: s.id, waitpointId: s.waitpointId, name: "approved", payload: Buffer.from("ok").toString("base64"), token: s.token });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ effect: "SIGNAL_EFFECT_TRIGGERED_RESUME", signalId: expect.any(String) });
});
