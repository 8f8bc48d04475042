/**
 * Typed inputs and outcomes of the engine. Everything the gateway knows about Valkey goes
 * through the {@link EngineBackend} interface with these types; nothing else sees raw replies.
 */
import type { ResumeReason, SuspensionRecord, WaitpointRecord } from "./signal-types.js";

/** Public state names, as stored in the execution record (`pstate`). */
export type PublicStateName =
  | "waiting" | "delayed" | "rate_limited" | "waiting_children" | "active" | "suspended"
  | "completed" | "failed" | "cancelled" | "expired" | "skipped";

/** The fence every worker mutation carries. */
export interface LeaseFence {
  readonly executionId: string;
  readonly leaseId: string;
  readonly leaseEpoch: number;
  readonly attemptId: string;
}

export interface RetryPolicySpec {
  readonly maxRetries: number;
  readonly backoff: "fixed" | "exponential";
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  /** Fraction in [0, 1]. */
  readonly jitter: number;
  /** Empty: every category is retryable. */
  readonly retryableCategories: readonly string[];
}

/** A validated execution to create. The backend picks the id unless `idempotencyKey` pins the partition. */
export interface CreateSpec {
  readonly namespace: string;
  readonly lane: string;
  readonly kind: string;
  readonly input: Uint8Array;
  readonly priority: number;
  /** Unix ms; 0 = eligible now. */
  readonly delayUntilMs: number;
  readonly retry: RetryPolicySpec;
  /** Sorted, de-duplicated. */
  readonly requiredCapabilities: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  /** Unix ms; 0 = none. */
  readonly deadlineAtMs: number;
  /** 0 = none. */
  readonly attemptTimeoutMs: number;
  /** Empty = none. */
  readonly idempotencyKey: string;
  /** How long the idempotency key is remembered, in ms; 0 or absent: 24 hours. */
  readonly idempotencyTtlMs?: number;
  readonly maxReclaims: number;
  readonly traceparent: string;
  readonly tracestate: string;
  /** How the execution's output frame streams are kept; default "durable". */
  readonly streamMode?: StreamMode;
  /** Best-effort mode: a stream expires this long after its last append, in ms; default 60000. */
  readonly streamTtlMs?: number;
}

export interface CreateOutcome {
  readonly executionId: string;
  readonly duplicate: boolean;
  readonly state: PublicStateName;
}

/** Who is claiming: one session (or a group of sessions with the same lanes and capabilities). */
export interface ClaimantIdentity {
  readonly sessionId: string;
  readonly workerId: string;
  readonly workerInstanceId: string;
}

export interface ClaimRequest {
  readonly partition: number;
  /** Namespace of the queue: executions of other namespaces are never granted. */
  readonly namespace: string;
  readonly lane: string;
  /** Upper bound of executions granted by this call (1..100). */
  readonly count: number;
  /** Sorted capabilities the claimant offers. */
  readonly capabilities: readonly string[];
  /** Only executions whose eligible score is <= this bound are taken (Infinity: no bound). */
  readonly maxScore: number;
  readonly claimant: ClaimantIdentity;
  /**
   * Several sessions sharing this claim (same capabilities): grants go to the shares in order,
   * the first `slots` to the first share and so on, each recorded under its own identity (the
   * execution record names the session the grant is pushed to). Their slots add up to `count`.
   * Absent: every grant is `claimant`'s.
   */
  readonly shares?: readonly ClaimShare[];
  readonly leaseTtlMs: number;
}

/** One session's part of a shared claim. */
export interface ClaimShare {
  readonly claimant: ClaimantIdentity;
  /** Grants reserved for it, >= 1. */
  readonly slots: number;
}

/** One granted execution (a lease). */
export interface Grant {
  readonly fence: LeaseFence;
  readonly attemptIndex: number;
  readonly resumed: boolean;
  /** Why a resumed attempt resumed; "" for a new attempt. */
  readonly resumeReason: ResumeReason;
  readonly input: Uint8Array;
  readonly kind: string;
  readonly lane: string;
  readonly namespace: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly priority: number;
  readonly retryCount: number;
  readonly leaseExpiresAtMs: number;
  readonly createdAtMs: number;
  readonly deadlineAtMs: number;
  readonly traceparent: string;
  readonly tracestate: string;
}

