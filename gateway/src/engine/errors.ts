/**
 * The engine's one error type. Lua functions return `{0, CODE, ...detail}` on failure; the
 * wrappers turn that into an {@link EngineError} with the code from {@link EngineErrorCode}.
 * gateway/src/rpc/error-table.ts maps each code to a gRPC status.
 */
export const EngineErrorCode = {
  /** Unknown execution id. */
  NOT_FOUND: "NOT_FOUND",
  /** The fence does not match the current lease (zombie holder). */
  STALE_LEASE: "STALE_LEASE",
  /** The lease expired before the operation. */
  LEASE_EXPIRED: "LEASE_EXPIRED",
  /** The execution is not active (terminal, delayed, waiting...); detail says its state. */
  EXECUTION_NOT_ACTIVE: "EXECUTION_NOT_ACTIVE",
  /** The attempt's output frame stream is closed (detail close_reason). */
  STREAM_CLOSED: "STREAM_CLOSED",
  /** An open waitpoint of the attempt already has this key. */
  WAITPOINT_EXISTS: "WAITPOINT_EXISTS",
  /** The waitpoint no longer takes signals (closed, expired, attempt over, execution ended; detail state). */
  WAITPOINT_CLOSED: "WAITPOINT_CLOSED",
  /** An operator resume of an execution that is not suspended (detail state). */
  EXECUTION_NOT_SUSPENDED: "EXECUTION_NOT_SUSPENDED",
  /** A size or length cap was hit (detail: limit = its name, max, value). */
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  /** A bad argument reached the engine (should have been caught by validation). */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** The stored partition layout differs from the configured one. */
  PARTITION_MISMATCH: "PARTITION_MISMATCH",
  /** The loaded library is newer than this gateway's. */
  LIBRARY_DOWNGRADE: "LIBRARY_DOWNGRADE",
  /** Valkey could not be reached or answered with an unexpected error. */
  UNAVAILABLE: "UNAVAILABLE",
} as const;
export type EngineErrorCode = (typeof EngineErrorCode)[keyof typeof EngineErrorCode];

export class EngineError extends Error {
  override readonly name = "EngineError";
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    /** Extra facts (e.g. the execution's state for EXECUTION_NOT_ACTIVE). */
    readonly detail: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
