import { create } from "@bufbuild/protobuf";
import { toStreamMode, type StreamModeName } from "./streams.js";
import { BackoffKind, PublicState, RetryPolicySchema, type RetryPolicy } from "./gen/flowfabric/v1/common_pb.js";
import { ErrorCode, FlowFabricError } from "./errors.js";
import {
  CreateExecutionRequestSchema,
  type CancelExecutionResponse, type CreateExecutionRequest, type CreateExecutionResponse, type ExecutionInfo, type GetResultResponse,
} from "./gen/flowfabric/v1/execution_pb.js";
import {
  fromSuspensionInfo, fromWaitpointInfo, type ResumeReason, type SuspensionDescription, type WaitpointDescription,
} from "./signal-types.js";
import { TRACE_MODE_TAG } from "./telemetry/attributes.js";
import type { TraceMode } from "./telemetry/task-tracing.js";

/** Public state of an execution, as a lowercase name. */
export type PublicStateName =
  | "unspecified" | "waiting" | "delayed" | "rate_limited" | "waiting_children" | "active"
  | "suspended" | "completed" | "failed" | "cancelled" | "expired" | "skipped";

const STATE_NAMES: Readonly<Record<PublicState, PublicStateName>> = {
  [PublicState.UNSPECIFIED]: "unspecified",
  [PublicState.WAITING]: "waiting",
  [PublicState.DELAYED]: "delayed",
  [PublicState.RATE_LIMITED]: "rate_limited",
  [PublicState.WAITING_CHILDREN]: "waiting_children",
  [PublicState.ACTIVE]: "active",
  [PublicState.SUSPENDED]: "suspended",
  [PublicState.COMPLETED]: "completed",
  [PublicState.FAILED]: "failed",
  [PublicState.CANCELLED]: "cancelled",
  [PublicState.EXPIRED]: "expired",
  [PublicState.SKIPPED]: "skipped",
};

/** The lowercase name of a PublicState value ("unspecified" for unknown values). */
export function publicStateName(state: PublicState): PublicStateName {
  return STATE_NAMES[state] ?? "unspecified";
}

/** How a failed execution is retried (mirrors flowfabric.v1.RetryPolicy). */
export interface RetryPolicySpec {
  /** Retries after the first attempt; 0 means a failure is terminal. At most 1000. */
  readonly maxRetries: number;
  /** Backoff shape. Default "exponential". */
  readonly backoff?: "fixed" | "exponential";
  /** First (or every, when fixed) retry delay, in milliseconds. Default 1000; 0 retries at once. */
  readonly initialDelayMs?: number;
  /** Upper bound of an exponential delay, in milliseconds. Default 60000. */
  readonly maxDelayMs?: number;
  /** Exponential growth factor, >= 1. Default 2. */
  readonly multiplier?: number;
  /** Jitter as a fraction of the delay in [0, 1]. Default 0. */
  readonly jitter?: number;
  /** Failure categories that are retried; empty or absent means every category. */
  readonly retryableCategories?: readonly string[];
}

/** An execution to create (mirrors flowfabric.v1.CreateExecutionRequest). */
export interface ExecutionSpec {
  /** Lane (queue) name. */
  readonly lane: string;
  /** Free-form kind passed to the worker (e.g. "send-email"). */
  readonly kind?: string;
  /** Input payload; a string is sent as UTF-8. */
  readonly input?: Uint8Array | string;
  /** Namespace; default the client's namespace. */
  readonly namespace?: string;
  /** Priority, an integer in [{@link MIN_PRIORITY}, {@link MAX_PRIORITY}] (±1000); higher runs first. Default 0. */
  readonly priority?: number;
  /** Not eligible before this time, in Unix milliseconds. */
  readonly delayUntilMs?: number;
  /** Retry policy; absent means no retries. */
  readonly retryPolicy?: RetryPolicySpec;
  /** Capabilities a worker must offer to receive this execution. */
  readonly requiredCapabilities?: readonly string[];
  /** Producer tags. */
  readonly tags?: Readonly<Record<string, string>>;
  /** The execution expires if not terminal by this time, in Unix milliseconds. */
  readonly deadlineAtMs?: number;
  /** Each attempt expires after running this long, in milliseconds. */
  readonly attemptTimeoutMs?: number;
  /** Idempotency key, unique per namespace for 24 hours. */
  readonly idempotencyKey?: string;
  /** Times a lost lease may be reclaimed before the execution fails; default 10. */
  readonly maxReclaims?: number;
  /**
   * W3C traceparent of the producer's span. Default: the span active when `createExecution` is
   * called (sent as `traceparent` request metadata).
   */
  readonly traceparent?: string;
  /** W3C tracestate accompanying traceparent. */
  readonly tracestate?: string;
  /**
   * How the worker's `flowfabric.task` span joins the producer's trace, overriding the worker's
   * `traceMode` for this execution: "child" (same trace) or "link" (a new trace linked to it).
   * Carried as the tag `flowfabric.trace_mode`. Default: the worker's choice.
   */
  readonly traceMode?: TraceMode;
  /** How the attempts' output frame streams are kept (docs/streams.md). Default "durable". */
  readonly streamMode?: StreamModeName;
  /** Best-effort mode: a frame stream expires this long after its last append, in ms; default 60000. */
  readonly streamTtlMs?: number;
}

