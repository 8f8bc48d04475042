import { create, toBinary } from "@bufbuild/protobuf";
import {
  CompleteTaskResponseSchema, FailOutcome, FailTaskResponseSchema, SessionRequestSchema, SessionResponseSchema, WorkerService,
  type SessionRequest,
} from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { SuspendOutcome, SuspendTaskResponseSchema } from "../../sdk-ts/src/gen/flowfabric/v1/signal_pb.js";
import { operationSpanName } from "../../sdk-ts/src/telemetry/attributes.js";
import { requestSize } from "../../sdk-ts/src/transport/session-batching.js";
import {
  isOperationBody, OPERATION_LIST, OPERATIONS, operationOf, operationOfPath, WORKER_OPERATIONS,
} from "../../sdk-ts/src/transport/worker-operations.js";

/** Session messages that are not task operations (handled by the session itself). */
const CONTROL_CASES = ["hello", "heartbeat", "ack", "credit", "ping", "pong", "batch"];
const bodyCases = SessionRequestSchema.oneofs.find((o) => o.name === "body")!.fields.map((f) => f.localName);

describe("the worker operation table", () => {
  test("covers every Session request case that is not a control message, and nothing else", () => {
    expect(Object.keys(WORKER_OPERATIONS).sort()).toEqual(bodyCases.filter((c) => !CONTROL_CASES.includes(c)).sort());
  });

  test("covers every unary WorkerService method exactly once", () => {
    const unary = WorkerService.methods.filter((m) => m.methodKind === "unary").map((m) => m.localName).sort();
    expect(OPERATION_LIST.map((op) => op.method.localName).sort()).toEqual(unary);
  });

  test.each(OPERATION_LIST.map((op) => [op.kind, op] as const))("%s: the Session cases carry the unary method's messages", (kind, op) => {
    expect(SessionRequestSchema.field[kind]?.message?.typeName).toBe(op.method.input.typeName);
    expect(SessionResponseSchema.field[kind]?.message?.typeName).toBe(op.method.output.typeName);
    expect(op.field).toBe(SessionRequestSchema.field[kind]?.name);
    expect(op.path).toBe(`/flowfabric.v1.WorkerService/${op.method.name}`);
    expect(operationOfPath(op.path)).toBe(op);
    expect(op.spanName).toBe(`flowfabric.${op.field}`);
    expect(op.spanName).toBe(operationSpanName(kind));
  });

  test("the settling operations are complete, fail, cancel, delay and suspend; only suspend may keep the lease", () => {
    expect(OPERATION_LIST.filter((op) => op.settles).map((op) => op.kind).sort()).toEqual(["cancel", "complete", "delay", "fail", "suspend"]);
    expect(OPERATION_LIST.filter((op) => op.settles && !op.settlesOnArrival).map((op) => op.kind)).toEqual(["suspend"]);
    expect(OPERATIONS.suspend.keepsLease(create(SuspendTaskResponseSchema, { outcome: SuspendOutcome.ALREADY_SATISFIED }))).toBe(true);
    expect(OPERATIONS.suspend.keepsLease(create(SuspendTaskResponseSchema, { outcome: SuspendOutcome.SUSPENDED }))).toBe(false);
    expect(OPERATIONS.complete.keepsLease(create(CompleteTaskResponseSchema))).toBe(false);
  });

  test("outcomes: settling operations name theirs, fail by its response; others have none", () => {
    expect(OPERATIONS.complete.outcome(create(CompleteTaskResponseSchema))).toBe("completed");
    expect(OPERATIONS.fail.outcome(create(FailTaskResponseSchema, { outcome: FailOutcome.RETRY_SCHEDULED }))).toBe("retry_scheduled");
    expect(OPERATIONS.fail.outcome(create(FailTaskResponseSchema, { outcome: FailOutcome.FAILED }))).toBe("failed");
    expect(OPERATIONS.cancel.outcome({ $typeName: "flowfabric.v1.CancelTaskResponse", reconciled: false })).toBe("cancelled");
    expect(OPERATIONS.delay.outcome({ $typeName: "flowfabric.v1.DelayTaskResponse" })).toBe("delayed");
    expect(OPERATIONS.renewLease.outcome({ $typeName: "flowfabric.v1.RenewLeaseResponse", leaseExpiresAtMs: 1n })).toBeUndefined();
  });

  test("lookups refuse what is not an operation", () => {
    expect(operationOf("hello")).toBeUndefined();
    expect(operationOf("toString")).toBeUndefined();
    expect(operationOf(undefined)).toBeUndefined();
    expect(operationOfPath("/flowfabric.v1.ExecutionService/CreateExecution")).toBeUndefined();
    const heartbeat: SessionRequest = create(SessionRequestSchema, { body: { case: "heartbeat", value: {} } });
    expect(isOperationBody(heartbeat.body)).toBe(false);
    expect(isOperationBody(create(SessionRequestSchema, { body: { case: "complete", value: {} } }).body)).toBe(true);
  });

  test.each(OPERATION_LIST.map((op) => [op.kind] as const))("%s: the batching estimate is never below the encoded size of a large request", (kind) => {
    const big = "é".repeat(3000);
    const fence = { executionId: "7:" + "e".repeat(36), leaseId: "l".repeat(36), attemptId: "a".repeat(36), leaseEpoch: 1n << 40n };
    const value = {
      fence, result: new Uint8Array(5000), payload: new Uint8Array(5000), reason: big, category: big, message: big, frameType: big,
      correlationId: big, metadata: { [big]: big }, traceparent: "00-" + "1".repeat(32) + "-" + "2".repeat(16) + "-01", tracestate: "k=v",
    };
    const message = create(SessionRequestSchema, { requestId: "r".repeat(64), body: { case: kind, value } as unknown as SessionRequest["body"] });
    expect(requestSize(message)).toBeGreaterThanOrEqual(toBinary(SessionRequestSchema, message).byteLength);
  });
});
