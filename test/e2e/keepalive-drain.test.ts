import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { CreateExecutionRequestSchema, DescribeExecutionRequestSchema, ExecutionService, type CreateExecutionResponse, type DescribeExecutionResponse } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { PublicState } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { rawClient, RawSession } from "../support/raw-session.js";

/** Application-level keepalive in both directions, and drain on shutdown. */
let h: Harness;
let exec: ReturnType<typeof rawClient>;
beforeAll(async () => {
  h = await startHarness({ keepaliveIntervalMs: 200, heartbeatIntervalMs: 100, leaseTtlMs: 5000 });
  exec = rawClient(ExecutionService, h.gateway.grpcAddress);
});
afterAll(async () => {
  exec.close();
  await h.stop();
});

const hello = (lane: string, instance: string) => ({ body: { case: "hello" as const, value: { workerId: "raw", instanceId: instance, lanes: [lane], maxConcurrentTasks: 1 } } });

test("the gateway pings an idle session and answers the worker's pings", async () => {
  const s = new RawSession(h.gateway.grpcAddress);
  s.send(hello("idle", "ka-1"));
  await s.next("welcome");
  const ping = await s.next("ping", () => true, 2000); // sent after 200 ms of silence from the gateway
  s.send({ body: { case: "pong", value: { nonce: ping.body.value.nonce } } });
  s.send({ body: { case: "ping", value: { nonce: 42n } } });
  expect((await s.next("pong")).body.value.nonce).toBe(42n);
  s.kill();
});

test("a silent worker is dropped and its unacknowledged task is requeued", async () => {
  const { executionId } = await exec.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { lane: "silent" }));
  const s = new RawSession(h.gateway.grpcAddress);
  s.send(hello("silent", "ka-2"));
  await s.next("welcome");
  await s.next("tasks");
  // No ack, no heartbeat, no pong: the gateway gives up after max(3 heartbeats, 2 keepalives) = 400 ms.
  const st = await s.finished();
  expect(st.code).toBe(status.UNAVAILABLE);
  const rec = await eventually(
    () => exec.call<DescribeExecutionResponse>("describeExecution", create(DescribeExecutionRequestSchema, { executionId })).then((r) => r.execution!),
    (e) => e.state === PublicState.WAITING,
  );
  expect(rec.attemptCount).toBe(0); // the claim was undone, not counted as an attempt
  s.kill();
});

test("drain: Drain with the grace, operations still answered, then the stream ends UNAVAILABLE/DRAINING", async () => {
  const g = await h.startGateway();
  const client = rawClient(ExecutionService, g.grpcAddress);
  await client.call("createExecution", create(CreateExecutionRequestSchema, { lane: "draining" }));
  const s = new RawSession(g.grpcAddress);
  s.send(hello("draining", "ka-3"));
  await s.next("welcome");
  const task = (await s.next("tasks")).body.value.tasks[0]!;
  s.send({ body: { case: "ack", value: { leaseIds: [task.fence!.leaseId] } } });
  const closing = g.close(500);
  const drain = await s.next("drain");
  expect(drain.body.value.graceMs).toBe(500n);
  s.send({ requestId: "c1", body: { case: "complete", value: { fence: task.fence! } } });
  expect((await s.next("complete", (m) => m.requestId === "c1")).body.value.reconciled).toBe(false);
  const st = await s.finished();
  expect(st.code).toBe(status.UNAVAILABLE);
  expect(st.metadata.get("ff-error-reason")[0]).toBe("DRAINING");
  await closing;
  s.kill();
  client.close();
});

test("HTTP/2 pings find a frozen worker process (SIGSTOP) within about a second", async () => {
  const { spawn } = await import("node:child_process");
  const { createInterface } = await import("node:readline");
  // Application keepalive far away: only the HTTP/2 PING/ack timeout can notice the frozen peer.
  const g = await h.startGateway({ http2PingIntervalMs: 200, http2PingTimeoutMs: 300, keepaliveIntervalMs: 60_000, heartbeatIntervalMs: 20_000, leaseTtlMs: 60_000 });
  const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/hanging-worker.ts", g.grpcAddress, "frozen", "1"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve) => lines.on("line", (l) => { if (l === "READY") resolve(); }));
    await eventually(async () => g.sessions.size, (n) => n === 1);
    child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    await eventually(async () => g.sessions.size, (n) => n === 0, 5000);
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
  } finally {
    child.kill("SIGKILL");
    await g.close(0);
  }
}, 20_000);

test("a Session opened on a draining gateway is refused at once with UNAVAILABLE/DRAINING (reconnecting needs backoff or another gateway)", async () => {
  const g = await h.startGateway();
  const client = rawClient(ExecutionService, g.grpcAddress);
  await client.call("createExecution", create(CreateExecutionRequestSchema, { lane: "drain-refuse" }));
  const holder = new RawSession(g.grpcAddress);
  holder.send(hello("drain-refuse", "ka-4"));
  await holder.next("welcome");
  const task = (await holder.next("tasks")).body.value.tasks[0]!;
  holder.send({ body: { case: "ack", value: { leaseIds: [task.fence!.leaseId] } } });
  const closing = g.close(2000); // the holder's task keeps the gateway draining for the grace
  await holder.next("drain");
  const late = new RawSession(g.grpcAddress);
  late.send(hello("drain-refuse", "ka-5"));
  const st = await late.finished();
  expect(st.code).toBe(status.UNAVAILABLE);
  expect(st.metadata.get("ff-error-reason")[0]).toBe("DRAINING");
  expect(late.received.some((m) => m.body.case === "welcome")).toBe(false);
  holder.send({ requestId: "c1", body: { case: "complete", value: { fence: task.fence! } } });
  await closing;
  holder.kill();
  late.kill();
  client.close();
});
