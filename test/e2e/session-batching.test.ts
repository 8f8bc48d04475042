import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { PublicState } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import {
  CreateExecutionsRequestSchema, DescribeExecutionRequestSchema, ExecutionService, type CreateExecutionsResponse, type DescribeExecutionResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { SessionRequestSchema, type SessionRequest, type Task } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { FlowFabricClient, FlowFabricWorker } from "../../sdk-ts/src/index.js";
import { awaitAll, startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient, RawSession } from "../support/raw-session.js";

/** Session batching at the protocol level (docs/protocol.md, "Batching"). */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
let n = 0;

beforeAll(async () => {
  h = await startHarness();
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
});
afterAll(async () => {
  exec.close();
  await h.stop();
});

async function session(lane: string, batching: boolean, slots = 10): Promise<RawSession> {
  const s = new RawSession(h.gateway.grpcAddress);
  s.send({ body: { case: "hello", value: { workerId: "raw", instanceId: `raw-batch-${++n}`, lanes: [lane], maxConcurrentTasks: slots, batching } } });
  const welcome = await s.next("welcome");
  expect(welcome.body.value.batching).toBe(true);
  expect(s.received[0]!.body.case).toBe("welcome"); // the Welcome always travels alone
  return s;
}

async function createMany(lane: string, count: number): Promise<string[]> {
  const res = await exec.call<CreateExecutionsResponse>("createExecutions", create(CreateExecutionsRequestSchema, { executions: Array.from({ length: count }, () => ({ lane })) }));
  return res.results.map((r) => r.executionId);
}

async function tasks(s: RawSession, count: number): Promise<Task[]> {
  const got: Task[] = [];
  while (got.length < count) got.push(...(await s.next("tasks")).body.value.tasks);
  return got;
}

const completeRequest = (t: Task, i: number): SessionRequest =>
  create(SessionRequestSchema, { requestId: `c${i}`, body: { case: "complete", value: { fence: t.fence!, result: Buffer.from(`r${i}`) } } });

test("a batch of requests is handled in order; answers to a batching worker come batched", async () => {
  const s = await session("batched-lane", true);
  await createMany("batched-lane", 5);
  const pushed = await tasks(s, 5);
  s.send({ body: { case: "batch", value: { requests: [
    { body: { case: "ack", value: { leaseIds: pushed.map((t) => t.fence!.leaseId) } } },
    ...pushed.map(completeRequest),
  ] } } });
  for (let i = 0; i < 5; i++) expect((await s.next("complete", (m) => m.requestId === `c${i}`)).body.value.reconciled).toBe(false);
  // The five answers are computed in one turn: at least two of them shared a wire message.
  const batches = s.received.filter((m) => m.body.case === "batch");
  expect(batches.some((b) => b.body.case === "batch" && b.body.value.responses.filter((r) => r.body.case === "complete").length >= 2)).toBe(true);
  s.kill();
});

test("a worker that did not ask for batching never receives a batch", async () => {
  const s = await session("plain-lane", false);
  await createMany("plain-lane", 5);
  const pushed = await tasks(s, 5);
  for (const [i, t] of pushed.entries()) s.send(completeRequest(t, i));
  for (let i = 0; i < 5; i++) await s.next("complete", (m) => m.requestId === `c${i}`);
  expect(s.received.filter((m) => m.body.case === "batch")).toEqual([]);
  s.kill();
});

test("bad batches end the stream before any of their requests runs", async () => {
  const empty = await session("bad-batch", true);
  empty.send({ body: { case: "batch", value: { requests: [] } } });
  const ended = await empty.finished();
  expect(ended.code).toBe(status.INVALID_ARGUMENT);
  expect(errorDetailOf(ended)).toMatchObject({ reason: "PROTOCOL_VIOLATION", field: "batch.requests" });

  const s = await session("bad-batch", true);
  const [id] = await createMany("bad-batch", 1);
  const [t] = await tasks(s, 1);
  s.send({ body: { case: "batch", value: { requests: [completeRequest(t!, 0), { body: { case: "hello", value: { workerId: "again" } } }] } } });
  const end = await s.finished();
  expect(end.code).toBe(status.INVALID_ARGUMENT);
  expect(errorDetailOf(end)).toMatchObject({ reason: "PROTOCOL_VIOLATION", field: "batch.requests" });
  // The complete in front of the Hello did not run: never acknowledged, the task went back to the queue.
  const described = await exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: id! }));
  expect(described.execution!.state).toBe(PublicState.WAITING);
});

test("batches stay within a small max_message_bytes: large results from an SDK worker all arrive", async () => {
  const small = await h.startGateway({ maxMessageBytes: 128 * 1024, maxPayloadBytes: 64 * 1024 });
  const sessionsEnded: string[] = [];
  const worker = await FlowFabricWorker.connect({
    address: small.grpcAddress, workerId: "big-results", lanes: ["big-results"], maxConcurrentTasks: 8,
    onEvent: (e) => { if (e.type === "session_ended") sessionsEnded.push(e.error.message); },
  });
  void worker.run(async (task) => Buffer.alloc(60 * 1024, task.inputText()));
  const client = await FlowFabricClient.connect({ address: small.grpcAddress });
  try {
    const ids = (await client.createExecutions(Array.from({ length: 16 }, (_, i) => ({ lane: "big-results", input: String.fromCharCode(97 + i) })))).map((c) => c.executionId);
    const results = await awaitAll((id) => client.getResult(id), ids);
    ids.forEach((id, i) => expect(Buffer.from(results.get(id)!.result!).equals(Buffer.alloc(60 * 1024, String.fromCharCode(97 + i)))).toBe(true));
    expect(sessionsEnded).toEqual([]); // no batch was refused as too large (that ends the session)
  } finally {
    client.close();
    await worker.close({ graceMs: 0 });
  }
});