/**
 * A place in a queue's eligible order: score first, then the member uuid (time-ordered), so
 * executions created in the same millisecond keep their creation order.
 */
export interface QueuePosition {
  readonly score: number;
  readonly member: string;
}

export interface ClaimOutcome {
  readonly grants: Grant[];
  /** Position of the queue's head in this partition after the claim; null when empty. */
  readonly head: QueuePosition | null;
  /** True when eligible executions remain that this claimant's capabilities cannot serve. */
  readonly unmatchedRemain: boolean;
}

export type LeaseLossReason = "STALE_LEASE" | "LEASE_EXPIRED" | "EXECUTION_NOT_ACTIVE" | "NOT_FOUND";

export interface RenewResult {
  readonly executionId: string;
  readonly renewed: boolean;
  /** Unix ms, when renewed. */
  readonly leaseExpiresAtMs: number;
  /** Set when not renewed. */
  readonly reason?: LeaseLossReason;
}

export interface CompleteOutcome {
  /** True when the completion had already committed (a replay after a lost reply). */
  readonly reconciled: boolean;
}

export interface FailResult {
  readonly outcome: "retry_scheduled" | "failed";
  /** Unix ms, when a retry is scheduled. */
  readonly retryAtMs: number;
  readonly retryCount: number;
  readonly reconciled: boolean;
}

export interface CancelResult {
  /** False when the execution was already terminal. */
  readonly cancelled: boolean;
  readonly state: PublicStateName;
  readonly reconciled: boolean;
}

/** A snapshot of the execution record. */
export interface ExecutionRecord {
  readonly executionId: string;
  readonly namespace: string;
  readonly lane: string;
  readonly kind: string;
  readonly priority: number;
  readonly state: PublicStateName;
  readonly lifecyclePhase: string;
  readonly ownershipState: string;
  readonly eligibilityState: string;
  readonly blockingReason: string;
  readonly terminalOutcome: string;
  readonly attemptState: string;
  readonly attemptIndex: number;
  readonly attemptCount: number;
  readonly retryCount: number;
  readonly reclaimCount: number;
  readonly leaseEpoch: number;
  readonly leaseExpiresAtMs: number;
  readonly workerInstanceId: string;
  readonly createdAtMs: number;
  readonly startedAtMs: number;
  readonly completedAtMs: number;
  readonly delayUntilMs: number;
  readonly deadlineAtMs: number;
  readonly progressPercent: number;
  readonly progressMessage: string;
  readonly failureReason: string;
  readonly failureCategory: string;
  readonly cancelReason: string;
  readonly cancelledBy: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly requiredCapabilities: readonly string[];
  readonly hasResult: boolean;
  readonly traceparent: string;
  readonly tracestate: string;
  /** How the execution's output frame streams are kept. */
  readonly streamMode: StreamMode;
  /** The current suspension, while suspended. */
  readonly suspension: SuspensionRecord | undefined;
  /** Why the current attempt last resumed ("" when it never did). */
  readonly resumeReason: ResumeReason;
  /** Every waitpoint the execution has, oldest first. */
  readonly waitpoints: readonly WaitpointRecord[];
  /** Signals received, all waitpoints together. */
  readonly signalCount: number;
}

export interface ResultRecord {
  readonly state: PublicStateName;
  /** Present only when completed with a result. */
  readonly result?: Uint8Array;
  readonly failureReason: string;
  readonly failureCategory: string;
}

/** Events published by the Lua library on a partition's event channel. */
export type EngineEvent =
  /** New eligible work on (partition, lane) with the given eligible score. */
  | { readonly type: "wake"; readonly partition: number; readonly namespace: string; readonly lane: string; readonly position: QueuePosition }
  /** A leased execution was cancelled: the holder must be told. */
  | { readonly type: "cancel"; readonly executionId: string; readonly leaseId: string; readonly reason: string; readonly by: string }
  /** A lease was lost (expired, reclaimed, expired by deadline): the holder must be told. */
  | { readonly type: "lost"; readonly executionId: string; readonly leaseId: string; readonly reason: string }
  /**
   * The event subscription was re-established (a store reconnect, a Cluster failover): events
   * published meanwhile are lost, so state must be re-read (the scheduler rescans lane heads).
   */
  | { readonly type: "gap" };

/** What a scanner pass did on one partition. */
export interface ScanResult {
  /** Executions acted on. */
  readonly processed: number;
  /** True when the batch was full (more may be due). */
  readonly more: boolean;
}

