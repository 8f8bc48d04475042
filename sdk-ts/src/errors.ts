import type { Metadata, ServiceError } from "@grpc/grpc-js";
import type { OperationError } from "./gen/flowfabric/v1/worker_pb.js";
import { decodeStatusDetails, FIELD_TRAILER, REASON_TRAILER, STATUS_DETAILS_TRAILER } from "./transport/status-details.js";

/**
 * gRPC status names, the `code` of every {@link FlowFabricError}. The position in
 * {@link GRPC_STATUS_NAMES} is the gRPC status number.
 */
export const ErrorCode = {
  /** Not an error (never thrown). */
  OK: "OK",
  /** The call was cancelled, e.g. by the caller or by closing the worker. */
  CANCELLED: "CANCELLED",
  /** An unexpected error. */
  UNKNOWN: "UNKNOWN",
  /** A bad argument; `field` names it. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** The deadline passed before an answer arrived. */
  DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
  /** The execution (or other entity) does not exist. */
  NOT_FOUND: "NOT_FOUND",
  /** The entity already exists. */
  ALREADY_EXISTS: "ALREADY_EXISTS",
  /** The caller may not do this. */
  PERMISSION_DENIED: "PERMISSION_DENIED",
  /** A size or quota limit, e.g. reason PAYLOAD_TOO_LARGE. Never retried automatically. */
  RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
  /** The execution is not in a state that allows this (STALE_LEASE, LEASE_EXPIRED, ...). */
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  /** The operation was aborted by a concurrent one. */
  ABORTED: "ABORTED",
  /** A value out of range. */
  OUT_OF_RANGE: "OUT_OF_RANGE",
  /** The gateway does not implement the method. */
  UNIMPLEMENTED: "UNIMPLEMENTED",
  /** A gateway bug. */
  INTERNAL: "INTERNAL",
  /** The gateway or its store cannot be reached right now (retryable). */
  UNAVAILABLE: "UNAVAILABLE",
  /** Unrecoverable data loss. */
  DATA_LOSS: "DATA_LOSS",
  /** Missing or bad credentials. */
  UNAUTHENTICATED: "UNAUTHENTICATED",
} as const;
/** A gRPC status name. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** gRPC status names indexed by status number (the one table mapping numbers to names). */
export const GRPC_STATUS_NAMES: readonly ErrorCode[] = Object.freeze(Object.values(ErrorCode));

/**
 * Reasons the SDK raises itself (the gateway's reasons, e.g. STALE_LEASE, arrive in
 * `FlowFabricError.reason` unchanged).
 */
export const LocalReason = {
  /** A terminal operation (complete, fail, cancel, delay) already consumed the task. */
  TASK_CONSUMED: "TASK_CONSUMED",
  /** The task's lease is gone (lost, expired, cancelled by someone else); stop the task. */
  LEASE_LOST: "LEASE_LOST",
  /** No session could be established (first connect). */
  NOT_CONNECTED: "NOT_CONNECTED",
  /** The worker or client was closed. */
  CLOSED: "CLOSED",
  /** `run()` or `tasks()` was already called on this worker. */
  CONSUMER_EXISTS: "CONSUMER_EXISTS",
  /** The gateway answered with something the SDK did not expect. */
  PROTOCOL_VIOLATION: "PROTOCOL_VIOLATION",
} as const;
/** A reason raised by the SDK itself. */
export type LocalReason = (typeof LocalReason)[keyof typeof LocalReason];

/** Gateway reasons after which the task's lease is definitely gone (protocol rule 8). */
export const LEASE_GONE_REASONS: ReadonlySet<string> = new Set(["STALE_LEASE", "LEASE_EXPIRED", "EXECUTION_NOT_ACTIVE", "NOT_FOUND"]);

/**
 * Codes after which an operation may be sent again, with backoff (docs/protocol.md, "Errors and
 * reasons"): the gateway or its store did not answer, so the operation may or may not have
 * happened; every worker write is idempotent (fence + replay reconciliation, frame sequences).
 */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.ABORTED]);

/** Everything needed to build a {@link FlowFabricError}. */
export interface FlowFabricErrorInit {
  /** gRPC status name. */
  readonly code: ErrorCode;
  /** Machine-readable reason; defaults to the code name. */
  readonly reason?: string | undefined;
  /** Human-readable message. */
  readonly message: string;
  /** Path of the offending request field, for validation errors. */
  readonly field?: string | undefined;
  /** Extra facts from the gateway (e.g. the committed outcome of a replay conflict). */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** The underlying error, kept for logs. */
  readonly cause?: unknown;
}

