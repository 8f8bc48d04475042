/**
 * Defaults of an execution's settings, defined once: what an absent (or 0, where the protocol
 * says so) field of CreateExecutionRequest means. The request validation (rpc/validate.ts) and the
 * ff_create wrapper (fcall/create.ts) read them from here; execution.proto documents the same.
 */
export const EXECUTION_DEFAULTS = Object.freeze({
  /** Lease expiries requeued before the execution fails (spec says 0). */
  maxReclaims: 10,
  /** Best-effort frame stream TTL (spec says 0), in ms. */
  streamTtlMs: 60_000,
  /** Retry policy fields. */
  retry: Object.freeze({
    /** First (or every, when fixed) retry delay when the field is absent, in ms. */
    initialDelayMs: 1000,
    /** Longest retry delay when the field is 0, in ms (raised to initialDelayMs if that is longer). */
    maxDelayMs: 60_000,
    /** Exponential backoff multiplier when the field is 0. */
    multiplier: 2,
  }),
});
