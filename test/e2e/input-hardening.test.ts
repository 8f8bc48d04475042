import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { FenceSchema } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import {
  CreateExecutionRequestSchema, DescribeExecutionRequestSchema, ExecutionService,
  type CreateExecutionResponse, type DescribeExecutionResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { ReadStreamRequestSchema, StreamService, TailStreamRequestSchema, type TailStreamResponse } from "../../sdk-ts/src/gen/flowfabric/v1/stream_pb.js";
import { AppendFrameRequestSchema, CompleteTaskRequestSchema, WorkerService } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { grpcClientConstructor } from "../../sdk-ts/src/transport/grpc-service.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask } from "../../sdk-ts/src/index.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient, RawSession } from "../support/raw-session.js";

/** Input a client controls, at the edges: cursors, id spellings, odd map keys, per-client caps. */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
let worker: ReturnType<typeof rawClient>;
let stream: ReturnType<typeof rawClient>;
let client: FlowFabricClient;
const closers: (() => unknown)[] = [];
const UUID = "00000000-0000-4000-8000-000000000000";

beforeAll(async () => {
  h = await startHarness();
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
  worker = rawClient(WorkerService, h.gateway.grpcAddress);
  stream = rawClient(StreamService as never, h.gateway.grpcAddress);
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
});
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  exec.close();
  worker.close();
  stream.close();
  client.close();
  await h.stop();
});

async function errorOf(p: Promise<unknown>): Promise<{ code: number; reason: string; field: string }> {
  return errorDetailOf(await p.then(() => { throw new Error("expected an error"); }, (e: unknown) => e));
}

/** A raw TailStream call on `address` and its final status. */
function tail(address: string, req: object): { call: grpc.ClientReadableStream<TailStreamResponse>; status: Promise<grpc.StatusObject>; client: grpc.Client } {
  const Ctor = grpcClientConstructor(StreamService);
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { tailStream(req: unknown): grpc.ClientReadableStream<TailStreamResponse> };
  const call = c.tailStream(create(TailStreamRequestSchema, req));
  call.on("data", () => undefined);
  call.on("error", () => undefined);
  closers.push(() => { call.cancel(); c.close(); });
  return { call, client: c, status: new Promise((r) => call.on("status", r)) };
}
const withDetail = (s: grpc.StatusObject): { code: number; reason: string; field: string } => errorDetailOf(Object.assign(new Error(s.details), s));

test("a cursor past 2^64-1 is INVALID_ARGUMENT naming after_entry_id on ReadStream and TailStream", async () => {
  const { executionId } = await client.createExecution({ lane: "cursor", kind: "k", input: "" });
  const bad = "99999999999999999999-0";
  expect(await errorOf(stream.call("readStream", create(ReadStreamRequestSchema, { executionId, afterEntryId: bad }))))
    .toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field: "after_entry_id" });
  expect(await errorOf(stream.call("readStream", create(ReadStreamRequestSchema, { executionId, toEntryId: `1-${bad.split("-")[0]}` }))))
    .toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "to_entry_id" });
  const t = tail(h.gateway.grpcAddress, { executionId, afterEntryId: bad });
  expect(withDetail(await t.status)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field: "after_entry_id" });
  // The largest valid cursor is accepted (nothing follows it yet).
  expect(await stream.call("readStream", create(ReadStreamRequestSchema, { executionId, afterEntryId: "18446744073709551615-18446744073709551615" }))).toMatchObject({ frames: [] });
});

test("the frame watcher refuses a cursor the store would reject, so a shared partition read never fails", () => {
  expect(() => h.gateway.engine.watchFrames(`0:${UUID}`, 0, "99999999999999999999-0", () => undefined)).toThrow(/entry id/);
});

test("execution ids have one spelling: \"05:<uuid>\" is refused, \"5:<uuid>\" names the execution", async () => {
  const made = await exec.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { lane: "ids", kind: "k" }));
  const [partition, uuid] = made.executionId.split(":");
  const padded = `0${partition}:${uuid}`;
  expect(await errorOf(exec.call("describeExecution", create(DescribeExecutionRequestSchema, { executionId: padded }))))
    .toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field: "execution_id" });
  const fence = create(FenceSchema, { executionId: padded, leaseId: UUID, leaseEpoch: 1n, attemptId: UUID });
  expect(await errorOf(worker.call("completeTask", create(CompleteTaskRequestSchema, { fence })))).toMatchObject({ field: "fence.execution_id" });
  const d = await exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: made.executionId }));
  expect(d.execution?.executionId).toBe(made.executionId);
});

