/**
 * Authentication and namespace isolation end to end (docs/security.md): a gateway with bearer
 * tokens, called through the SDK, raw grpc-js clients, raw Session streams and Connect JSON over
 * plain HTTP. Every refusal is checked for its status, reason and field.
 */
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { request as httpRequest } from "node:http";
import {
  CancelExecutionRequestSchema, CreateExecutionRequestSchema, CreateExecutionsRequestSchema, DescribeExecutionRequestSchema, ExecutionService,
  GetResultRequestSchema, type CreateExecutionResponse, type DescribeExecutionResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { CompleteTaskRequestSchema, WorkerService, type Task } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { FlowFabricClient, FlowFabricError, FlowFabricWorker } from "../../sdk-ts/src/index.js";
import type { TokenSpec } from "../../gateway/src/auth/tokens.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient, RawSession } from "../support/raw-session.js";

const T = {
  producerA: "producer-acme-0123456789abcdef",
  workerA: "worker-acme-0123456789abcdef",
  producerB: "producer-beta-0123456789abcdef",
  workerB: "worker-beta-0123456789abcdef",
  workerBoth: "worker-both-0123456789abcdef",
  opsA: "operator-acme-0123456789abcdef",
  scraper: "metrics-0123456789abcdef",
} as const;
const TOKENS: TokenSpec[] = [
  { name: "producer-acme", token: T.producerA, roles: ["producer"], namespaces: ["acme"] },
  { name: "worker-acme", token: T.workerA, roles: ["worker"], namespaces: ["acme"] },
  { name: "producer-beta", token: T.producerB, roles: ["producer"], namespaces: ["beta"] },
  { name: "worker-beta", token: T.workerB, roles: ["worker"], namespaces: ["beta"] },
  { name: "worker-both", token: T.workerBoth, roles: ["worker"], namespaces: ["acme", "beta"] },
  { name: "ops-acme", token: T.opsA, roles: ["operator"], namespaces: ["acme"] },
  { name: "scraper", token: T.scraper, roles: ["metrics"], namespaces: ["*"] },
];

let h: Harness;
let lanes = 0;
const nextLane = (): string => `auth-${++lanes}`;

beforeAll(async () => {
  h = await startHarness({ authTokens: TOKENS });
});
afterAll(async () => {
  await h.stop();
});

/** Runs `fn` with a raw client of `service` sending `token`, closing it afterwards. */
async function withRaw<R>(service: typeof ExecutionService | typeof WorkerService, token: string | undefined, fn: (c: ReturnType<typeof rawClient>) => Promise<R>): Promise<R> {
  const c = rawClient(service, h.gateway.grpcAddress, token);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}
const refusal = (p: Promise<unknown>) => p.then(() => { throw new Error("expected a refusal"); }, errorDetailOf);

async function createIn(namespace: string, token: string, lane = nextLane()): Promise<string> {
  return withRaw(ExecutionService, token, async (c) =>
    (await c.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { namespace, lane, input: Buffer.from("x") }))).executionId);
}

/** A raw Session in `namespace` holding one acknowledged task of a fresh execution there. */
async function heldTask(namespace: string, token: string, producer: string): Promise<{ session: RawSession; task: Task; lane: string }> {
  const lane = nextLane();
  await createIn(namespace, producer, lane);
  const session = new RawSession(h.gateway.grpcAddress, token);
  session.send({ body: { case: "hello", value: { workerId: "raw", instanceId: `raw-${lane}`, namespace, lanes: [lane], maxConcurrentTasks: 1 } } });
  await session.next("welcome");
  const task = (await session.next("tasks")).body.value.tasks[0]!;
  session.send({ body: { case: "ack", value: { leaseIds: [task.fence!.leaseId] } } });
  return { session, task, lane };
}

