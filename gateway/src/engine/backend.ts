import type {
  AppendFrameOutcome, FrameLimits, FrameRead, FrameReadRequest, FrameSpec, FrameWatch, FrameWatchListener,
} from "./types.js";
import type {
  KeyringOutcome, PendingWaitpointSpec, SignalOutcome, SignalRecord, SignalSpec, SuspendOutcome, SuspendSpec,
} from "./signal-types.js";
import type {
  CancelResult, ClaimOutcome, ClaimRequest, ClaimantIdentity, CompleteOutcome, CreateOutcome, CreateSpec,
  EngineEvent, ExecutionRecord, FailResult, LeaseFence, QueuePosition, RenewResult, ResultRecord, ScanResult,
} from "./types.js";

/**
 * Everything the gateway asks of the store. One implementation today: {@link ValkeyBackend}
 * (gateway/src/engine/valkey-backend.ts). Every mutation is one atomic FCALL on one partition;
 * errors are {@link EngineError}s.
 */
export interface EngineBackend {
  /** Number of execution partitions (fixed at first boot). */
  readonly partitions: number;
  /** Version of the Lua library this backend loaded. */
  readonly libraryVersion: number;

  /** Creates executions (one FCALL each, pipelined). Results in input order. */
  create(specs: readonly CreateSpec[]): Promise<CreateOutcome[]>;
  /** Grants up to `count` eligible executions of one lane in one partition to one claimant. */
  claim(req: ClaimRequest): Promise<ClaimOutcome>;
  /** Renews leases held by one session; one FCALL per partition touched. Results in input order. */
  renew(leases: readonly LeaseFence[], sessionId: string, leaseTtlMs: number): Promise<RenewResult[]>;
  /** Re-binds a held lease to a new session (after a reconnect) and renews it. */
  adopt(fence: LeaseFence, claimant: ClaimantIdentity, leaseTtlMs: number): Promise<RenewResult>;
  /** Returns a pushed-but-never-acknowledged task to the queue at once (same place in line). */
  release(fence: LeaseFence): Promise<void>;
  progress(fence: LeaseFence, percent: number, message: string): Promise<void>;
  complete(fence: LeaseFence, result: Uint8Array | undefined): Promise<CompleteOutcome>;
  /** `jitterSample` in [0, 1) scales the retry delay by (1 - jitter * sample). */
  fail(fence: LeaseFence, reason: string, category: string, jitterSample: number): Promise<FailResult>;
  /** Cancel by the lease holder (fenced). */
  cancelByHolder(fence: LeaseFence, reason: string): Promise<CancelResult>;
  /** Cancel by an operator (unfenced, audited as `cancelledBy`). */
  cancelByOperator(executionId: string, reason: string, cancelledBy: string): Promise<CancelResult>;
  /** Releases the lease; the same attempt resumes at `delayUntilMs`. */
  delay(fence: LeaseFence, delayUntilMs: number): Promise<void>;

  /**
   * Suspends the attempt until a signal condition is met: releases the lease (or keeps it when
   * buffered signals of pending waitpoints already satisfy it: outcome already_satisfied).
   */
  suspend(fence: LeaseFence, spec: SuspendSpec): Promise<SuspendOutcome>;
  /** Creates a pending waitpoint for the current attempt (fenced); signals to it are buffered. */
  createWaitpoint(fence: LeaseFence, spec: PendingWaitpointSpec): Promise<void>;
  /** Records a signal (the caller has checked its token); may resume the execution. */
  deliverSignal(spec: SignalSpec): Promise<SignalOutcome>;
  /** Operator resume of a suspended execution. */
  resume(executionId: string): Promise<void>;
  /** The signals that satisfied the current attempt's last resume (fenced). */
  resumeSignals(fence: LeaseFence): Promise<SignalRecord[]>;
  /** Installs (`init`, first boot only) or rotates the waitpoint token keyring. */
  updateKeyring(mode: "init" | "rotate", keyId: string, secretHex: string, graceMs: number): Promise<KeyringOutcome>;
  /** The raw keyring hash (the gateway's WaitpointKeyring parses it). */
  readKeyring(): Promise<Record<string, string>>;

  /** Appends one output frame to the running attempt's stream (fenced; caps enforced atomically). */
  appendFrame(fence: LeaseFence, frame: FrameSpec, limits: FrameLimits): Promise<AppendFrameOutcome>;
  /** A range of one attempt's frame stream, with the stream's state (mode, closed, summary). */
  readFrames(req: FrameReadRequest): Promise<FrameRead>;
  /**
   * Follows one attempt's frame stream live on a blocking connection shared by the partition's
   * watched streams (see engine/frame-watcher.ts). Throws NOT_FOUND for a malformed id's partition.
   */
  watchFrames(executionId: string, attemptIndex: number, afterId: string, listener: FrameWatchListener): FrameWatch;

  describe(executionId: string): Promise<ExecutionRecord>;
  getResult(executionId: string): Promise<ResultRecord>;
  /** The namespace an execution was created in (it never changes); undefined for an unknown id. */
  namespaceOf(executionId: string): Promise<string | undefined>;

  /** Lease-expiry scanner step: requeue (new attempt) or fail executions whose lease is past due. */
  expireLeases(partition: number, batch: number): Promise<ScanResult>;
  /** Delayed-promotion scanner step: make due delayed executions eligible. */
  promoteDelayed(partition: number, batch: number): Promise<ScanResult>;
  /** Timeout scanner step: expire executions past their deadline or attempt timeout. */
  expireTimeouts(partition: number, batch: number): Promise<ScanResult>;
  /** Retention scanner step: delete executions that ended at least `retentionMs` ago, with everything they own. */
  purgeTerminal(partition: number, batch: number, retentionMs: number): Promise<ScanResult>;
  /** Suspension-timeout scanner step: apply the timeout behaviour of suspensions past due. */
  expireSuspensions(partition: number, batch: number): Promise<ScanResult>;
  /** Safety-net scan: the eligible head position of each queue with work in the partition, keyed by `queueKey(namespace, lane)`. */
  laneHeads(partition: number): Promise<Map<string, QueuePosition>>;

  /** Subscribes to every partition's event channel; resolves once subscribed. */
  subscribe(listener: (event: EngineEvent) => void): Promise<void>;
  /** Closes connections. */
  close(): Promise<void>;
}
