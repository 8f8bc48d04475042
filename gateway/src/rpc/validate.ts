import {
  type AppendFrameRequest, BackoffKind, type CreateExecutionRequest, type Fence, type RetryPolicy, StreamMode,
} from "@flowfabric/sdk/wire";
import { EXECUTION_DEFAULTS } from "../engine/defaults.js";
import { parseExecutionId, MAX_PRIORITY, MIN_PRIORITY } from "../engine/keys.js";
import { encodeFrameMetadata } from "../engine/fcall/append-frame.js";
import { isEntryId } from "../engine/fcall/read-frames.js";
import type { CreateSpec, FrameLimits, FrameSpec, LeaseFence, RetryPolicySpec, StreamMode as StreamModeName } from "../engine/types.js";
import { GatewayError, Reason } from "../errors.js";

/**
 * Request validation: every field checked, errors name the field. Pure functions from
 * generated messages to engine types.
 */

const NAMESPACE = /^[A-Za-z0-9._-]{1,64}$/;
const LANE = /^[A-Za-z0-9._:-]{1,128}$/;
const IDENT = /^[A-Za-z0-9._:-]{1,128}$/;
const TAG_KEY = /^[A-Za-z0-9._-]{1,64}$/;
const CAPABILITY = /^[A-Za-z0-9._:=/-]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_TIME_MS = 8_640_000_000_000; // Date's upper bound
const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

export interface Limits {
  readonly partitions: number;
  readonly maxPayloadBytes: number;
  /** Output frame caps; DEFAULT_FRAME_LIMITS when absent. */
  readonly frames?: FrameLimits;
}

/** The gateway option defaults (config.ts), for callers that build Limits by hand. */
export const DEFAULT_FRAME_LIMITS: FrameLimits = Object.freeze({
  maxFrameBytes: 64 * 1024,
  maxStreamFrames: 100_000,
  maxStreamBytes: 256 * 1024 * 1024,
  maxSummaryBytes: 1024 * 1024,
});

const FRAME_TYPE = /^[A-Za-z0-9._:/-]{1,64}$/;
const MAX_STREAM_TTL_MS = 7 * 24 * 3600 * 1000;

/** LIMIT_EXCEEDED (RESOURCE_EXHAUSTED) naming the limit, as the Lua functions report it. */
export function limitExceeded(field: string, limit: string, max: number, value: number): GatewayError {
  return new GatewayError(Reason.LIMIT_EXCEEDED, `${field}: ${value} exceeds ${limit} (${max})`, field, {
    limit, max: String(max), value: String(value),
  });
}

/** An AppendFrameRequest -> fence + frame; the frame-size cap is checked here and again in Lua. */
export function appendFrame(req: AppendFrameRequest, field: (name: string) => string, limits: Limits): { fence: LeaseFence; frame: FrameSpec } {
  const f = fence(req.fence, field("fence"), limits);
  if (!FRAME_TYPE.test(req.frameType)) {
    throw GatewayError.invalid(field("frame_type"), req.frameType === "" ? "is required" : "must be 1..64 characters of [A-Za-z0-9._:/-]");
  }
  const correlationId = maxBytes(req.correlationId, field("correlation_id"), 256);
  const entries = Object.entries(req.metadata);
  if (entries.length > 32) throw GatewayError.invalid(field("metadata"), "at most 32 entries");
  for (const [k, val] of entries) {
    if (k === "" || utf8Length(k) > 64) throw GatewayError.invalid(field(`metadata[${JSON.stringify(k)}]`), "key must be 1..64 bytes");
    maxBytes(val, field(`metadata[${JSON.stringify(k)}]`), 1024);
  }
  const metadata = Object.fromEntries(entries);
  const max = (limits.frames ?? DEFAULT_FRAME_LIMITS).maxFrameBytes;
  const size = utf8Length(req.frameType) + req.payload.byteLength + utf8Length(correlationId) + utf8Length(encodeFrameMetadata(metadata));
  if (size > max) throw limitExceeded(field("payload"), "max_frame_bytes", max, size);
  if (req.sequence > BigInt(Number.MAX_SAFE_INTEGER)) throw GatewayError.invalid(field("sequence"), "is out of range");
  return {
    fence: f,
    frame: { frameType: req.frameType, payload: req.payload, correlationId, metadata, durable: req.durable, clientSeq: Number(req.sequence) },
  };
}

/** A stream cursor: "" or an entry id "<ms>-<seq>" (each part at most 2^64 - 1). */
export function entryId(value: string, field: string): string {
  if (value !== "" && !isEntryId(value)) throw GatewayError.invalid(field, "must be an entry id \"<ms>-<seq>\" (each part at most 18446744073709551615) or empty");
  return value;
}

const STREAM_MODES: Readonly<Record<number, StreamModeName>> = {
  [StreamMode.UNSPECIFIED]: "durable",
  [StreamMode.DURABLE]: "durable",
  [StreamMode.SUMMARY]: "summary",
  [StreamMode.BEST_EFFORT]: "best_effort",
};

