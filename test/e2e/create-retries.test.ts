import { create } from "@bufbuild/protobuf";
import { Redis } from "iovalkey";
import { CreateExecutionRequestSchema, ExecutionService } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { FlowFabricClient } from "../../sdk-ts/src/index.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient } from "../support/raw-session.js";

/**
 * Creates that go unanswered although they committed (the store stalls past the call's deadline):
 * the SDK's retries, keyed by an idempotency key it generates, create each execution exactly once.
 */
let h: Harness;
let admin: Redis;

beforeAll(async () => {
  h = await startHarness();
  admin = new Redis(h.server.url);
});
afterAll(async () => {
  admin.disconnect();
  await h.stop();
});

/** Ids of the execution records of `namespace` in the store. */
async function recordsOf(namespace: string): Promise<string[]> {
  const ids: string[] = [];
  for (const key of await admin.keys("ff:{p:*}:e:*")) {
    if (!/^ff:\{p:\d+\}:e:[^:]+$/.test(key)) continue;
    if ((await admin.hget(key, "ns")) === namespace) ids.push((await admin.hget(key, "id"))!);
  }
  return ids.sort();
}

test("creates answered DEADLINE_EXCEEDED while the store stalls are retried and each one exists once (auto-batched and single)", async () => {
  const namespace = "stalled";
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, namespace, callTimeoutMs: 300 });
  try {
    await admin.call("CLIENT", "PAUSE", "1500", "WRITE"); // writes (FCALL ff_create) wait 1.5 s: past every call's deadline
    const batched = Promise.all(["a", "b", "c"].map((input) => client.createExecution({ lane: "l", input })));
    await new Promise((r) => setImmediate(r));
    const single = client.createExecution({ lane: "l", input: "d" });
    const made = [...await batched, await single];
    expect(made.every((m) => !m.duplicate)).toBe(true);
    expect(new Set(made.map((m) => m.executionId)).size).toBe(4);
    expect(await recordsOf(namespace)).toEqual(made.map((m) => m.executionId).sort());
  } finally {
    client.close();
  }
}, 30_000);

test("close() right after an explicit createExecutions batch keeps the channel for its retries: each execution exists once", async () => {
  const namespace = "closed-while-stalled";
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, namespace, callTimeoutMs: 300 });
  await admin.call("CLIENT", "PAUSE", "1500", "WRITE"); // the first try times out; its retries must still go out
  const batch = client.createExecutions([{ lane: "l", input: "a" }, { lane: "l", input: "b" }]);
  client.close();
  const made = await batch;
  expect(made.every((m) => !m.duplicate)).toBe(true);
  expect(await recordsOf(namespace)).toEqual(made.map((m) => m.executionId).sort());
}, 30_000);

test("with retries off (createRetryWindowMs 0) a stalled create rejects with DEADLINE_EXCEEDED, and no key is generated", async () => {
  const namespace = "no-retry";
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, namespace, callTimeoutMs: 200, createRetryWindowMs: 0 });
  try {
    await admin.call("CLIENT", "PAUSE", "800", "WRITE");
    await expect(client.createExecution({ lane: "l", input: "x" })).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
    await admin.call("CLIENT", "UNPAUSE");
    await eventually(() => recordsOf(namespace), (ids) => ids.length === 1); // it was created all the same
    expect(await admin.keys(`ff:{p:*}:idem:${namespace}:*`)).toEqual([]);
  } finally {
    client.close();
  }
});

test("idempotency_ttl_ms out of range is INVALID_ARGUMENT naming the field; a generated key is remembered for 10 minutes", async () => {
  const exec = rawClient(ExecutionService, h.gateway.grpcAddress);
  try {
    const bad = create(CreateExecutionRequestSchema, { lane: "l", idempotencyKey: "k", idempotencyTtlMs: 999n });
    const err = await exec.call("createExecution", bad).then(() => undefined, (e: unknown) => e);
    expect(errorDetailOf(err)).toMatchObject({ code: 3, reason: "INVALID_ARGUMENT", field: "idempotency_ttl_ms" });
  } finally {
    exec.close();
  }
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, namespace: "ttl" });
  try {
    await client.createExecution({ lane: "l" });
    const [key] = await admin.keys("ff:{p:*}:idem:ttl:*");
    const ttl = await admin.pttl(key!);
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
    const mine = await client.createExecution({ lane: "l", idempotencyKey: "mine" });
    expect(await admin.pttl((await admin.keys("ff:{p:*}:idem:ttl:mine"))[0]!)).toBeGreaterThan(86_000_000);
    expect((await client.createExecution({ lane: "l", idempotencyKey: "mine" })).duplicate).toBe(true);
    expect(mine.duplicate).toBe(false);
  } finally {
    client.close();
  }
});
