import { status } from "@grpc/grpc-js";
import { ExecutionService } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { WorkerService } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { create } from "@bufbuild/protobuf";
import { CreateExecutionRequestSchema, CreateExecutionsRequestSchema, DescribeExecutionRequestSchema, GetResultRequestSchema, CancelExecutionRequestSchema, type CreateExecutionResponse, type DescribeExecutionResponse } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { CompleteTaskRequestSchema, FailTaskRequestSchema, CancelTaskRequestSchema, DelayTaskRequestSchema, RenewLeaseRequestSchema, UpdateProgressRequestSchema } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { FenceSchema, RetryPolicySchema } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import { startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient, RawSession } from "../support/raw-session.js";

/**
 * Every RPC given malformed input answers INVALID_ARGUMENT / RESOURCE_EXHAUSTED with the field
 * named, and the gateway keeps serving afterwards.
 */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
let worker: ReturnType<typeof rawClient>;
const UUID = "00000000-0000-4000-8000-000000000000";
const goodFence = () => create(FenceSchema, { executionId: `0:${UUID}`, leaseId: UUID, leaseEpoch: 1n, attemptId: UUID });

beforeAll(async () => {
  h = await startHarness({ maxPayloadBytes: 1024 * 1024, maxMessageBytes: 2 * 1024 * 1024 });
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
  worker = rawClient(WorkerService, h.gateway.grpcAddress);
});
afterAll(async () => {
  exec.close();
  worker.close();
  await h.stop();
});

async function expectError(p: Promise<unknown>, code: number, reason: string, field: string): Promise<void> {
  const err = await p.then(() => { throw new Error("expected an error"); }, (e: unknown) => e);
  const d = errorDetailOf(err);
  expect({ code: d.code, reason: d.reason, field: d.field }).toEqual({ code, reason, field });
}

const createReq = (init: object = {}) => create(CreateExecutionRequestSchema, { lane: "default", ...init });