/** A plain HTTP request to the HTTP listener: status, headers and JSON body. */
function http(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, h.gateway.httpAddress);
    const req = httpRequest(url, { method, headers: body === undefined ? headers : { "content-type": "application/json", ...headers } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => { text += d.toString(); });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test("with tokens, a producer and a worker of one namespace run an execution through the SDK; an operator's cancel is audited with its token name", async () => {
  const lane = nextLane();
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, authToken: T.producerA, namespace: "acme" });
  const worker = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, authToken: T.workerA, namespace: "acme", workerId: "w-acme", lanes: [lane] });
  const ops = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, authToken: T.opsA, namespace: "acme" });
  try {
    void worker.run(async (task) => Buffer.from(`done ${task.inputText()}`));
    const { executionId } = await client.createExecution({ lane, kind: "k", input: Buffer.from("one") });
    const result = await eventually(() => client.getResult(executionId), (r) => r.state === "completed");
    expect(Buffer.from(result.result ?? new Uint8Array()).toString()).toBe("done one");

    const later = await client.createExecution({ lane: nextLane(), kind: "k", input: Buffer.from("two") });
    expect((await ops.cancelExecution(later.executionId, "not needed")).cancelled).toBe(true);
    expect((await client.describeExecution(later.executionId)).cancelledBy).toBe("ops-acme");
  } finally {
    await worker.close();
    client.close();
    ops.close();
  }
});

test("a call without a token, with an unknown token or with a malformed header is UNAUTHENTICATED on gRPC, Connect and the Session", async () => {
  const id = await createIn("acme", T.producerA);
  const describeReq = create(DescribeExecutionRequestSchema, { executionId: id });
  for (const token of [undefined, "no-such-token-0123456789"]) {
    expect(await withRaw(ExecutionService, token, (c) => refusal(c.call("describeExecution", describeReq))))
      .toMatchObject({ code: status.UNAUTHENTICATED, reason: "UNAUTHENTICATED", field: "authorization" });
  }
  for (const headers of [{}, { authorization: "Bearer no-such-token-0123456789" }, { authorization: `Basic ${T.producerA}` }]) {
    const res = await http("POST", "/flowfabric.v1.ExecutionService/DescribeExecution", headers, { executionId: id });
    expect(res.status).toBe(401);
    expect(res.headers["ff-error-reason"]).toBe("UNAUTHENTICATED");
    expect(JSON.parse(res.body)).toMatchObject({ code: "unauthenticated" });
    expect(res.body).not.toContain(T.producerA);
  }
  const session = new RawSession(h.gateway.grpcAddress);
  session.send({ body: { case: "hello", value: { workerId: "raw", instanceId: "anon", namespace: "acme", lanes: ["x"], maxConcurrentTasks: 1 } } });
  const ended = await session.finished();
  expect(ended.code).toBe(status.UNAUTHENTICATED);
  session.kill();
  const refused = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, authToken: "no-such-token-0123456789", namespace: "acme", workerId: "w", lanes: ["x"] })
    .then(() => undefined, (e: unknown) => e);
  expect(refused).toBeInstanceOf(FlowFabricError);
  expect(refused).toMatchObject({ code: "UNAUTHENTICATED", reason: "UNAUTHENTICATED" });
});

test("a token without the role is PERMISSION_DENIED: a producer opening a Session, a worker cancelling or creating as an operator would", async () => {
  const refused = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, authToken: T.producerA, namespace: "acme", workerId: "w", lanes: ["x"] })
    .then(() => undefined, (e: unknown) => e);
  expect(refused).toMatchObject({ code: "PERMISSION_DENIED", reason: "PERMISSION_DENIED", metadata: { required_roles: "worker,operator", token: "producer-acme" } });

  const id = await createIn("acme", T.producerA);
  const cancel = await withRaw(ExecutionService, T.workerA, (c) => refusal(c.call("cancelExecution", create(CancelExecutionRequestSchema, { executionId: id, reason: "x" }))));
  expect(cancel).toMatchObject({ code: status.PERMISSION_DENIED, reason: "PERMISSION_DENIED", metadata: { required_roles: "operator" } });
  const createRefused = await withRaw(ExecutionService, T.workerA, (c) => refusal(c.call("createExecution", create(CreateExecutionRequestSchema, { namespace: "acme", lane: "l" }))));
  expect(createRefused).toMatchObject({ code: status.PERMISSION_DENIED, reason: "PERMISSION_DENIED" });
  // The execution was left alone.
  const info = await withRaw(ExecutionService, T.producerA, (c) => c.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: id })));
  expect(info.execution?.cancelledBy).toBe("");
});