export function streamMode(value: StreamMode, field: string): StreamModeName {
  const mode = STREAM_MODES[value];
  if (!mode) throw GatewayError.invalid(field, `unknown stream mode ${value}`);
  return mode;
}

export function namespaceOf(value: string, field: string): string {
  if (value === "") return "default";
  if (!NAMESPACE.test(value)) throw GatewayError.invalid(field, "must be 1..64 characters of [A-Za-z0-9._-]");
  return value;
}

export function lane(value: string, field: string): string {
  if (!LANE.test(value)) throw GatewayError.invalid(field, value === "" ? "is required" : "must be 1..128 characters of [A-Za-z0-9._:-]");
  return value;
}

export function identifier(value: string, field: string): string {
  if (!IDENT.test(value)) throw GatewayError.invalid(field, value === "" ? "is required" : "must be 1..128 characters of [A-Za-z0-9._:-]");
  return value;
}

export function maxBytes(value: string, field: string, limit: number): string {
  if (utf8Length(value) > limit) throw GatewayError.invalid(field, `must be at most ${limit} bytes`);
  return value;
}

export function timeMs(value: bigint, field: string): number {
  if (value > BigInt(MAX_TIME_MS)) throw GatewayError.invalid(field, "is out of range");
  return Number(value);
}

export function payload(bytes: Uint8Array, field: string, limits: Limits): Uint8Array {
  if (bytes.byteLength > limits.maxPayloadBytes) throw GatewayError.tooLarge(field, bytes.byteLength, limits.maxPayloadBytes);
  return bytes;
}

export function capabilities(values: readonly string[], field: string, max = 64): string[] {
  if (values.length > max) throw GatewayError.invalid(field, `at most ${max} entries`);
  values.forEach((c, i) => {
    if (!CAPABILITY.test(c)) throw GatewayError.invalid(`${field}[${i}]`, "must be 1..128 characters of [A-Za-z0-9._:=/-]");
  });
  return [...new Set(values)].sort();
}

export function executionIdOf(value: string, field: string, limits: Limits): string {
  if (value === "") throw GatewayError.invalid(field, "is required");
  if (!parseExecutionId(value, limits.partitions)) {
    throw GatewayError.invalid(field, `is not a valid execution id ("<partition>:<uuid>", partition in [0, ${limits.partitions}) without leading zeros, lowercase uuid)`);
  }
  return value;
}

export function fence(f: Fence | undefined, field: string, limits: Limits): LeaseFence {
  if (!f) throw GatewayError.invalid(field, "is required");
  const executionId = executionIdOf(f.executionId, `${field}.execution_id`, limits);
  if (!UUID.test(f.leaseId)) throw GatewayError.invalid(`${field}.lease_id`, "must be a lowercase UUID");
  if (!UUID.test(f.attemptId)) throw GatewayError.invalid(`${field}.attempt_id`, "must be a lowercase UUID");
  if (f.leaseEpoch < 1n || f.leaseEpoch > BigInt(Number.MAX_SAFE_INTEGER)) throw GatewayError.invalid(`${field}.lease_epoch`, "must be >= 1");
  return { executionId, leaseId: f.leaseId, leaseEpoch: Number(f.leaseEpoch), attemptId: f.attemptId };
}

export function retryPolicy(p: RetryPolicy | undefined, field: string): RetryPolicySpec {
  const d = EXECUTION_DEFAULTS.retry;
  if (!p) return { maxRetries: 0, backoff: "exponential", initialDelayMs: d.initialDelayMs, maxDelayMs: d.maxDelayMs, multiplier: d.multiplier, jitter: 0, retryableCategories: [] };
  if (p.maxRetries > 1000) throw GatewayError.invalid(`${field}.max_retries`, "must be at most 1000");
  if (p.backoff !== BackoffKind.UNSPECIFIED && p.backoff !== BackoffKind.FIXED && p.backoff !== BackoffKind.EXPONENTIAL) {
    throw GatewayError.invalid(`${field}.backoff`, `unknown backoff kind ${p.backoff}`);
  }
  // Absent (proto3 optional) = the default; an explicit 0 = retry at once.
  const initialDelayMs = p.initialDelayMs === undefined ? d.initialDelayMs : timeMs(p.initialDelayMs, `${field}.initial_delay_ms`);
  const maxDelayMs = p.maxDelayMs === 0n ? Math.max(d.maxDelayMs, initialDelayMs) : timeMs(p.maxDelayMs, `${field}.max_delay_ms`);
  if (maxDelayMs < initialDelayMs) throw GatewayError.invalid(`${field}.max_delay_ms`, "must be >= initial_delay_ms");
  const multiplier = p.multiplier === 0 ? d.multiplier : p.multiplier;
  if (!Number.isFinite(multiplier) || multiplier < 1 || multiplier > 100) throw GatewayError.invalid(`${field}.multiplier`, "must be in [1, 100]");
  if (!Number.isFinite(p.jitter) || p.jitter < 0 || p.jitter > 1) throw GatewayError.invalid(`${field}.jitter`, "must be in [0, 1]");
  if (p.retryableCategories.length > 32) throw GatewayError.invalid(`${field}.retryable_categories`, "at most 32 entries");
  p.retryableCategories.forEach((c, i) => {
    if (!TAG_KEY.test(c)) throw GatewayError.invalid(`${field}.retryable_categories[${i}]`, "must be 1..64 characters of [A-Za-z0-9._-]");
  });
  return {
    maxRetries: p.maxRetries,
    backoff: p.backoff === BackoffKind.FIXED ? "fixed" : "exponential",
    initialDelayMs,
    maxDelayMs,
    multiplier,
    jitter: p.jitter,
    retryableCategories: [...p.retryableCategories],
  };
}

