import { create } from "@bufbuild/protobuf";
import {
  CreateExecutionsRequestSchema, DescribeExecutionRequestSchema, ExecutionService, type CreateExecutionsResponse, type DescribeExecutionResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import type { Task } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { startHarness, type Harness } from "../support/gateway.js";
import { rawClient, RawSession } from "../support/raw-session.js";

/** The record of a granted execution names the session it was pushed to, however claims are batched. */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
const sessions: RawSession[] = [];

beforeAll(async () => {
  // One partition: the ten executions come from one claim shared by both sessions.
  h = await startHarness({ partitions: 1 });
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
});
afterAll(async () => {
  for (const s of sessions) s.kill();
  exec.close();
  await h.stop();
});

async function idleWorker(lane: string, instanceId: string, slots: number): Promise<RawSession> {
  const s = new RawSession(h.gateway.grpcAddress);
  sessions.push(s);
  s.send({ body: { case: "hello", value: { workerId: "same-worker", instanceId, lanes: [lane], maxConcurrentTasks: slots } } });
  await s.next("welcome");
  return s;
}

async function received(s: RawSession, count: number): Promise<Task[]> {
  const got: Task[] = [];
  while (got.length < count) got.push(...(await s.next("tasks")).body.value.tasks);
  // Acknowledged: the tasks keep their lease when the test ends the stream (nothing to requeue).
  s.send({ body: { case: "ack", value: { leaseIds: got.map((t) => t.fence!.leaseId) } } });
  return got;
}

test("two idle workers, 10 new executions: 5 pushed to each, and every record names its own instance", async () => {
  const lane = "identity";
  const a = await idleWorker(lane, "instance-a", 5);
  const b = await idleWorker(lane, "instance-b", 5);
  await exec.call<CreateExecutionsResponse>("createExecutions", create(CreateExecutionsRequestSchema, { executions: Array.from({ length: 10 }, () => ({ lane })) }));
  const [toA, toB] = await Promise.all([received(a, 5), received(b, 5)]);
  expect(toA).toHaveLength(5);
  expect(toB).toHaveLength(5);
  const holders = async (tasks: Task[]): Promise<string[]> =>
    Promise.all(tasks.map(async (t) => {
      const d = await exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId: t.fence!.executionId }));
      return d.execution!.workerInstanceId;
    }));
  expect(await holders(toA)).toEqual(Array(5).fill("instance-a"));
  expect(await holders(toB)).toEqual(Array(5).fill("instance-b"));
});
