/**
 * Interop: a worker and a producer written with nothing but @grpc/grpc-js + @grpc/proto-loader,
 * loaded straight from proto/*.proto (no generated code, no SDK). Proves that the wire contract in
 * docs/protocol.md is enough to write a worker in any language.
 *
 * Loader options (used consistently below): keepCase false (camelCase fields), longs as Number,
 * enums as String names, bytes as Buffer, defaults on, oneofs on (a virtual `body` field names the
 * oneof member that is set).
 *
 * Scenario: one Session by hand (hello -> welcome, ping/pong, ack at once, heartbeat/heartbeat_ack,
 * update_progress, complete, fail) over 50 executions created through the raw ExecutionService
 * client: 48 complete with a byte-exact result, 1 fails once with category "transient" and is
 * retried by its retry policy, 1 is held running and cancelled through CancelExecution. Also: a
 * replayed complete reconciles (rule 9), an operation after a cancel is EXECUTION_NOT_ACTIVE
 * (rule 7), and a stream whose first message is not a Hello ends with HELLO_REQUIRED (rule 2).
 */
import { awaitAll } from "../support/gateway.js";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fromBinary } from "@bufbuild/protobuf";
import { ErrorDetailSchema } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import { startGateway } from "../../gateway/src/index.js";
import { startTestServer, type TestServer } from "../support/redis.js";

const PROTO_DIR = join(__dirname, "..", "..", "proto");
const LANE = "raw-grpc-js";
const TERMINAL = new Set(["PUBLIC_STATE_COMPLETED", "PUBLIC_STATE_FAILED", "PUBLIC_STATE_CANCELLED", "PUBLIC_STATE_EXPIRED", "PUBLIC_STATE_SKIPPED"]);

// ---- the raw client ------------------------------------------------------------------------------

const packageDefinition = protoLoader.loadSync(["flowfabric/v1/execution.proto", "flowfabric/v1/worker.proto"], {
  includeDirs: [PROTO_DIR],
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});
interface FlowfabricPackage {
  flowfabric: { v1: { ExecutionService: grpc.ServiceClientConstructor; WorkerService: grpc.ServiceClientConstructor } };
}
const proto = grpc.loadPackageDefinition(packageDefinition) as unknown as FlowfabricPackage;

/** Message shapes as proto-loader decodes them with the options above (only what the test reads). */
interface Fence { executionId: string; leaseId: string; leaseEpoch: number; attemptId: string }
interface Task { fence: Fence; attemptIndex: number; input: Buffer; kind: string; lane: string; retryCount: number; leaseExpiresAtMs: number }
interface ErrorDetail { reason: string; field: string; message: string; metadata: Record<string, string> }
interface SessionResponse {
  requestId: string;
  body?: string;
  welcome?: { sessionId: string; gatewayId: string; leaseTtlMs: number; heartbeatIntervalMs: number; keepaliveIntervalMs: number; maxMessageBytes: number; maxPayloadBytes: number; adoptions: unknown[] };
  tasks?: { tasks: Task[] };
  heartbeatAck?: { leases: { executionId: string; renewed: boolean; leaseExpiresAtMs: number; reason: string }[] };
  leaseLost?: { executionId: string; leaseId: string; reason: string };
  cancelRequested?: { executionId: string; leaseId: string; reason: string; cancelledBy: string };
  drain?: { reason: string; graceMs: number };
  ping?: { nonce: number };
  pong?: { nonce: number };
  error?: { code: number; detail: ErrorDetail };
  complete?: { reconciled: boolean };
  fail?: { outcome: string; retryAtMs: number; retryCount: number; reconciled: boolean };
  updateProgress?: Record<string, never>;
}
interface ExecutionInfo {
  executionId: string; state: string; attemptCount: number; retryCount: number; attemptIndex: number;
  cancelledBy: string; cancelReason: string; failureCategory: string; progressPercent: number; hasResult: boolean;
}

/** Rejects when `promise` has not settled within `ms` (the timer never keeps jest alive). */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function unary<Res>(client: grpc.Client, method: string, request: object, timeoutMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void>)[method];
    if (!fn) return reject(new Error(`no method ${method}`));
    fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** A Session driven by hand: writes requests, dispatches responses, matches answers by request_id. */
class RawSession {
  readonly call: grpc.ClientDuplexStream<object, SessionResponse>;
  readonly received: SessionResponse[] = [];
  private readonly answers = new Map<string, (r: SessionResponse) => void>();
  private readonly waiters: { pred: (r: SessionResponse) => boolean; resolve: (r: SessionResponse) => void }[] = [];
  private nextId = 0;
  status: grpc.StatusObject | undefined;
  readonly ended: Promise<grpc.StatusObject>;
  onTasks: (tasks: Task[]) => void = () => undefined;