/**
 * Output frames (docs/streams.md): one stream per attempt. "durable" keeps every frame (an append
 * past the length cap is refused); "summary" folds JSON Merge Patch frames into a versioned document
 * and keeps a short tail; "best_effort" trims to a rate-based cap and expires after a TTL unless a
 * durable frame arrives.
 */
export type StreamMode = "durable" | "summary" | "best_effort";

/** Why a frame stream closed (the attempt ended, or its lease was lost). */
export type StreamCloseReason = "completed" | "failed" | "retry_scheduled" | "cancelled" | "expired" | "lease_lost";

/** One frame to append. */
export interface FrameSpec {
  /** Open set, e.g. "token", "log", "progress"; 1..64 bytes. */
  readonly frameType: string;
  readonly payload: Uint8Array;
  /** Empty = none. */
  readonly correlationId: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Best-effort mode: makes the stream permanent. */
  readonly durable: boolean;
  /**
   * The appender's increasing number of this append within its lease (0/absent = none): a re-sent
   * append whose number is not above the last stored one is not stored twice.
   */
  readonly clientSeq?: number;
}

/** Size limits enforced by the append (in the Lua function, atomically). */
export interface FrameLimits {
  /** Type + payload + correlation id + encoded metadata, in bytes. */
  readonly maxFrameBytes: number;
  /** Durable mode: frames per attempt stream. */
  readonly maxStreamFrames: number;
  /** Durable mode: frame bytes per attempt stream. */
  readonly maxStreamBytes: number;
  /** Summary mode: size of the summary document, in bytes. */
  readonly maxSummaryBytes: number;
}

export interface AppendFrameOutcome {
  /** Stream entry id "ms-seq": the frame's cursor. */
  readonly entryId: string;
  /** Frames appended to this attempt's stream so far (= this frame's sequence number). */
  readonly frameCount: number;
  /** Summary mode: the document version after this frame; 0 otherwise. */
  readonly summaryVersion: number;
  /** A re-send of an append already stored: entry id and counts are the stream's current ones. */
  readonly duplicate: boolean;
}

/** A stored frame. */
export interface FrameRecord {
  readonly kind: "frame";
  readonly entryId: string;
  /** 1-based position in the attempt's stream (gaps show trimmed frames). */
  readonly seq: number;
  readonly frameType: string;
  readonly payload: Uint8Array;
  readonly correlationId: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Server time of the append (the entry id's time part), Unix ms. */
  readonly timestampMs: number;
  readonly summaryVersion: number;
  readonly durable: boolean;
}

/** The close entry: always the stream's last entry. */
export interface FrameClose {
  readonly kind: "close";
  readonly entryId: string;
  readonly reason: StreamCloseReason;
  /** Unix ms. */
  readonly timestampMs: number;
}

export type FrameEntry = FrameRecord | FrameClose;

export interface FrameReadRequest {
  readonly executionId: string;
  readonly attemptIndex: number;
  /** Exclusive cursor; "" = from the start. */
  readonly afterId: string;
  /** Inclusive upper bound; "" = the end. */
  readonly toId: string;
  /** 1..10000. */
  readonly count: number;
}

/** A range of one attempt's frame stream, with the stream's state. */
export interface FrameRead {
  readonly mode: StreamMode;
  readonly entries: FrameEntry[];
  /** Set once the stream is closed (entries after the cursor may remain). */
  readonly closed: {
    readonly reason: StreamCloseReason;
    readonly closedAtMs: number;
    /** The close entry's id; "" when the attempt ended without a frame (no close entry). */
    readonly entryId: string;
  } | null;
  /** Frames appended to the stream. */
  readonly frameCount: number;
  /** Summary mode: the document (JSON text), null before the first frame. */
  readonly summary: Uint8Array | null;
  readonly summaryVersion: number;
}

/** A live registration on an attempt's frame stream (see EngineBackend.watchFrames). */
export interface FrameWatch {
  /** Stops watching. */
  close(): void;
}

/**
 * Called with entries read live: `entries` are exactly the stream entries after `afterId` (in
 * order, contiguous, at most the reader's batch); the watcher keeps reading after the last one.
 */
export type FrameWatchListener = (afterId: string, entries: FrameEntry[]) => void;
