/**
 * Typed inputs and outcomes of the engine. Everything the gateway knows about Valkey goes
 * through the {@link EngineBackend} interface with these types; nothing else sees raw replies.
 */

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
  readonly maxReclaims: number;
  readonly traceparent: string;
  readonly tracestate: string;
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
  readonly leaseTtlMs: number;
}

/** One granted execution (a lease). */
export interface Grant {
  readonly fence: LeaseFence;
  readonly attemptIndex: number;
  readonly resumed: boolean;
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

export interface ClaimOutcome {
  readonly grants: Grant[];
  /** Eligible score of the lane's head in this partition after the claim; null when empty. */
  readonly headScore: number | null;
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
  | { readonly type: "wake"; readonly partition: number; readonly namespace: string; readonly lane: string; readonly score: number }
  /** A leased execution was cancelled: the holder must be told. */
  | { readonly type: "cancel"; readonly executionId: string; readonly leaseId: string; readonly reason: string; readonly by: string }
  /** A lease was lost (expired, reclaimed, expired by deadline): the holder must be told. */
  | { readonly type: "lost"; readonly executionId: string; readonly leaseId: string; readonly reason: string };

/** What a scanner pass did on one partition. */
export interface ScanResult {
  /** Executions acted on. */
  readonly processed: number;
  /** True when the batch was full (more may be due). */
  readonly more: boolean;
}