test("another namespace's execution is PERMISSION_DENIED for describe, result, cancel, read and tail; creating in it too", async () => {
  const id = await createIn("acme", T.producerA);
  const byId = { executionId: id };
  const denied = { code: status.PERMISSION_DENIED, reason: "PERMISSION_DENIED", field: "execution_id", metadata: { namespace: "acme" } };
  await withRaw(ExecutionService, T.producerB, async (c) => {
    expect(await refusal(c.call("describeExecution", create(DescribeExecutionRequestSchema, byId)))).toMatchObject(denied);
    expect(await refusal(c.call("getResult", create(GetResultRequestSchema, byId)))).toMatchObject(denied);
    expect(await refusal(c.call("createExecution", create(CreateExecutionRequestSchema, { namespace: "acme", lane: "l" }))))
      .toMatchObject({ code: status.PERMISSION_DENIED, field: "namespace" });
    // An empty namespace is "default", which producer-beta does not hold either.
    expect(await refusal(c.call("createExecution", create(CreateExecutionRequestSchema, { lane: "l" })))).toMatchObject({ field: "namespace", metadata: { namespace: "default" } });
    expect(await refusal(c.call("createExecutions", create(CreateExecutionsRequestSchema, { executions: [{ namespace: "beta", lane: "l" }, { namespace: "acme", lane: "l" }] }))))
      .toMatchObject({ code: status.PERMISSION_DENIED, field: "executions[1].namespace" });
  });
  const client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, authToken: T.producerB, namespace: "beta" });
  try {
    await expect(client.readStream(id, 0)).rejects.toMatchObject({ code: "PERMISSION_DENIED", field: "execution_id" });
    const tail = client.tailStream(id, 0);
    await expect((async () => { for await (const frame of tail) void frame; })()).rejects.toMatchObject({ code: "PERMISSION_DENIED", field: "execution_id" });
  } finally {
    client.close();
  }
  // Connect JSON: 403 with the reason and field headers; an operator of another namespace cannot cancel it either.
  const res = await http("POST", "/flowfabric.v1.ExecutionService/GetResult", { authorization: `Bearer ${T.producerB}` }, byId);
  expect(res.status).toBe(403);
  expect(res.headers).toMatchObject({ "ff-error-reason": "PERMISSION_DENIED", "ff-error-field": "execution_id" });
  const betaId = await createIn("beta", T.producerB);
  const cancel = await withRaw(ExecutionService, T.opsA, (c) => refusal(c.call("cancelExecution", create(CancelExecutionRequestSchema, { executionId: betaId, reason: "x" }))));
  expect(cancel).toMatchObject({ code: status.PERMISSION_DENIED, field: "execution_id", metadata: { namespace: "beta" } });
  // Unknown ids stay NOT_FOUND; malformed ones INVALID_ARGUMENT naming the field.
  await withRaw(ExecutionService, T.producerB, async (c) => {
    expect(await refusal(c.call("describeExecution", create(DescribeExecutionRequestSchema, { executionId: "1:01890000-0000-7000-8000-000000000000" }))))
      .toMatchObject({ code: status.NOT_FOUND, field: "execution_id" });
    expect(await refusal(c.call("describeExecution", create(DescribeExecutionRequestSchema, { executionId: "nope" })))).toMatchObject({ code: status.INVALID_ARGUMENT, field: "execution_id" });
  });
});