/** A created (or deduplicated) execution. */
export interface CreatedExecution {
  /** Execution id. */
  readonly executionId: string;
  /** True when the idempotency key matched an existing execution. */
  readonly duplicate: boolean;
  /** State right after creation. */
  readonly state: PublicStateName;
}

/** An execution's record (mirrors flowfabric.v1.ExecutionInfo; times in Unix milliseconds, 0 when unset). */
export interface ExecutionDescription {
  /** Execution id. */ readonly executionId: string;
  /** Namespace. */ readonly namespace: string;
  /** Lane. */ readonly lane: string;
  /** Kind. */ readonly kind: string;
  /** Priority. */ readonly priority: number;
  /** Public state. */ readonly state: PublicStateName;
  /** State vector: lifecycle phase. */ readonly lifecyclePhase: string;
  /** State vector: ownership. */ readonly ownershipState: string;
  /** State vector: eligibility. */ readonly eligibilityState: string;
  /** State vector: blocking reason. */ readonly blockingReason: string;
  /** State vector: terminal outcome. */ readonly terminalOutcome: string;
  /** State vector: attempt state. */ readonly attemptState: string;
  /** Current (or last) attempt index; -1 before the first claim. */ readonly attemptIndex: number;
  /** Attempts started so far. */ readonly attemptCount: number;
  /** Retries consumed. */ readonly retryCount: number;
  /** Lost leases reclaimed so far. */ readonly reclaimCount: number;
  /** Current lease epoch. */ readonly leaseEpoch: number;
  /** Lease expiry while active. */ readonly leaseExpiresAtMs: number;
  /** Instance id of the lease holder while active. */ readonly workerInstanceId: string;
  /** Creation time. */ readonly createdAtMs: number;
  /** First claim time. */ readonly startedAtMs: number;
  /** Terminal time. */ readonly completedAtMs: number;
  /** Eligible again at this time while delayed. */ readonly delayUntilMs: number;
  /** Execution deadline. */ readonly deadlineAtMs: number;
  /** Last reported progress, 0..100. */ readonly progressPercent: number;
  /** Last reported progress message. */ readonly progressMessage: string;
  /** Last failure reason. */ readonly failureReason: string;
  /** Last failure category. */ readonly failureCategory: string;
  /** Cancellation reason. */ readonly cancelReason: string;
  /** Who cancelled ("worker", "operator", ...). */ readonly cancelledBy: string;
  /** Producer tags. */ readonly tags: Readonly<Record<string, string>>;
  /** Required capabilities, sorted. */ readonly requiredCapabilities: readonly string[];
  /** True when a result payload is stored. */ readonly hasResult: boolean;
  /** The current suspension, while "suspended". */ readonly suspension: SuspensionDescription | undefined;
  /** Every waitpoint, oldest first (never a token). */ readonly waitpoints: readonly WaitpointDescription[];
  /** Why the current attempt last resumed ("" when it never did). */ readonly resumeReason: ResumeReason;
  /** Signals received, all waitpoints together. */ readonly signalCount: number;
}

/** An execution's outcome. */
export interface ExecutionResult {
  /** Public state; a result exists only when "completed". */
  readonly state: PublicStateName;
  /** Result payload, when completed with one. */
  readonly result: Uint8Array | undefined;
  /** Failure reason, when failed. */
  readonly failureReason: string;
  /** Failure category, when failed. */
  readonly failureCategory: string;
}

/** Outcome of an operator cancel. */
export interface CancelExecutionResult {
  /** "cancelled", or the terminal state the execution already had. */
  readonly state: PublicStateName;
  /** False when the execution was already terminal (nothing changed). */
  readonly cancelled: boolean;
}

/** Lowest priority an execution may have (the gateway and the store enforce the same range). */
export const MIN_PRIORITY = -1000;
/** Highest priority an execution may have. */
export const MAX_PRIORITY = 1000;

/**
 * Builds the request for one spec. `field` is the spec's path in the request (e.g.
 * "executions[2]"), for errors. Throws INVALID_ARGUMENT (with `field`) for what the wire
 * cannot carry, e.g. a priority that is not an integer in range.
 */