export function failureCategory(value: string, field: string): string {
  if (value === "") return "error";
  if (!TAG_KEY.test(value)) throw GatewayError.invalid(field, "must be 1..64 characters of [A-Za-z0-9._-]");
  return value;
}

export function createSpec(r: CreateExecutionRequest, field: string, limits: Limits, defaultTraceparent = "", defaultTracestate = ""): CreateSpec {
  const p = (name: string): string => (field ? `${field}.${name}` : name);
  if (!Number.isInteger(r.priority) || r.priority < MIN_PRIORITY || r.priority > MAX_PRIORITY) {
    throw GatewayError.invalid(p("priority"), `must be in [${MIN_PRIORITY}, ${MAX_PRIORITY}]`);
  }
  const tagEntries = Object.entries(r.tags);
  if (tagEntries.length > 32) throw GatewayError.invalid(p("tags"), "at most 32 tags");
  for (const [k, v] of tagEntries) {
    if (!TAG_KEY.test(k)) throw GatewayError.invalid(p(`tags[${JSON.stringify(k)}]`), "key must be 1..64 characters of [A-Za-z0-9._-]");
    maxBytes(v, p(`tags[${JSON.stringify(k)}]`), 256);
  }
  const traceparent = maxBytes(r.traceparent, p("traceparent"), 256) || defaultTraceparent;
  return {
    namespace: namespaceOf(r.namespace, p("namespace")),
    lane: lane(r.lane, p("lane")),
    kind: maxBytes(r.kind, p("kind"), 128),
    input: payload(r.input, p("input"), limits),
    priority: r.priority,
    delayUntilMs: timeMs(r.delayUntilMs, p("delay_until_ms")),
    retry: retryPolicy(r.retryPolicy, p("retry_policy")),
    requiredCapabilities: capabilities(r.requiredCapabilities, p("required_capabilities"), 32),
    tags: Object.fromEntries(tagEntries),
    deadlineAtMs: timeMs(r.deadlineAtMs, p("deadline_at_ms")),
    attemptTimeoutMs: timeMs(r.attemptTimeoutMs, p("attempt_timeout_ms")),
    idempotencyKey: maxBytes(r.idempotencyKey, p("idempotency_key"), 256),
    idempotencyTtlMs: idempotencyTtl(r.idempotencyTtlMs, p("idempotency_ttl_ms")),
    maxReclaims: r.maxReclaims === 0 ? 10 : Math.min(r.maxReclaims, 10_000),
    traceparent,
    tracestate: maxBytes(r.tracestate, p("tracestate"), 512) || (r.traceparent ? "" : defaultTracestate),
    streamMode: streamMode(r.streamMode, p("stream_mode")),
    streamTtlMs: streamTtl(r.streamTtlMs, p("stream_ttl_ms")),
  };
}

/** Longest idempotency window, in ms (the default: 24 hours). */
const MAX_IDEMPOTENCY_TTL_MS = 86_400_000;

function idempotencyTtl(value: bigint, field: string): number {
  if (value === 0n) return 0;
  if (value < 1000n || value > BigInt(MAX_IDEMPOTENCY_TTL_MS)) throw GatewayError.invalid(field, `must be 0 or in [1000, ${MAX_IDEMPOTENCY_TTL_MS}] ms`);
  return Number(value);
}

function streamTtl(value: bigint, field: string): number {
  if (value === 0n) return EXECUTION_DEFAULTS.streamTtlMs;
  if (value > BigInt(MAX_STREAM_TTL_MS)) throw GatewayError.invalid(field, `must be at most ${MAX_STREAM_TTL_MS} ms`);
  return Number(value);
}

/** A settle request's W3C trace context fields (only their size is checked; a malformed value is ignored by tracing). */
export function traceContext(r: { readonly traceparent: string; readonly tracestate: string }, p: (name: string) => string): void {
  maxBytes(r.traceparent, p("traceparent"), 256);
  maxBytes(r.tracestate, p("tracestate"), 512);
}
