import { create } from "@bufbuild/protobuf";
import { ReadStreamRequestSchema, StreamService, type ReadStreamResponse } from "../../sdk-ts/src/gen/flowfabric/v1/stream_pb.js";
import { CreateExecutionRequestSchema, ExecutionService, type CreateExecutionResponse } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import type { Fence } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import type { SessionRequest, Task } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { startHarness, type Harness } from "../support/gateway.js";
import { rawClient, RawSession } from "../support/raw-session.js";

/**
 * What docs/protocol.md promises about one stream's operations, at the protocol level (a raw
 * worker: no SDK): ordering of a lease's operations, re-sent operations after a reconnect.
 */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
let streams: ReturnType<typeof rawClient>;
const sessions: RawSession[] = [];
let n = 0;

beforeAll(async () => {
  h = await startHarness();
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
  streams = rawClient(StreamService as never, h.gateway.grpcAddress);
});
afterAll(async () => {
  for (const s of sessions) s.kill();
  exec.close();
  streams.close();
  await h.stop();
});

async function session(lane: string, opts: { slots?: number; held?: Fence[]; batching?: boolean } = {}): Promise<RawSession> {
  const s = new RawSession(h.gateway.grpcAddress);
  sessions.push(s);
  s.send({ body: { case: "hello", value: {
    workerId: "raw", instanceId: `raw-contract-${++n}`, lanes: [lane], maxConcurrentTasks: opts.slots ?? 10,
    heldLeases: opts.held ?? [], batching: opts.batching ?? false,
  } } });
  await s.next("welcome");
  return s;
}

async function createOne(lane: string): Promise<string> {
  return (await exec.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { lane }))).executionId;
}

const append = (t: Task, seq: number, requestId = `a${seq}`): SessionRequest["body"] & { case: "appendFrame" } =>
  ({ case: "appendFrame", value: { fence: t.fence!, frameType: "log", payload: Buffer.from(`f${seq}`), sequence: BigInt(seq) } }) as never;
const readFrames = (executionId: string) => streams.call<ReadStreamResponse>("readStream", create(ReadStreamRequestSchema, { executionId, attemptIndex: 0 }));

test("a lease's appends sent before its complete are all stored before the stream closes (even unawaited, one batch)", async () => {
  const s = await session("order-appends", { batching: true });
  const id = await createOne("order-appends");
  const [t] = (await s.next("tasks")).body.value.tasks;
  s.send({ body: { case: "batch", value: { requests: [
    { body: { case: "ack", value: { leaseIds: [t!.fence!.leaseId] } } },
    ...[1, 2, 3, 4, 5].map((i) => ({ requestId: `a${i}`, body: append(t!, i) })),
    { requestId: "done", body: { case: "complete", value: { fence: t!.fence! } } },
  ] } } });
  for (const i of [1, 2, 3, 4, 5]) expect((await s.next("appendFrame", (m) => m.requestId === `a${i}`)).body.value.duplicate).toBe(false);
  expect((await s.next("complete", (m) => m.requestId === "done")).body.value.reconciled).toBe(false);
  const read = await readFrames(id);
  expect(read.frames.map((f) => Buffer.from(f.payload).toString())).toEqual(["f1", "f2", "f3", "f4", "f5"]);
});

test("after a reconnect, re-sent appends whose frames were stored and a re-sent complete that committed are answered as such", async () => {
  const first = await session("resend");
  const id = await createOne("resend");
  const [t] = (await first.next("tasks")).body.value.tasks;
  first.send({ body: { case: "ack", value: { leaseIds: [t!.fence!.leaseId] } } });
  first.send({ requestId: "a1", body: append(t!, 1) });
  first.send({ requestId: "a2", body: append(t!, 2) });
  first.send({ requestId: "c", body: { case: "complete", value: { fence: t!.fence! } } });
  await first.next("complete", (m) => m.requestId === "c");
  // Say the answers never reached the worker: the stream breaks, it reconnects and re-sends all three.
  first.kill();
  const second = await session("resend", { held: [t!.fence!] });
  second.send({ requestId: "a1", body: append(t!, 1) });
  second.send({ requestId: "a2", body: append(t!, 2) });
  second.send({ requestId: "c", body: { case: "complete", value: { fence: t!.fence! } } });
  expect((await second.next("appendFrame", (m) => m.requestId === "a1")).body.value.duplicate).toBe(true);
  expect((await second.next("appendFrame", (m) => m.requestId === "a2")).body.value.duplicate).toBe(true);
  expect((await second.next("complete", (m) => m.requestId === "c")).body.value.reconciled).toBe(true);
  expect((await readFrames(id)).frames).toHaveLength(2);
});

