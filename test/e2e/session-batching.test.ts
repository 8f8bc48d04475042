import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { CreateExecutionsRequestSchema, ExecutionService, type CreateExecutionsResponse } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { SessionRequestSchema, type SessionRequest, type Task } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { startHarness, type Harness } from "../support/gateway.js";
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

test("bad batches: an empty one is INVALID_ARGUMENT naming batch.requests; a nested Hello ends the stream", async () => {
  const s = await session("bad-batch", true);
  s.send({ requestId: "empty", body: { case: "batch", value: { requests: [] } } });
  const error = await s.next("error", (m) => m.requestId === "empty");
  expect(error.body.value.detail).toMatchObject({ reason: "INVALID_ARGUMENT", field: "batch.requests" });
  s.send({ body: { case: "batch", value: { requests: [{ body: { case: "hello", value: { workerId: "again" } } }] } } });
  const end = await s.finished();
  expect(end.code).toBe(status.INVALID_ARGUMENT);
  expect(errorDetailOf(end)).toMatchObject({ reason: "PROTOCOL_VIOLATION", field: "batch.requests" });
});