test("a worker op on another namespace's lease is PERMISSION_DENIED, unary and on a Session; the lease holder still completes", async () => {
  const { session, task } = await heldTask("acme", T.workerA, T.producerA);
  const fence = task.fence!;
  const unary = await withRaw(WorkerService, T.workerB, (c) => refusal(c.call("completeTask", create(CompleteTaskRequestSchema, { fence, result: Buffer.from("stolen") }))));
  expect(unary).toMatchObject({ code: status.PERMISSION_DENIED, reason: "PERMISSION_DENIED", field: "fence.execution_id", metadata: { namespace: "acme" } });

  const other = new RawSession(h.gateway.grpcAddress, T.workerB);
  other.send({ body: { case: "hello", value: { workerId: "raw", instanceId: "thief", namespace: "beta", lanes: ["none"], maxConcurrentTasks: 1 } } });
  await other.next("welcome");
  other.send({ requestId: "r1", body: { case: "complete", value: { fence, result: Buffer.from("stolen") } } });
  const opError = await other.next("error", (m) => m.requestId === "r1");
  expect(opError.body.value.code).toBe(status.PERMISSION_DENIED);
  expect(opError.body.value.detail).toMatchObject({ reason: "PERMISSION_DENIED", field: "complete.fence.execution_id" });
  other.kill();

  session.send({ requestId: "mine", body: { case: "complete", value: { fence, result: Buffer.from("mine") } } });
  const done = await session.next("complete", (m) => m.requestId === "mine");
  expect(done.body.value.reconciled).toBe(false);
  session.kill();
});

test("a worker declaring a namespace its token does not grant is refused at Hello", async () => {
  const refused = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, authToken: T.workerA, namespace: "beta", workerId: "w", lanes: ["x"] })
    .then(() => undefined, (e: unknown) => e);
  expect(refused).toMatchObject({ code: "PERMISSION_DENIED", reason: "PERMISSION_DENIED", field: "hello.namespace", metadata: { namespace: "beta" } });
});

test("held-lease adoption across namespaces is refused; the lease stays with its holder", async () => {
  const { session, task } = await heldTask("acme", T.workerA, T.producerA);
  const fence = task.fence!;
  // A token granting both namespaces, but a session of "beta" offering acme's lease.
  const other = new RawSession(h.gateway.grpcAddress, T.workerBoth);
  other.send({ body: { case: "hello", value: { workerId: "raw", instanceId: "adopter", namespace: "beta", lanes: ["none"], maxConcurrentTasks: 1, heldLeases: [fence] } } });
  const welcome = (await other.next("welcome")).body.value;
  expect(welcome.adoptions).toHaveLength(1);
  expect(welcome.adoptions[0]).toMatchObject({ executionId: fence.executionId, adopted: false, error: { reason: "PERMISSION_DENIED", field: "hello.held_leases[0].execution_id" } });
  other.kill();
  session.send({ requestId: "mine", body: { case: "complete", value: { fence, result: Buffer.from("mine") } } });
  expect((await session.next("complete", (m) => m.requestId === "mine")).body.value.reconciled).toBe(false);
  session.kill();
});

test("/healthz is open; /metrics needs a token with the metrics or operator role", async () => {
  expect((await http("GET", "/healthz")).status).toBe(200);
  const anonymous = await http("GET", "/metrics");
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers["www-authenticate"]).toContain("Bearer");
  expect((await http("GET", "/metrics", { authorization: `Bearer ${T.producerA}` })).status).toBe(403);
  const scraped = await http("GET", "/metrics", { authorization: `Bearer ${T.scraper}` });
  expect(scraped.status).toBe(200);
  expect(scraped.body).toContain("flowfabric_");
  expect((await http("GET", "/metrics", { authorization: `Bearer ${T.opsA}` })).status).toBe(200);
});

test("the metrics role alone calls no RPC", async () => {
  const res = await http("POST", "/flowfabric.v1.ExecutionService/CreateExecution", { authorization: `Bearer ${T.scraper}` }, { lane: "l" });
  expect(res.status).toBe(403);
  expect(res.headers["ff-error-reason"]).toBe("PERMISSION_DENIED");
});