test("adoption of a lease whose own complete committed just before the break answers the committed outcome", async () => {
  const first = await session("adopt-outcome");
  await createOne("adopt-outcome");
  const [t] = (await first.next("tasks")).body.value.tasks;
  first.send({ body: { case: "ack", value: { leaseIds: [t!.fence!.leaseId] } } });
  first.send({ requestId: "c", body: { case: "complete", value: { fence: t!.fence! } } });
  await first.next("complete", (m) => m.requestId === "c");
  first.kill(); // the answer is lost with the stream
  const s = new RawSession(h.gateway.grpcAddress);
  sessions.push(s);
  s.send({ body: { case: "hello", value: { workerId: "raw", instanceId: `raw-contract-${++n}`, lanes: ["adopt-outcome"], maxConcurrentTasks: 1, heldLeases: [t!.fence!] } } });
  const [adoption] = (await s.next("welcome")).body.value.adoptions;
  expect(adoption!.adopted).toBe(false);
  expect(adoption!.error!.reason).toBe("EXECUTION_NOT_ACTIVE");
  expect(adoption!.error!.metadata).toEqual({ state: "completed", outcome: "success", epoch: String(t!.fence!.leaseEpoch) });
});


test("a heartbeat_ack does not report lost a lease whose complete is in flight (and just committed): the complete's answer decides", async () => {
  const s = await session("hb-settling", { batching: true });
  await createOne("hb-settling");
  const [t] = (await s.next("tasks")).body.value.tasks;
  s.send({ body: { case: "ack", value: { leaseIds: [t!.fence!.leaseId] } } });
  // The complete commits in the store first (as when its FCALL runs before the renewal's) ...
  await h.gateway.engine.complete({ executionId: t!.fence!.executionId, leaseId: t!.fence!.leaseId, leaseEpoch: Number(t!.fence!.leaseEpoch), attemptId: t!.fence!.attemptId }, undefined);
  // ... while the session has it in flight when the heartbeat's renewal round runs.
  s.send({ body: { case: "batch", value: { requests: [
    { requestId: "c", body: { case: "complete", value: { fence: t!.fence! } } },
    { body: { case: "heartbeat", value: { sentAtMs: BigInt(Date.now()) } } },
  ] } } });
  const ack = await s.next("heartbeatAck");
  expect(ack.body.value.leases.filter((l) => l.leaseId === t!.fence!.leaseId)).toEqual([]);
  expect((await s.next("complete", (m) => m.requestId === "c")).body.value.reconciled).toBe(true);
});

test.each([false, true])("a push never arrives before the answer to the complete that freed its slot (batching %s)", async (batching) => {
  const lane = `slots-order-${batching}`;
  const s = await session(lane, { slots: 1, batching });
  await createOne(lane);
  let [t] = (await s.next("tasks")).body.value.tasks;
  for (let i = 0; i < 15; i++) {
    await createOne(lane); // waits: the only slot is taken
    s.send({ body: { case: "ack", value: { leaseIds: [t!.fence!.leaseId] } } });
    s.send({ requestId: `c${i}`, body: { case: "complete", value: { fence: t!.fence! } } });
    const [next] = await Promise.all([s.next("tasks"), s.next("complete", (m) => m.requestId === `c${i}`)]);
    [t] = next.body.value.tasks;
  }
  // In wire order (a batch's messages in their order), every answer precedes the push it made room for.
  const wire = s.received.flatMap((m) => (m.body.case === "batch" ? m.body.value.responses : [m]));
  for (let i = 0; i < 15; i++) {
    const a = wire.findIndex((m) => m.requestId === `c${i}`);
    const pushes = wire.flatMap((m, k) => (m.body.case === "tasks" ? [k] : []));
    expect(a).toBeLessThan(pushes[i + 1]!);
  }
});