test("a tag named __proto__ is stored and returned by describe and in the pushed task", async () => {
  const tags = Object.fromEntries([["__proto__", "p"], ["constructor", "c"], ["plain", "v"]]) as Record<string, string>;
  const made = await exec.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { lane: "proto-tags", kind: "k", tags }));
  const d = await exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: made.executionId }));
  expect(Object.entries(d.execution!.tags).sort()).toEqual([["__proto__", "p"], ["constructor", "c"], ["plain", "v"]]);
  const s = new RawSession(h.gateway.grpcAddress);
  closers.push(() => s.kill());
  s.send({ body: { case: "hello", value: { workerId: "w", instanceId: "proto", lanes: ["proto-tags"], maxConcurrentTasks: 1 } } });
  const pushed = await s.next("tasks");
  expect(Object.entries(pushed.body.value.tasks[0]!.tags).sort()).toEqual([["__proto__", "p"], ["constructor", "c"], ["plain", "v"]]);
});

test("an AppendFrame metadata key with non-ASCII characters is refused naming it; the trailer is header-safe", async () => {
  const fence = create(FenceSchema, { executionId: `0:${UUID}`, leaseId: UUID, leaseEpoch: 1n, attemptId: UUID });
  const err = await worker.call("appendFrame", create(AppendFrameRequestSchema, { fence, frameType: "t", metadata: { [`${"é".repeat(40)}\n`]: "v" } })).catch((e: unknown) => e);
  const field = `metadata[${JSON.stringify(`${"é".repeat(40)}\n`)}]`;
  expect(errorDetailOf(err)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field });
  const md = (err as grpc.ServiceError).metadata;
  expect(decodeURIComponent(String(md.get("ff-error-field")[0]))).toBe(field);
  // The same over Connect JSON: a 400 with the field named, not a 500.
  const res = await fetch(`${h.gateway.httpAddress}/flowfabric.v1.WorkerService/AppendFrame`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ fence: { executionId: `0:${UUID}`, leaseId: UUID, leaseEpoch: "1", attemptId: UUID }, frameType: "t", metadata: { [`${"ключ".repeat(10)}\r\n`]: "v" } }),
  });
  expect(res.status).toBe(400);
  expect(decodeURIComponent(res.headers.get("ff-error-field") ?? "")).toBe(`metadata[${JSON.stringify(`${"ключ".repeat(10)}\r\n`)}]`);
});

test("tails per client are capped with RESOURCE_EXHAUSTED naming max_tails_per_client", async () => {
  const g = await h.startGateway({ maxTailsPerClient: 2, maxTails: 100 });
  const { executionId } = await client.createExecution({ lane: "tail-cap", kind: "k", input: "" });
  const a = tail(g.grpcAddress, { executionId });
  const b = tail(g.grpcAddress, { executionId });
  await eventually(async () => g.tails.active, (n) => n === 2);
  const c = tail(g.grpcAddress, { executionId });
  const refused = await c.status;
  expect(withDetail(refused)).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "LIMIT_EXCEEDED" });
  expect(refused.details).toContain("max_tails_per_client");
  // A slot freed is a slot to take again.
  a.call.cancel();
  await eventually(async () => g.tails.active, (n) => n === 1);
  tail(g.grpcAddress, { executionId });
  await eventually(async () => g.tails.active, (n) => n === 2);
  void b;
});

test("Sessions per connection are capped with RESOURCE_EXHAUSTED naming max_sessions_per_connection", async () => {
  const g = await h.startGateway({ maxSessionsPerConnection: 2 });
  // Sessions on one channel with its own subchannel pool: one HTTP/2 connection.
  const connection = (): grpc.Channel => {
    const ch = new grpc.Channel(g.grpcAddress, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    closers.push(() => ch.close());
    return ch;
  };
  const channel = connection();
  const open = (): RawSession => {
    const s = new RawSession(g.grpcAddress, undefined, channel);
    closers.push(() => s.kill());
    s.send({ body: { case: "hello", value: { workerId: "w", instanceId: `cap${Math.random()}`, lanes: ["cap"], maxConcurrentTasks: 1 } } });
    return s;
  };
  const a = open();
  const b = open();
  await Promise.all([a.next("welcome"), b.next("welcome")]);
  const c = open();
  const st = await c.finished();
  expect(st.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(st.details).toContain("max_sessions_per_connection");
  // A separate connection is not affected.
  const other = new RawSession(g.grpcAddress, undefined, connection());
  closers.push(() => other.kill());
  other.send({ body: { case: "hello", value: { workerId: "w", instanceId: "other", lanes: ["cap"], maxConcurrentTasks: 1 } } });
  await other.next("welcome");
});

test("the gateway serves on after all of the above", async () => {
  const w = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, workerId: "after", lanes: ["after"], maxConcurrentTasks: 1 });
  closers.push(() => w.close({ graceMs: 0 }));
  void w.run(async (task: ClaimedTask) => `done ${task.executionKind}`);
  const { executionId } = await client.createExecution({ lane: "after", kind: "k", input: "" });
  await eventually(() => client.getResult(executionId), (r) => r.state === "completed");
});
