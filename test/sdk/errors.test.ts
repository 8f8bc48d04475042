import { create } from "@bufbuild/protobuf";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { ErrorCode, FlowFabricError, LocalReason } from "../../sdk-ts/src/index.js";
import { OperationErrorSchema } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { encodeStatusDetails, errorDetail } from "../../sdk-ts/src/transport/status-details.js";

function serviceError(code: status, details: string, metadata = new Metadata()): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

test("a ServiceError's grpc-status-details-bin ErrorDetail is decoded", () => {
  const metadata = new Metadata();
  const detail = errorDetail("EXECUTION_NOT_ACTIVE", "execution is completed", "", { state: "completed", outcome: "success" });
  metadata.set("grpc-status-details-bin", Buffer.from(encodeStatusDetails(status.FAILED_PRECONDITION, "x", detail)));
  const error = FlowFabricError.fromServiceError(serviceError(status.FAILED_PRECONDITION, "raw details", metadata));
  expect(error).toBeInstanceOf(FlowFabricError);
  expect(error).toMatchObject({ code: "FAILED_PRECONDITION", reason: "EXECUTION_NOT_ACTIVE", field: undefined, message: "execution is completed" });
  expect(error.metadata).toEqual({ state: "completed", outcome: "success" });
  expect(error.status).toBe(status.FAILED_PRECONDITION);
  expect(error.isLeaseGone).toBe(true);
  expect(error.cause).toBeInstanceOf(Error);
});

test("without details the ASCII trailers are used", () => {
  const metadata = new Metadata();
  metadata.set("ff-error-reason", "INVALID_ARGUMENT");
  metadata.set("ff-error-field", "hello.lanes");
  const error = FlowFabricError.fromServiceError(serviceError(status.INVALID_ARGUMENT, "lanes must not be empty", metadata));
  expect(error).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT", field: "hello.lanes", message: "lanes must not be empty" });
  expect(error.isLeaseGone).toBe(false);
});

test("a bare transport error gets its code name as reason", () => {
  const error = FlowFabricError.fromServiceError(serviceError(status.UNAVAILABLE, "No connection established"));
  expect(error).toMatchObject({ code: "UNAVAILABLE", reason: "UNAVAILABLE", field: undefined, message: "No connection established" });
  expect(error.metadata).toEqual({});
});

test("malformed details are ignored", () => {
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from([0xff, 0xff, 0xff]));
  expect(FlowFabricError.fromServiceError(serviceError(status.INTERNAL, "boom", metadata))).toMatchObject({ code: "INTERNAL", reason: "INTERNAL" });
});

test("non-gRPC values become UNKNOWN; FlowFabricErrors pass through", () => {
  expect(FlowFabricError.fromServiceError(new TypeError("nope"))).toMatchObject({ code: "UNKNOWN", message: "nope" });
  expect(FlowFabricError.fromServiceError("text")).toMatchObject({ code: "UNKNOWN", message: "text" });
  const original = FlowFabricError.local(ErrorCode.FAILED_PRECONDITION, LocalReason.TASK_CONSUMED, "done");
  expect(FlowFabricError.fromServiceError(original)).toBe(original);
});

test("a session OperationError maps code number to name and keeps the detail", () => {
  const op = create(OperationErrorSchema, {
    code: status.RESOURCE_EXHAUSTED,
    detail: errorDetail("PAYLOAD_TOO_LARGE", "result is 9 MiB, limit 4 MiB", "complete.result"),
  });
  expect(FlowFabricError.fromOperationError(op)).toMatchObject({
    code: "RESOURCE_EXHAUSTED", reason: "PAYLOAD_TOO_LARGE", field: "complete.result", message: "result is 9 MiB, limit 4 MiB",
  });
  const bare = FlowFabricError.fromOperationError(create(OperationErrorSchema, { code: 99 }));
  expect(bare).toMatchObject({ code: "UNKNOWN", reason: "UNKNOWN" });
});

test("every gRPC status number maps to the grpc-js name", () => {
  for (let code = 0; code <= 16; code++) {
    const error = FlowFabricError.fromServiceError(serviceError(code, "x"));
    expect(error.code).toBe(status[code]);
    expect(error.status).toBe(code);
  }
});

test("it is an Error with a stable name", () => {
  const error = FlowFabricError.local(ErrorCode.CANCELLED, LocalReason.CLOSED, "closed");
  expect(error).toBeInstanceOf(Error);
  expect(error.name).toBe("FlowFabricError");
  expect(Object.isFrozen(error.metadata)).toBe(true);
});