test.each([
  ["missing lane", { lane: "" }, "lane"],
  ["bad lane characters", { lane: "a b" }, "lane"],
  ["bad namespace", { namespace: "x/y" }, "namespace"],
  ["priority out of range", { priority: 5000 }, "priority"],
  ["bad capability", { requiredCapabilities: ["ok", "not ok"] }, "required_capabilities[1]"],
  ["bad tag key", { tags: { "bad key": "v" } }, 'tags["bad key"]'],
  ["retry multiplier", { retryPolicy: create(RetryPolicySchema, { maxRetries: 1, multiplier: 0.5 }) }, "retry_policy.multiplier"],
  ["retry jitter", { retryPolicy: create(RetryPolicySchema, { maxRetries: 1, jitter: 2 }) }, "retry_policy.jitter"],
  ["unknown backoff enum", { retryPolicy: create(RetryPolicySchema, { maxRetries: 1, backoff: 99 as never }) }, "retry_policy.backoff"],
  ["kind too long", { kind: "k".repeat(200) }, "kind"],
])("CreateExecution rejects %s naming the field", async (_name, init, field) => {
  await expectError(exec.call("createExecution", createReq(init)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", field);
});

test("CreateExecution rejects an oversize payload with RESOURCE_EXHAUSTED naming input", async () => {
  await expectError(exec.call("createExecution", createReq({ input: new Uint8Array(1024 * 1024 + 1) })), status.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE", "input");
});

test("a message over the transport limit is refused with RESOURCE_EXHAUSTED", async () => {
  const err = await exec.call("createExecution", createReq({ input: new Uint8Array(3 * 1024 * 1024) })).catch((e: unknown) => e);
  expect((err as { code: number }).code).toBe(status.RESOURCE_EXHAUSTED);
});

test("CreateExecutions names the failing item and creates nothing", async () => {
  const req = create(CreateExecutionsRequestSchema, { executions: [createReq({ kind: "a" }), createReq({ lane: "" })] });
  await expectError(exec.call("createExecutions", req), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "executions[1].lane");
  await expectError(exec.call("createExecutions", create(CreateExecutionsRequestSchema, {})), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "executions");
});

test.each([
  ["describeExecution", DescribeExecutionRequestSchema],
  ["getResult", GetResultRequestSchema],
  ["cancelExecution", CancelExecutionRequestSchema],
] as const)("%s rejects malformed and unknown ids", async (method, schema) => {
  await expectError(exec.call(method, create(schema as never, { executionId: "" } as never)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "execution_id");
  await expectError(exec.call(method, create(schema as never, { executionId: "nonsense" } as never)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "execution_id");
  await expectError(exec.call(method, create(schema as never, { executionId: `99:${UUID}` } as never)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "execution_id");
  await expectError(exec.call(method, create(schema as never, { executionId: `1:${UUID}` } as never)), status.NOT_FOUND, "NOT_FOUND", "");
});

test.each([
  ["renewLease", RenewLeaseRequestSchema],
  ["updateProgress", UpdateProgressRequestSchema],
  ["completeTask", CompleteTaskRequestSchema],
  ["failTask", FailTaskRequestSchema],
  ["cancelTask", CancelTaskRequestSchema],
  ["delayTask", DelayTaskRequestSchema],
] as const)("WorkerService.%s rejects missing, malformed and forged fences", async (method, schema) => {
  await expectError(worker.call(method, create(schema as never, {} as never)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "fence");
  const badLease = create(FenceSchema, { ...goodFence(), leaseId: "forged" });
  await expectError(worker.call(method, create(schema as never, { fence: badLease } as never)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "fence.lease_id");
  const badEpoch = create(FenceSchema, { ...goodFence(), leaseEpoch: 0n });
  await expectError(worker.call(method, create(schema as never, { fence: badEpoch } as never)), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "fence.lease_epoch");
  // Well-formed but unknown: a clean NOT_FOUND, never INTERNAL.
  const err = await worker.call(method, create(schema as never, { fence: goodFence(), percent: 1 } as never)).catch((e: unknown) => e);
  expect(errorDetailOf(err).reason).toBe("NOT_FOUND");
});

test("UpdateProgress rejects a percent out of range", async () => {
  await expectError(worker.call("updateProgress", create(UpdateProgressRequestSchema, { fence: goodFence(), percent: 101 })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "percent");
});

test("Session: a first message other than Hello ends the stream with HELLO_REQUIRED", async () => {
  const s = new RawSession(h.gateway.grpcAddress);
  s.send({ body: { case: "heartbeat", value: {} } });
  const st = await s.finished();
  expect(st.code).toBe(status.INVALID_ARGUMENT);
  expect(st.metadata.get("ff-error-reason")[0]).toBe("HELLO_REQUIRED");
  s.kill();
});

test.each([
  ["no lanes", { workerId: "w", instanceId: "i", maxConcurrentTasks: 1 }, "hello.lanes"],
  ["bad worker id", { workerId: "", instanceId: "i", lanes: ["a"], maxConcurrentTasks: 1 }, "hello.worker_id"],
  ["zero capacity", { workerId: "w", instanceId: "i", lanes: ["a"], maxConcurrentTasks: 0 }, "hello.max_concurrent_tasks"],
  ["bad held lease", { workerId: "w", instanceId: "i", lanes: ["a"], maxConcurrentTasks: 1, heldLeases: [{ executionId: "x" }] }, "hello.held_leases[0].execution_id"],
])("Session: a Hello with %s is refused naming the field", async (_n, hello, field) => {
  const s = new RawSession(h.gateway.grpcAddress);
  s.send({ body: { case: "hello", value: hello } });
  const st = await s.finished();
  expect(st.code).toBe(status.INVALID_ARGUMENT);
  expect(st.metadata.get("ff-error-field")[0]).toBe(field);
  s.kill();
});

test("Session: malformed operations get an OperationError by request id and the stream stays up", async () => {
  const s = new RawSession(h.gateway.grpcAddress);
  s.send({ body: { case: "hello", value: { workerId: "w", instanceId: "i1", lanes: ["malformed"], maxConcurrentTasks: 1 } } });
  await s.next("welcome");
  s.send({ requestId: "", body: { case: "complete", value: { fence: goodFence() } } });
  const noId = await s.next("error");
  expect(noId.body.value.detail?.field).toBe("request_id");
  s.send({ requestId: "r1", body: { case: "complete", value: {} } });
  const missing = await s.next("error", (m) => m.requestId === "r1");
  expect(missing.body.value.detail?.field).toBe("complete.fence");
  s.send({ requestId: "r2", body: { case: "fail", value: { fence: goodFence(), category: "bad category!" } } });
  const cat = await s.next("error", (m) => m.requestId === "r2");
  expect(cat.body.value.detail?.field).toBe("fail.category");
  s.send({ requestId: "r3", body: { case: "complete", value: { fence: goodFence(), result: new Uint8Array(1024 * 1024 + 1) } } });
  const big = await s.next("error", (m) => m.requestId === "r3");
  expect(big.body.value.code).toBe(status.RESOURCE_EXHAUSTED);
  expect(big.body.value.detail?.field).toBe("complete.result");
  s.send({ body: { case: "ping", value: { nonce: 7n } } });
  expect((await s.next("pong")).body.value.nonce).toBe(7n);
  s.kill();
});

test("a non-ASCII tag key is refused with its field named, the trailer percent-encoded (gRPC)", async () => {
  const err = await exec.call("createExecution", createReq({ tags: { "é": "v" } })).catch((e: unknown) => e);
  expect(errorDetailOf(err)).toMatchObject({ code: status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field: 'tags["é"]' });
  const md = (err as { metadata: { get(k: string): unknown[] } }).metadata;
  expect(md.get("ff-error-field")[0]).toBe('tags["%C3%A9"]');
  expect(decodeURIComponent(String(md.get("ff-error-field")[0]))).toBe('tags["é"]');
});

test("a non-ASCII tag key over Connect JSON is a 400 naming the field, not a 500", async () => {
  const res = await fetch(`${h.gateway.httpAddress}/flowfabric.v1.ExecutionService/CreateExecution`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ lane: "x", tags: { "é\u0000\n": "v" } }),
  });
  expect(res.status).toBe(400);
  expect(res.headers.get("ff-error-field")).toBe('tags["%C3%A9\\u0000\\n"]');
  const body = (await res.json()) as { code: string; message: string };
  expect(body.code).toBe("invalid_argument");
});

test("the gateway keeps serving after all of the above", async () => {
  const res = await exec.call<CreateExecutionResponse>("createExecution", createReq({ kind: "after" }));
  const d = await exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: res.executionId }));
  expect(d.execution?.kind).toBe("after");
});
