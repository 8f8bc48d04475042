import { EngineError, EngineErrorCode } from "./engine/errors.js";

/**
 * The gateway's one error type. `reason` is the machine-readable code carried to clients in
 * ErrorDetail.reason; rpc/error-table.ts maps it to a gRPC status.
 */
export const Reason = {
  ...EngineErrorCode,
  /** Payload or field over a size limit. */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  /** The first Session message was not a Hello. */
  HELLO_REQUIRED: "HELLO_REQUIRED",
  /** The gateway is draining; reconnect elsewhere. */
  DRAINING: "DRAINING",
  /** A message arrived that is not legal in the session's state. */
  PROTOCOL_VIOLATION: "PROTOCOL_VIOLATION",
  /**
   * A waitpoint token that is missing, malformed, tampered with, for another waitpoint or
   * execution, expired, or signed by a key that was rotated out: one answer for all of them,
   * given before any store lookup (no state oracle).
   */
  INVALID_TOKEN: "INVALID_TOKEN",
  /** No bearer token, a malformed one, or one the gateway does not know. */
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /** The token lacks the role for the call, or the namespace of the execution or request. */
  PERMISSION_DENIED: "PERMISSION_DENIED",
  /** Unexpected failure inside the gateway (a bug); never for caller-caused conditions. */
  INTERNAL: "INTERNAL",
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly reason: Reason,
    message: string,
    /** Offending request field for validation errors, e.g. "executions[3].lane". */
    readonly field = "",
    readonly metadata: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** A validation error naming the field. */
  static invalid(field: string, message: string): GatewayError {
    return new GatewayError(Reason.INVALID_ARGUMENT, `${field}: ${message}`, field);
  }

  /** A size-limit error naming the field and the limit. */
  static tooLarge(field: string, size: number, limit: number): GatewayError {
    return new GatewayError(Reason.PAYLOAD_TOO_LARGE, `${field}: ${size} bytes exceeds the limit of ${limit} bytes`, field, {
      limit: String(limit),
      size: String(size),
    });
  }

  /** Converts anything thrown into a GatewayError (engine errors keep their code). */
  static from(err: unknown): GatewayError {
    if (err instanceof GatewayError) return err;
    if (err instanceof EngineError) return new GatewayError(err.code, err.message, "", err.detail, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    if (/ECONNREFUSED|Connection is closed|ETIMEDOUT|ECONNRESET|MaxRetriesPerRequest/i.test(message)) {
      return new GatewayError(Reason.UNAVAILABLE, `store unavailable: ${message}`, "", {}, { cause: err });
    }
    return new GatewayError(Reason.INTERNAL, message, "", {}, { cause: err });
  }
}