/**
 * The SDK's one error type. `code` is the gRPC status name, `reason` the gateway's
 * `ErrorDetail.reason` (e.g. `STALE_LEASE`, `PAYLOAD_TOO_LARGE`) or a {@link LocalReason}.
 */
export class FlowFabricError extends Error {
  override readonly name = "FlowFabricError";
  /** gRPC status name. */
  readonly code: ErrorCode;
  /** Machine-readable reason (gateway `ErrorDetail.reason` or a {@link LocalReason}). */
  readonly reason: string;
  /** Path of the offending request field (e.g. `hello.lanes`), when a field is at fault. */
  readonly field: string | undefined;
  /** Extra facts from the gateway; empty when none. */
  readonly metadata: Readonly<Record<string, string>>;

  /** Builds an error; prefer the static constructors. */
  constructor(init: FlowFabricErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.reason = init.reason !== undefined && init.reason !== "" ? init.reason : init.code;
    this.field = init.field !== undefined && init.field !== "" ? init.field : undefined;
    this.metadata = Object.freeze({ ...(init.metadata ?? {}) });
  }

  /** The gRPC status number of `code`. */
  get status(): number {
    return GRPC_STATUS_NAMES.indexOf(this.code);
  }

  /** True when the gateway reported that the task's lease is gone (rule 8's definitive errors). */
  get isLeaseGone(): boolean {
    return LEASE_GONE_REASONS.has(this.reason) || this.reason === LocalReason.LEASE_LOST;
  }

  /**
   * True when the operation went unanswered (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED) and may be
   * sent again; the SDK retries terminal operations and frame appends on these by itself.
   */
  get isRetryable(): boolean {
    return RETRYABLE_CODES.has(this.code) && this.reason !== LocalReason.CLOSED;
  }

  /** An error raised by the SDK itself. */
  static local(code: ErrorCode, reason: LocalReason, message: string, extra: Partial<FlowFabricErrorInit> = {}): FlowFabricError {
    return new FlowFabricError({ ...extra, code, reason, message });
  }

  /**
   * Converts a grpc-js error (a `ServiceError` with trailers) into a FlowFabricError, decoding
   * the `ErrorDetail` from `grpc-status-details-bin`, or else from `ff-error-reason`/`ff-error-field`.
   * Any other value becomes UNKNOWN; a FlowFabricError is returned unchanged.
   */
  static fromServiceError(error: unknown): FlowFabricError {
    if (error instanceof FlowFabricError) return error;
    if (!isServiceError(error)) {
      return new FlowFabricError({ code: ErrorCode.UNKNOWN, message: error instanceof Error ? error.message : String(error), cause: error });
    }
    const code = codeName(error.code);
    const detailBytes = firstBinary(error.metadata, STATUS_DETAILS_TRAILER);
    const detail = detailBytes === undefined ? undefined : decodeStatusDetails(detailBytes);
    const message = detail?.message || error.details || error.message;
    return new FlowFabricError({
      code,
      reason: detail?.reason || firstString(error.metadata, REASON_TRAILER),
      field: detail?.field || headerText(firstString(error.metadata, FIELD_TRAILER)),
      metadata: detail?.metadata,
      message,
      cause: error,
    });
  }

  /** Converts a session `OperationError` (the stream form of a unary error status). */
  static fromOperationError(error: OperationError): FlowFabricError {
    const detail = error.detail;
    const code = codeName(error.code);
    return new FlowFabricError({
      code,
      reason: detail?.reason,
      field: detail?.field,
      metadata: detail?.metadata,
      message: detail?.message || `${code}: operation failed`,
    });
  }
}

/** Maps a gRPC status number to its name (UNKNOWN when out of range). */
export function codeName(status: number): ErrorCode {
  return GRPC_STATUS_NAMES[status] ?? ErrorCode.UNKNOWN;
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

function firstBinary(metadata: Metadata | undefined, key: string): Uint8Array | undefined {
  const value = metadata?.get(key)[0];
  if (value === undefined) return undefined;
  return typeof value === "string" ? Buffer.from(value, "base64") : value;
}

function firstString(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/** Reverses headerSafe(): a percent-encoded trailer value back to text (kept as is if malformed). */
function headerText(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
