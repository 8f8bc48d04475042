import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { PublicState, type Fence } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import {
  CreateExecutionRequestSchema, DescribeExecutionRequestSchema, ExecutionService, GetResultRequestSchema,
  type CreateExecutionResponse, type DescribeExecutionResponse, type GetResultResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { CompleteTaskRequestSchema, WorkerService, type CompleteTaskResponse, type Task } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient, RawSession } from "../support/raw-session.js";

/** Lease, fencing and replay behaviour at the protocol level (no SDK politeness in the way). */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
let worker: ReturnType<typeof rawClient>;
let n = 0;

beforeAll(async () => {
  h = await startHarness({ leaseTtlMs: 1000, heartbeatIntervalMs: 300 });
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
  worker = rawClient(WorkerService, h.gateway.grpcAddress);
});
afterAll(async () => {
  exec.close();
  worker.close();
  await h.stop();
});

async function createOne(lane: string, input = "x"): Promise<string> {
  const res = await exec.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { lane, input: Buffer.from(input) }));
  return res.executionId;
}
const describe_ = (id: string) => exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: id })).then((r) => r.execution!);
const complete = (fence: Fence, result = "done") => worker.call<CompleteTaskResponse>("completeTask", create(CompleteTaskRequestSchema, { fence, result: Buffer.from(result) }));

async function session(lane: string): Promise<RawSession> {
  const s = new RawSession(h.gateway.grpcAddress);
  s.send({ body: { case: "hello", value: { workerId: "raw", instanceId: `raw-${++n}`, lanes: [lane], maxConcurrentTasks: 1 } } });
  await s.next("welcome");
  return s;
}
async function nextTask(s: RawSession): Promise<Task> {
  const push = await s.next("tasks");
  return push.body.value.tasks[0]!;
}

test("a zombie's late complete is rejected as a stale lease after its lease expired and the work moved on", async () => {
  const lane = "zombie";
  const id = await createOne(lane);
  const zombie = await session(lane);
  const first = await nextTask(zombie);
  zombie.send({ body: { case: "ack", value: { leaseIds: [first.fence!.leaseId] } } });
  zombie.send({ body: { case: "credit", value: { maxConcurrentTasks: 0 } } }); // it must not get the work back
  // The zombie never heartbeats: its lease expires and the scanner requeues the execution.
  const healthy = await session(lane);
  const second = await nextTask(healthy);
  expect(second.fence!.executionId).toBe(id);
  expect(second.attemptIndex).toBe(first.attemptIndex + 1);
  expect(second.fence!.leaseEpoch).toBeGreaterThan(first.fence!.leaseEpoch);
  const err = await complete(first.fence!, "zombie").catch((e: unknown) => e);
  expect(errorDetailOf(err)).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "STALE_LEASE" });
  await complete(second.fence!, "healthy");
  const result = await exec.call<GetResultResponse>("getResult", create(GetResultRequestSchema, { executionId: id }));
  expect(Buffer.from(result.result!).toString()).toBe("healthy");
  zombie.kill();
  healthy.kill();
});

test("a complete replayed after a lost reply is reconciled, not an error", async () => {
  const lane = "replay";
  const id = await createOne(lane);
  const s = await session(lane);
  const t = await nextTask(s);
  expect((await complete(t.fence!)).reconciled).toBe(false);
  expect((await complete(t.fence!)).reconciled).toBe(true);
  expect((await describe_(id)).state).toBe(PublicState.COMPLETED);
  s.kill();
});

test("a pushed task never acknowledged is requeued at once when its session dies", async () => {
  const lane = "unacked";
  const id = await createOne(lane);
  const s = await session(lane);
  const t = await nextTask(s);
  expect(t.fence!.executionId).toBe(id);
  s.kill(); // no ack sent
  const rec = await eventually(() => describe_(id), (e) => e.state === PublicState.WAITING, 900); // well below the 1000 ms lease TTL
  expect(rec.ownershipState).toBe("unowned");
  const other = await session(lane);
  const again = await nextTask(other);
  expect(again.fence!.executionId).toBe(id);
  other.kill();
});

test("heartbeats renew every held lease and report each outcome", async () => {
  const lane = "heartbeat";
  const id = await createOne(lane);
  const s = await session(lane);
  const t = await nextTask(s);
  s.send({ body: { case: "ack", value: { leaseIds: [t.fence!.leaseId] } } });
  const before = Number(t.leaseExpiresAtMs);
  // Outlive the 1000 ms TTL by heartbeating every 300 ms.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 300));
    s.send({ body: { case: "heartbeat", value: {} } });
    const ack = await s.next("heartbeatAck");
    expect(ack.body.value.leases).toHaveLength(1);
    expect(ack.body.value.leases[0]).toMatchObject({ executionId: id, renewed: true });
  }
  const rec = await describe_(id);
  expect(rec.state).toBe(PublicState.ACTIVE);
  expect(Number(rec.leaseExpiresAtMs)).toBeGreaterThan(before);
  await complete(t.fence!);
  s.kill();
});

test("lease expiry is reported to a session that stopped heartbeating (LeaseLost)", async () => {
  const lane = "lost";
  await createOne(lane);
  const s = await session(lane);
  const t = await nextTask(s);
  s.send({ body: { case: "ack", value: { leaseIds: [t.fence!.leaseId] } } });
  const lost = await s.next("leaseLost", () => true, 5000);
  expect(lost.body.value).toMatchObject({ executionId: t.fence!.executionId, leaseId: t.fence!.leaseId, reason: "LEASE_EXPIRED" });
  s.kill();
});