  constructor(client: grpc.Client) {
    const fn = (client as unknown as Record<string, () => grpc.ClientDuplexStream<object, SessionResponse>>)["Session"];
    if (!fn) throw new Error("WorkerService.Session missing from the loaded definition");
    this.call = fn.call(client);
    this.ended = new Promise((resolve) => {
      this.call.on("status", (s: grpc.StatusObject) => {
        this.status = s;
        resolve(s);
      });
    });
    this.call.on("error", () => undefined); // the status event carries it
    this.call.on("data", (r: SessionResponse) => this.dispatch(r));
  }

  private dispatch(r: SessionResponse): void {
    this.received.push(r);
    if (r.body === "ping" && r.ping) this.write({ pong: { nonce: r.ping.nonce } }); // rule 11
    if (r.body === "tasks" && r.tasks) {
      // rule 5: ack at once, before doing anything with the tasks.
      this.write({ ack: { leaseIds: r.tasks.tasks.map((t) => t.fence.leaseId) } });
      this.onTasks(r.tasks.tasks);
    }
    if (r.requestId) {
      const answer = this.answers.get(r.requestId);
      if (answer) {
        this.answers.delete(r.requestId);
        answer(r);
      }
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.pred(r)) {
        this.waiters.splice(i, 1);
        w.resolve(r);
      }
    }
  }

  write(req: object): void {
    this.call.write(req);
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (r: SessionResponse) => boolean, what: string, timeoutMs = 15_000): Promise<SessionResponse> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      timer.unref();
      this.waiters.push({ pred, resolve: (r) => { clearTimeout(timer); resolve(r); } });
    });
  }

  /** Sends a task operation with a fresh request_id and resolves with the answer carrying it (rule 8). */
  op(field: "complete" | "fail" | "cancel" | "updateProgress" | "renewLease" | "delay", body: object, timeoutMs = 15_000): Promise<SessionResponse> {
    const requestId = `raw-${process.pid}-${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.answers.delete(requestId); reject(new Error(`no answer to ${field} ${requestId}`)); }, timeoutMs);
      timer.unref();
      this.answers.set(requestId, (r) => { clearTimeout(timer); resolve(r); });
      this.write({ requestId, [field]: body });
    });
  }
}

// ---- the test ------------------------------------------------------------------------------------

let server: TestServer;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let executions: grpc.Client;
let workers: grpc.Client;
const sessions: RawSession[] = [];

beforeAll(async () => {
  server = await startTestServer();
  gateway = await startGateway({ valkeyUrl: server.url, grpcPort: 0, httpPort: 0, partitions: 4 });
  const channelOptions = { "grpc.keepalive_time_ms": 10_000, "grpc.keepalive_timeout_ms": 5_000 };
  executions = new proto.flowfabric.v1.ExecutionService(gateway.grpcAddress, grpc.credentials.createInsecure(), channelOptions);
  workers = new proto.flowfabric.v1.WorkerService(gateway.grpcAddress, grpc.credentials.createInsecure(), channelOptions);
}, 60_000);

afterAll(async () => {
  for (const s of sessions) {
    if (!s.status) {
      s.call.end();
      await withTimeout(s.ended, 2_000, "the stream to end").catch(() => undefined);
      if (!s.status) s.call.cancel();
    }
  }
  executions?.close();
  workers?.close();
  await gateway?.close();
  await server?.stop();
}, 60_000);

test("a stream whose first message is not a Hello ends with INVALID_ARGUMENT / HELLO_REQUIRED", async () => {
  const s = new RawSession(workers);
  sessions.push(s);
  s.write({ heartbeat: { sentAtMs: Date.now() } });
  const status = await s.ended;
  expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(status.metadata.get("ff-error-reason")).toEqual(["HELLO_REQUIRED"]);
  // The whole ErrorDetail, decodable with the classes generated from proto/ alone.
  const detail = fromBinary(ErrorDetailSchema, status.metadata.get("ff-error-detail-bin")[0] as Buffer);
  expect(detail.reason).toBe("HELLO_REQUIRED");
  expect(detail.field).toBe("hello");
  expect(detail.message).toMatch(/Hello/);
});

test("a hand-written grpc-js worker runs 50 executions: complete, fail+retry, cancel while running", async () => {
  const s = new RawSession(workers);
  sessions.push(s);

  // -- hello / welcome (rules 2-3)
  s.write({
    hello: {
      workerId: "raw-grpc-js",
      instanceId: `raw-grpc-js-${process.pid}`,
      namespace: "",
      lanes: [LANE],
      capabilities: [],
      maxConcurrentTasks: 10,
      heldLeases: [],
      sdk: "raw-grpc-js-interop-test",
    },
  });
  const welcome = (await s.waitFor((r) => r.body === "welcome", "welcome")).welcome!;
  expect(welcome.sessionId).not.toBe("");
  expect(welcome.leaseTtlMs).toBeGreaterThan(0);
  expect(welcome.heartbeatIntervalMs).toBeGreaterThan(0);
  expect(welcome.heartbeatIntervalMs).toBeLessThanOrEqual(welcome.leaseTtlMs / 2);
  expect(welcome.maxPayloadBytes).toBeGreaterThan(0);
  expect(welcome.adoptions).toEqual([]);

  // -- keepalive ping/pong (rule 11)
  s.write({ ping: { nonce: 42 } });
  expect((await s.waitFor((r) => r.body === "pong", "pong")).pong!.nonce).toBe(42);

  // -- heartbeats on the interval from Welcome (rule 6)
  const heartbeat = setInterval(() => s.write({ heartbeat: { sentAtMs: Date.now() } }), welcome.heartbeatIntervalMs);
  heartbeat.unref();

  // -- the worker's behaviour per task
  const opErrors: string[] = [];
  const completedFences = new Map<string, Fence>();
  const failResponses: NonNullable<SessionResponse["fail"]>[] = [];
  const attemptsSeen = new Map<string, number[]>();
  let heldTask: Task | undefined;
  let heldTaskArrived!: () => void;
  const heldArrived = new Promise<void>((r) => (heldTaskArrived = r));
  const handle = async (task: Task): Promise<void> => {
    const id = task.fence.executionId;
    attemptsSeen.set(id, [...(attemptsSeen.get(id) ?? []), task.attemptIndex]);
    const text = task.input.toString("latin1");
    if (text === "hold") {
      heldTask = task;
      const progress = await s.op("updateProgress", { fence: task.fence, percent: 50, message: "holding until cancelled" });
      if (progress.body !== "updateProgress") opErrors.push(`progress ${id}: ${JSON.stringify(progress.error)}`);
      heldTaskArrived();
      return; // runs until cancel_requested
    }
    if (text === "fail-once" && task.attemptIndex === 0) {
      const r = await s.op("fail", { fence: task.fence, reason: "raw client fails the first attempt", category: "transient" });
      if (r.body === "fail") failResponses.push(r.fail!);
      else opErrors.push(`fail ${id}: ${JSON.stringify(r.error)}`);
      return;
    }
    const r = await s.op("complete", { fence: task.fence, result: Buffer.concat([Buffer.from("done:"), task.input]) });
    if (r.body === "complete" && r.complete!.reconciled === false) completedFences.set(id, task.fence);
    else opErrors.push(`complete ${id}: ${JSON.stringify(r.error ?? r.complete)}`);
  };
  const handlers: Promise<void>[] = [];
  s.onTasks = (tasks) => {
    for (const t of tasks) handlers.push(handle(t).catch((err: unknown) => void opErrors.push(String(err))));
  };

  // -- 50 executions through the raw producer client
  const plainInputs = Array.from({ length: 48 }, (_, i) => Buffer.concat([Buffer.from([i]), randomBytes(i)]));
  const created = await unary<{ results: { executionId: string; duplicate: boolean; state: string }[] }>(executions, "CreateExecutions", {
    executions: plainInputs.map((input, i) => ({ lane: LANE, kind: "raw", input, tags: { index: String(i) } })),
  });
  expect(created.results).toHaveLength(48);
  const plainIds = created.results.map((r) => r.executionId);
  const retried = await unary<{ executionId: string; state: string }>(executions, "CreateExecution", {
    lane: LANE,
    kind: "raw",
    input: Buffer.from("fail-once"),
    retryPolicy: { maxRetries: 2, backoff: "BACKOFF_KIND_FIXED", initialDelayMs: 100, retryableCategories: ["transient"] },
  });
  const held = await unary<{ executionId: string; state: string }>(executions, "CreateExecution", {
    lane: LANE,
    kind: "raw",
    input: Buffer.from("hold"),
  });
  const allIds = [...plainIds, retried.executionId, held.executionId];
  expect(new Set(allIds).size).toBe(50);

  // -- the held task is running: its lease renews on a heartbeat (rule 6)
  await withTimeout(heldArrived, 20_000, "the held task to be pushed and its progress recorded");
  s.write({ heartbeat: { sentAtMs: Date.now() } });
  const ack = await s.waitFor(
    (r) => r.body === "heartbeatAck" && r.heartbeatAck!.leases.some((l) => l.executionId === held.executionId),
    "a heartbeat_ack naming the held task",
  );
  const heldStatus = ack.heartbeatAck!.leases.find((l) => l.executionId === held.executionId)!;
  expect(heldStatus.renewed).toBe(true);
  expect(heldStatus.leaseExpiresAtMs).toBeGreaterThan(Date.now());
  const running = await describeExecution(held.executionId);
  expect(running.state).toBe("PUBLIC_STATE_ACTIVE");
  expect(running.progressPercent).toBe(50);

  // -- cancel it as an operator: the session is told (rule 7)
  const cancelled = await unary<{ state: string; cancelled: boolean }>(executions, "CancelExecution", {
    executionId: held.executionId,
    reason: "interop test cancels the held task",
  });
  expect(cancelled).toEqual({ state: "PUBLIC_STATE_CANCELLED", cancelled: true });
  const cancelRequested = await s.waitFor(
    (r) => r.body === "cancelRequested" && r.cancelRequested!.executionId === held.executionId,
    "cancel_requested for the held task",
  );
  expect(cancelRequested.cancelRequested!.reason).toBe("interop test cancels the held task");
  expect(cancelRequested.cancelRequested!.leaseId).toBe(heldTask!.fence.leaseId);
  // The lease is revoked: a late complete is refused with EXECUTION_NOT_ACTIVE.
  const late = await s.op("complete", { fence: heldTask!.fence, result: Buffer.from("too late") });
  expect(late.body).toBe("error");
  expect(late.error!.detail.reason).toBe("EXECUTION_NOT_ACTIVE");
  expect(late.error!.code).toBe(grpc.status.FAILED_PRECONDITION);

  // -- everything reaches a terminal state
  const final = await waitTerminal(allIds, 60_000);
  clearInterval(heartbeat);
  await Promise.all(handlers);
  expect(opErrors).toEqual([]);

  for (const [i, id] of plainIds.entries()) {
    expect(final.get(id)!.state).toBe("PUBLIC_STATE_COMPLETED");
    const result = await unary<{ state: string; result: Buffer }>(executions, "GetResult", { executionId: id });
    expect(result.state).toBe("PUBLIC_STATE_COMPLETED");
    expect(Buffer.compare(result.result, Buffer.concat([Buffer.from("done:"), plainInputs[i]!]))).toBe(0);
  }

  // The failed-once execution: attempt 0 failed (retry scheduled), attempt 1 completed.
  expect(failResponses).toHaveLength(1);
  expect(failResponses[0]!.outcome).toBe("FAIL_OUTCOME_RETRY_SCHEDULED");
  expect(failResponses[0]!.retryCount).toBe(1);
  expect(attemptsSeen.get(retried.executionId)).toEqual([0, 1]);
  const retriedInfo = final.get(retried.executionId)!;
  expect(retriedInfo.state).toBe("PUBLIC_STATE_COMPLETED");
  expect(retriedInfo.attemptCount).toBe(2);
  expect(retriedInfo.retryCount).toBe(1);

  const heldInfo = final.get(held.executionId)!;
  expect(heldInfo.state).toBe("PUBLIC_STATE_CANCELLED");
  expect(heldInfo.cancelReason).toBe("interop test cancels the held task");
  expect(heldInfo.cancelledBy).not.toBe("");

  // -- replaying a committed complete reconciles (rule 9)
  const [someId, someFence] = [...completedFences.entries()][0]!;
  const replay = await s.op("complete", { fence: someFence, result: Buffer.from("ignored") });
  expect(replay.body).toBe("complete");
  expect(replay.complete!.reconciled).toBe(true);
  expect((await describeExecution(someId)).state).toBe("PUBLIC_STATE_COMPLETED");

  // -- no lease was lost on the way
  expect(s.received.filter((r) => r.body === "leaseLost")).toEqual([]);

  // -- close: half-close the request side (afterAll cancels the call if the gateway keeps it open)
  s.call.end();
  await withTimeout(s.ended, 3_000, "the gateway to end the half-closed stream").catch(() => undefined);
}, 120_000);

async function describeExecution(executionId: string): Promise<ExecutionInfo> {
  return (await unary<{ execution: ExecutionInfo }>(executions, "DescribeExecution", { executionId })).execution;
}

/** Waits until every id is terminal, within `timeoutMs`. */
function waitTerminal(ids: string[], timeoutMs: number): Promise<Map<string, ExecutionInfo>> {
  return awaitAll(describeExecution, ids, [...TERMINAL], timeoutMs);
}
