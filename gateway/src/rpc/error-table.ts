import { status } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { ErrorDetailSchema, type ErrorDetail } from "@flowfabric/sdk/wire";
import { GatewayError, Reason } from "../errors.js";

/** The one table: every reason -> gRPC status code. */
export const STATUS_OF_REASON: Readonly<Record<Reason, status>> = Object.freeze({
  NOT_FOUND: status.NOT_FOUND,
  STALE_LEASE: status.FAILED_PRECONDITION,
  LEASE_EXPIRED: status.FAILED_PRECONDITION,
  EXECUTION_NOT_ACTIVE: status.FAILED_PRECONDITION,
  STREAM_CLOSED: status.FAILED_PRECONDITION,
  WAITPOINT_EXISTS: status.ALREADY_EXISTS,
  WAITPOINT_CLOSED: status.FAILED_PRECONDITION,
  EXECUTION_NOT_SUSPENDED: status.FAILED_PRECONDITION,
  INVALID_TOKEN: status.PERMISSION_DENIED,
  LIMIT_EXCEEDED: status.RESOURCE_EXHAUSTED,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  HELLO_REQUIRED: status.INVALID_ARGUMENT,
  PROTOCOL_VIOLATION: status.INVALID_ARGUMENT,
  PAYLOAD_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  PARTITION_MISMATCH: status.FAILED_PRECONDITION,
  LIBRARY_DOWNGRADE: status.FAILED_PRECONDITION,
  UNAVAILABLE: status.UNAVAILABLE,
  DRAINING: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  INTERNAL: status.INTERNAL,
});

export function statusOf(err: GatewayError): status {
  return STATUS_OF_REASON[err.reason] ?? status.INTERNAL;
}

export function detailOf(err: GatewayError): ErrorDetail {
  return create(ErrorDetailSchema, { reason: err.reason, field: err.field, message: err.message, metadata: { ...err.metadata } });
}