export function toCreateRequest(spec: ExecutionSpec, defaultNamespace: string, field = ""): CreateExecutionRequest {
  const priority = spec.priority ?? 0;
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new FlowFabricError({
      code: ErrorCode.INVALID_ARGUMENT,
      field: field === "" ? "priority" : `${field}.priority`,
      message: `priority must be an integer in [${MIN_PRIORITY}, ${MAX_PRIORITY}], got ${String(priority)}`,
    });
  }
  const input = spec.input === undefined ? new Uint8Array(0) : typeof spec.input === "string" ? Buffer.from(spec.input, "utf8") : spec.input;
  const request = create(CreateExecutionRequestSchema, {
    namespace: spec.namespace ?? defaultNamespace,
    lane: spec.lane,
    kind: spec.kind ?? "",
    input,
    priority,
    delayUntilMs: BigInt(Math.floor(spec.delayUntilMs ?? 0)),
    requiredCapabilities: [...(spec.requiredCapabilities ?? [])],
    tags: spec.traceMode === undefined ? { ...(spec.tags ?? {}) } : { ...(spec.tags ?? {}), [TRACE_MODE_TAG]: spec.traceMode },
    deadlineAtMs: BigInt(Math.floor(spec.deadlineAtMs ?? 0)),
    attemptTimeoutMs: BigInt(Math.floor(spec.attemptTimeoutMs ?? 0)),
    idempotencyKey: spec.idempotencyKey ?? "",
    maxReclaims: spec.maxReclaims ?? 0,
    traceparent: spec.traceparent ?? "",
    tracestate: spec.tracestate ?? "",
    streamMode: toStreamMode(spec.streamMode),
    streamTtlMs: BigInt(Math.floor(spec.streamTtlMs ?? 0)),
  });
  if (spec.retryPolicy !== undefined) request.retryPolicy = toRetryPolicy(spec.retryPolicy);
  return request;
}

function toRetryPolicy(spec: RetryPolicySpec): RetryPolicy {
  return create(RetryPolicySchema, {
    maxRetries: spec.maxRetries,
    backoff: spec.backoff === "fixed" ? BackoffKind.FIXED : spec.backoff === "exponential" ? BackoffKind.EXPONENTIAL : BackoffKind.UNSPECIFIED,
    ...(spec.initialDelayMs !== undefined ? { initialDelayMs: BigInt(Math.floor(spec.initialDelayMs)) } : {}),
    maxDelayMs: BigInt(Math.floor(spec.maxDelayMs ?? 0)),
    multiplier: spec.multiplier ?? 0,
    jitter: spec.jitter ?? 0,
    retryableCategories: [...(spec.retryableCategories ?? [])],
  });
}

/** Converts a CreateExecutionResponse. */
export function fromCreateResponse(response: CreateExecutionResponse): CreatedExecution {
  return { executionId: response.executionId, duplicate: response.duplicate, state: publicStateName(response.state) };
}

/** Converts an ExecutionInfo. */
export function fromExecutionInfo(info: ExecutionInfo): ExecutionDescription {
  return {
    executionId: info.executionId, namespace: info.namespace, lane: info.lane, kind: info.kind, priority: info.priority,
    state: publicStateName(info.state),
    lifecyclePhase: info.lifecyclePhase, ownershipState: info.ownershipState, eligibilityState: info.eligibilityState,
    blockingReason: info.blockingReason, terminalOutcome: info.terminalOutcome, attemptState: info.attemptState,
    attemptIndex: info.attemptIndex, attemptCount: info.attemptCount, retryCount: info.retryCount, reclaimCount: info.reclaimCount,
    leaseEpoch: Number(info.leaseEpoch), leaseExpiresAtMs: Number(info.leaseExpiresAtMs), workerInstanceId: info.workerInstanceId,
    createdAtMs: Number(info.createdAtMs), startedAtMs: Number(info.startedAtMs), completedAtMs: Number(info.completedAtMs),
    delayUntilMs: Number(info.delayUntilMs), deadlineAtMs: Number(info.deadlineAtMs),
    progressPercent: info.progressPercent, progressMessage: info.progressMessage,
    failureReason: info.failureReason, failureCategory: info.failureCategory,
    cancelReason: info.cancelReason, cancelledBy: info.cancelledBy,
    tags: { ...info.tags }, requiredCapabilities: [...info.requiredCapabilities], hasResult: info.hasResult,
    suspension: info.suspension === undefined ? undefined : fromSuspensionInfo(info.suspension),
    waitpoints: info.waitpoints.map(fromWaitpointInfo),
    resumeReason: info.resumeReason as ResumeReason,
    signalCount: info.signalCount,
  };
}

/** Converts a GetResultResponse. */
export function fromResultResponse(response: GetResultResponse): ExecutionResult {
  return { state: publicStateName(response.state), result: response.result, failureReason: response.failureReason, failureCategory: response.failureCategory };
}

/** Converts a CancelExecutionResponse. */
export function fromCancelResponse(response: CancelExecutionResponse): CancelExecutionResult {
  return { state: publicStateName(response.state), cancelled: response.cancelled };
}
