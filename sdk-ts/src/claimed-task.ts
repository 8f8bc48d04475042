import { create } from "@bufbuild/protobuf";
import type { Span } from "@opentelemetry/api";
import { FenceSchema, type Fence } from "./gen/flowfabric/v1/common_pb.js";
import {
  AppendFrameRequestSchema, type AppendFrameRequest, type AppendFrameResponse,
  CancelTaskRequestSchema, CompleteTaskRequestSchema, DelayTaskRequestSchema, FailOutcome, FailTaskRequestSchema,
  RenewLeaseRequestSchema, UpdateProgressRequestSchema, type Task,
} from "./gen/flowfabric/v1/worker_pb.js";
import { CreateWaitpointRequestSchema, ResumeSignalsRequestSchema, SuspendTaskRequestSchema } from "./gen/flowfabric/v1/signal_pb.js";
import {
  fromSignal, fromSuspendResponse, fromWaitpointToken, toCondition, toTimeoutBehavior,
  type ReceivedSignal, type ResumeReason, type SuspendOptions, type SuspendResult, type WaitpointHandle,
} from "./signal-types.js";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import { ATTR_ERROR_REASON, ATTR_OUTCOME } from "./telemetry/attributes.js";
import { OPERATIONS } from "./transport/worker-operations.js";
import { headersOfSpanContext, traceHeaders, type TraceHeaders } from "./telemetry/trace-context.js";
import { backoffDelayMs, RETRY_BACKOFF } from "./backoff.js";
import {
  type OperationKind, type OperationRequest, type OperationResponse, type TaskOperationChannel, type TaskState,
} from "./task-operations.js";
import type { TaskAbortKind, TaskAbortReason } from "./worker-events.js";
import { FrameTail, readStream, type ReadStreamOptions, type ReadStreamResult, type StreamAccess, type TailStreamOptions } from "./streams.js";

/** Consecutive missed renewals after which {@link ClaimedTask.isLeaseHealthy} turns false. */
export const UNHEALTHY_AFTER_MISSED_RENEWALS = 3;

/** Result of {@link ClaimedTask.complete} and {@link ClaimedTask.cancel}. */
export interface SettleResult {
  /** True when the gateway found the same outcome already committed (a replay after a lost answer). */
  readonly reconciled: boolean;
}

/** Result of {@link ClaimedTask.fail}. */
export interface FailResult extends SettleResult {
  /** Whether the retry policy scheduled another attempt. */
  readonly outcome: "retry_scheduled" | "failed";
  /** When the retry becomes eligible, in Unix milliseconds; undefined when failed. */
  readonly retryAtMs: number | undefined;
  /** Retries consumed including this one. */
  readonly retryCount: number;
}

/** Options of {@link ClaimedTask.appendFrame}. */
export interface AppendFrameOptions {
  /** Correlation id (e.g. a tool call id), at most 256 bytes. */
  readonly correlationId?: string;
  /** Best-effort mode: makes this attempt's stream permanent (no TTL). */
  readonly durable?: boolean;
}

/** Result of {@link ClaimedTask.appendFrame}. */
export interface AppendFrameResult {
  /** Stream entry id "<ms>-<seq>" of the frame (a cursor for readStream/tailStream). */
  readonly entryId: string;
  /** Frames appended to this attempt's stream so far; this frame's 1-based sequence number. */
  readonly frameCount: number;
  /** Summary mode: the summary document version after this frame; 0 otherwise. */
  readonly summaryVersion: number;
}

/** An append that went unanswered, waiting for its turn to be sent again. */
interface AppendRetry {
  readonly request: AppendFrameRequest;
  resolve(response: AppendFrameResponse): void;
  reject(error: FlowFabricError): void;
}

/** The worker's handle on a task's internals (not part of the public API). */
export interface TaskControl {
  /** The fence presented on every operation. */
  readonly fence: Fence;
  /** A renewal succeeded (heartbeat ack, adoption or renewLease). */
  renewed(leaseExpiresAtMs: number): void;
  /** A heartbeat period passed: counts a failure unless a renewal happened since the last tick. */
  tick(): void;
  /** The lease is gone or the execution was cancelled; returns true when this changed anything. */
  lose(kind: Exclude<TaskAbortKind, "shutdown">, message: string): boolean;
  /** The worker is shutting down: aborts the signal, keeps the state. */
  shutdown(message: string): void;
  /** Why the signal aborted (or will abort once read); undefined while it has not. */
  abortReason(): TaskAbortReason | undefined;
  /** The task runs inside `span`: operations become its events and settle requests carry its context. */
  trace(span: Span): void;
}

/** Symbol under which a {@link ClaimedTask} exposes its {@link TaskControl} to the worker. */
export const TASK_CONTROL: unique symbol = Symbol("flowfabric.taskControl");

/**
 * A task pushed to this worker: one execution attempt whose lease this worker holds.
 * Finish it with exactly one terminal operation — {@link complete}, {@link fail}, {@link cancel}
 * or {@link delayExecution}; any call after that throws reason `TASK_CONSUMED`. Stop work when
 * {@link signal} aborts (lease lost, cancelled, worker shutdown).
 */
export class ClaimedTask {
  /** Execution id, "<partition>:<uuid>". */
  readonly executionId: string;
  /** Zero-based attempt index. */
  readonly attemptIndex: number;
  /** Attempt id (UUID). */
  readonly attemptId: string;
  /** Lease id (UUID). */
  readonly leaseId: string;
  /** Lease epoch (incremented by every grant of the execution). */
  readonly leaseEpoch: number;
  /** Input payload, byte-exact. */
  readonly inputPayload: Uint8Array;
  /** Kind chosen by the producer (e.g. "send-email"). */
  readonly executionKind: string;
  /** Lane the task came from. */
  readonly laneId: string;
  /** Namespace of the execution. */
  readonly namespace: string;
  /** Producer tags. */
  readonly tags: Readonly<Record<string, string>>;
  /** Priority (higher runs first). */
  readonly priority: number;
  /** True when this resumes an attempt that was suspended or delayed, rather than starting a new one. */
  readonly resumed: boolean;
  /**
   * Why a resumed attempt resumed: "signal" (its condition was met: see {@link resumeSignals}),
   * "timeout" (a suspension with `onTimeout: "resume"`), "operator" (ResumeExecution) or "delay";
   * "" for a new attempt.
   */
  readonly resumeReason: ResumeReason;
  /** Retries consumed so far. */
  readonly retryCount: number;
  /** Creation time of the execution, in Unix milliseconds. */
  readonly createdAtMs: number;
  /** Execution deadline, in Unix milliseconds; 0 when none. */
  readonly deadlineAtMs: number;
  /**
   * W3C traceparent of the gateway's dispatch span (a child of the producer's span), or of the
   * producer's span when the gateway does not trace; empty when untraced.
   */
  readonly traceparent: string;
  /** W3C tracestate accompanying traceparent. */
  readonly tracestate: string;

  readonly #channel: TaskOperationChannel;
  /** Created on the first read of {@link signal} (an AbortController per task is not free). */
  #abort: AbortController | undefined;
  #abortReason: TaskAbortReason | undefined;
  readonly #fence: Fence;
  #state: TaskState = "running";
  #leaseExpiresAtMs: number;
  #failures = 0;
  #renewedSinceTick = true;
  #lostWhileSettling: TaskAbortReason | undefined;
  #span: Span | undefined;
  /** Number of the last appendFrame of this lease (lets the gateway drop a re-sent append). */
  #frameSeq = 0;
  /**
   * Unanswered appends being sent again, in sequence order: a later append stored before an
   * earlier one's retry would make the gateway take that retry for a re-send and drop it.
   */
  readonly #appendRetries: AppendRetry[] = [];
  /** The loop sending {@link #appendRetries}, while it runs. */
  #appendRetrying: Promise<void> | undefined;
  readonly #control: TaskControl;

  /** Built by the worker from a pushed task; not meant to be constructed by users. */
  constructor(task: Task, channel: TaskOperationChannel) {
    this.#fence = task.fence ?? create(FenceSchema);
    this.executionId = this.#fence.executionId;
    this.attemptIndex = task.attemptIndex;
    this.attemptId = this.#fence.attemptId;
    this.leaseId = this.#fence.leaseId;
    this.leaseEpoch = Number(this.#fence.leaseEpoch);
    this.inputPayload = task.input;
    this.executionKind = task.kind;
    this.laneId = task.lane;
    this.namespace = task.namespace;
    this.tags = Object.freeze({ ...task.tags });
    this.priority = task.priority;
    this.resumed = task.resumed;
    this.resumeReason = task.resumeReason as ResumeReason;
    this.retryCount = task.retryCount;
    this.createdAtMs = Number(task.createdAtMs);
    this.deadlineAtMs = Number(task.deadlineAtMs);
    this.traceparent = task.traceparent;
    this.tracestate = task.tracestate;
    this.#leaseExpiresAtMs = Number(task.leaseExpiresAtMs);
    this.#channel = channel;
    this.#control = Object.freeze({
      fence: this.#fence,
      renewed: (leaseExpiresAtMs: number) => {
        if (leaseExpiresAtMs > 0) this.#leaseExpiresAtMs = leaseExpiresAtMs;
        this.#failures = 0;
        this.#renewedSinceTick = true;
      },
      tick: () => {
        if (!this.#renewedSinceTick && (this.#state === "running" || this.#state === "settling")) this.#failures += 1;
        this.#renewedSinceTick = false;
      },
      lose: (kind: Exclude<TaskAbortKind, "shutdown">, message: string) => this.#lose({ kind, message }),
      shutdown: (message: string) => this.#abortSignal({ kind: "shutdown", message }),
      abortReason: () => this.#abortReason,
      trace: (span: Span) => {
        this.#span = span;
      },
    });
  }

  /** Current state: running, settling, consumed or lost. */
  get state(): TaskState {
    return this.#state;
  }

  /** Aborted on lease loss, cancel request or worker shutdown; `reason` is a {@link TaskAbortReason}. */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#abortReason !== undefined) this.#abort.abort(this.#abortReason);
    }
    return this.#abort.signal;
  }

  /** Last known lease expiry, in Unix milliseconds. */
  get leaseExpiresAtMs(): number {
    return this.#leaseExpiresAtMs;
  }

  /** The input decoded as UTF-8. */
  inputText(): string {
    return Buffer.from(this.inputPayload.buffer, this.inputPayload.byteOffset, this.inputPayload.byteLength).toString("utf8");
  }

  /**
   * False once the lease is lost (or the task is over), or after 3 heartbeat periods in a row
   * without a successful renewal. Check before irreversible side effects.
   */
  isLeaseHealthy(): boolean {
    return (this.#state === "running" || this.#state === "settling") && this.#failures < UNHEALTHY_AFTER_MISSED_RENEWALS;
  }

  /** Heartbeat periods (or renewLease calls) in a row without a successful renewal; 0 when healthy. */
  consecutiveRenewalFailures(): number {
    return this.#failures;
  }

  /** Renews the lease now (heartbeats already renew it in the background). */
  async renewLease(): Promise<void> {
    try {
      const response = await this.#operate("renewLease", create(RenewLeaseRequestSchema, { fence: this.#fence }));
      this.#control.renewed(Number(response.leaseExpiresAtMs));
    } catch (error) {
      if (error instanceof FlowFabricError && !error.isLeaseGone && error.reason !== LocalReason.TASK_CONSUMED) this.#failures += 1;
      throw error;
    }
  }

  /** Records progress (0..100, and an optional short message) on the execution record. */
  async updateProgress(percent: number, message = ""): Promise<void> {
    await this.#operate("updateProgress", create(UpdateProgressRequestSchema, { fence: this.#fence, percent, message }));
  }

  /**
   * Appends one output frame (a token, a log line, a progress event, an artifact reference...)
   * to this attempt's frame stream; consumers read it with `readStream`/`tailStream`. Fenced by
   * the lease: after the task is consumed or its lease is lost it is rejected. Appends made
   * without awaiting each other are stored in call order; one re-sent after a reconnect is not
   * stored twice. A string payload is sent as UTF-8. Oversize frames (default 64 KiB with type,
   * correlation id and metadata) and full durable streams are rejected with RESOURCE_EXHAUSTED
   * (reason LIMIT_EXCEEDED, `metadata.limit` naming the limit). An append the gateway could not
   * store (UNAVAILABLE: its store is down or refusing writes) is sent again with backoff, in
   * order, until it is stored or the lease is gone; a terminal operation waits for those retries.
   */
  async appendFrame(frameType: string, payload: Uint8Array | string, metadata: Readonly<Record<string, string>> = {}, options: AppendFrameOptions = {}): Promise<AppendFrameResult> {
    const request = create(AppendFrameRequestSchema, {
      fence: this.#fence,
      frameType,
      payload: typeof payload === "string" ? Buffer.from(payload, "utf8") : payload,
      correlationId: options.correlationId ?? "",
      metadata: { ...metadata },
      durable: options.durable ?? false,
      sequence: BigInt(++this.#frameSeq),
    });
    const response = this.#appendRetries.length > 0
      ? await this.#retryAppend(request)
      : await this.#operate("appendFrame", request).catch((error: unknown) => {
        if (error instanceof FlowFabricError && error.isRetryable) return this.#retryAppend(request);
        throw error;
      });
    return { entryId: response.entryId, frameCount: Number(response.frameCount), summaryVersion: Number(response.summaryVersion) };
  }

  /** Reads a range of this attempt's frames (see FlowFabricClient.readStream). */
  readStream(options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    return readStream(this.#streams(), this.executionId, this.attemptIndex, options);
  }

  /** Follows this attempt's frames live (see FlowFabricClient.tailStream). */
  tailStream(options: TailStreamOptions = {}): FrameTail {
    return new FrameTail(this.#streams(), this.executionId, this.attemptIndex, options);
  }

  #streams(): StreamAccess {
    const streams = this.#channel.streams;
    if (streams === undefined) throw FlowFabricError.local(ErrorCode.UNIMPLEMENTED, LocalReason.CLOSED, "this task has no stream channel");
    return streams;
  }

  /** Completes the execution, with an optional result (a string is sent as UTF-8). Consumes the task. */
  async complete(result?: Uint8Array | string): Promise<SettleResult> {
    const request = create(CompleteTaskRequestSchema, { fence: this.#fence, ...this.#traceHeaders() });
    if (result !== undefined) request.result = typeof result === "string" ? Buffer.from(result, "utf8") : result;
    const response = await this.#settle("complete", request);
    return { reconciled: response.reconciled };
  }

  /**
   * Reports a failure; the retry policy decides between a retry and a terminal failure.
   * `category` (default "error") is matched against the policy's retryable categories. Consumes the task.
   */
  async fail(reason: string, category = "error"): Promise<FailResult> {
    const response = await this.#settle("fail", create(FailTaskRequestSchema, { fence: this.#fence, reason, category, ...this.#traceHeaders() }));
    const retry = response.outcome === FailOutcome.RETRY_SCHEDULED;
    return {
      outcome: retry ? "retry_scheduled" : "failed",
      retryAtMs: retry ? Number(response.retryAtMs) : undefined,
      retryCount: response.retryCount,
      reconciled: response.reconciled,
    };
  }

  /** Cancels the execution as its lease holder. Consumes the task. */
  async cancel(reason: string): Promise<SettleResult> {
    const response = await this.#settle("cancel", create(CancelTaskRequestSchema, { fence: this.#fence, reason, ...this.#traceHeaders() }));
    return { reconciled: response.reconciled };
  }

  /** Releases the lease; the same attempt resumes at `untilMs` (Unix milliseconds). Consumes the task. */
  async delayExecution(untilMs: number): Promise<void> {
    await this.#settle("delay", create(DelayTaskRequestSchema, { fence: this.#fence, delayUntilMs: BigInt(Math.max(0, Math.floor(untilMs))) }));
  }

  /**
   * Suspends the attempt until signals meet `waitFor` (docs/signals.md). The lease and the slot
   * are released at once and the task is consumed ("suspended"): once the condition is met (or an
   * `onTimeout: "resume"` timeout passes, or an operator resumes it) the execution is pushed again,
   * to any worker of the lane, as the same attempt with `resumed` true. The returned waitpoint's
   * token lets anyone signal it (`FlowFabricClient.deliverSignal`); the attempt's pending
   * waitpoints ({@link createPendingWaitpoint}) join the suspension. When their buffered signals
   * already meet the condition nothing is suspended: "already_satisfied", the lease is kept and
   * the handler simply continues ({@link resumeSignals} returns the signals).
   */
  async suspend(options: SuspendOptions): Promise<SuspendResult> {
    const response = await this.#settle("suspend", create(SuspendTaskRequestSchema, {
      fence: this.#fence,
      reasonCode: options.reasonCode ?? "",
      waitFor: toCondition(options.waitFor),
      timeoutMs: BigInt(Math.max(0, Math.floor(options.timeoutMs ?? 0))),
      onTimeout: toTimeoutBehavior(options.onTimeout),
      waitpointKey: options.waitpointKey ?? "",
      ...this.#traceHeaders(),
    }));
    return fromSuspendResponse(response.outcome, response.waitpoint);
  }

  /**
   * Creates a pending waitpoint for this attempt, before suspending: hand its token to an outside
   * system now; signals it sends before the suspend are buffered and counted by it. The waitpoint
   * (and its token) expires after `expiresInMs` (default and maximum: the gateway's
   * pending-waitpoint lifetime, 7 days). `key` ("" for none) is unique among the attempt's open waitpoints.
   */
  async createPendingWaitpoint(key: string, options: { readonly expiresInMs?: number } = {}): Promise<WaitpointHandle> {
    const response = await this.#operate("createWaitpoint", create(CreateWaitpointRequestSchema, {
      fence: this.#fence, waitpointKey: key, expiresInMs: BigInt(Math.max(0, Math.floor(options.expiresInMs ?? 0))),
    }));
    return fromWaitpointToken(response.waitpoint);
  }

  /**
   * The signals that satisfied this attempt's last resume (or already-satisfied suspend), in
   * delivery order: name, payload bytes, source, time. Empty for a new attempt and for a timeout
   * or operator resume; never another attempt's.
   */
  async resumeSignals(): Promise<ReceivedSignal[]> {
    const response = await this.#operate("resumeSignals", create(ResumeSignalsRequestSchema, { fence: this.#fence }));
    return response.signals.map(fromSignal);
  }

  /** The worker's handle (see {@link TaskControl}). */
  get [TASK_CONTROL](): TaskControl {
    return this.#control;
  }

  /** Trace context for a settle request: the task span's, else the caller's active span's. */
  #traceHeaders(): TraceHeaders {
    return this.#span !== undefined ? headersOfSpanContext(this.#span.spanContext()) : traceHeaders();
  }

  #lose(reason: TaskAbortReason): boolean {
    if (this.#state === "running") {
      this.#span?.setAttribute(ATTR_OUTCOME, "lost");
      this.#abortSignal(reason);
      this.#end("lost");
      return true;
    }
    if (this.#state === "settling" && this.#lostWhileSettling === undefined) {
      this.#lostWhileSettling = reason;
      this.#abortSignal(reason);
      return true;
    }
    return false;
  }

  #abortSignal(reason: TaskAbortReason): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = Object.freeze({ ...reason });
    this.#abort?.abort(this.#abortReason);
  }

  #end(state: "consumed" | "lost"): void {
    this.#state = state;
    this.#channel.taskEnded(this);
  }

  #assertRunning(): void {
    if (this.#state === "running") return;
    if (this.#state === "lost") {
      const reason = this.#abortReason;
      throw FlowFabricError.local(ErrorCode.FAILED_PRECONDITION, LocalReason.LEASE_LOST,
        `the lease of ${this.executionId} is gone (${reason?.kind ?? "lease_lost"}: ${reason?.message ?? ""})`);
    }
    throw FlowFabricError.local(ErrorCode.FAILED_PRECONDITION, LocalReason.TASK_CONSUMED,
      `task ${this.executionId} was already completed, failed, cancelled, delayed or suspended`);
  }

  async #operate<K extends OperationKind>(kind: K, request: OperationRequest<K>): Promise<OperationResponse<K>> {
    this.#assertRunning();
    try {
      const response = await this.#channel.submit(this, kind, request);
      this.#span?.addEvent(OPERATIONS[kind].spanName);
      return response;
    } catch (error) {
      const ffError = FlowFabricError.fromServiceError(error);
      this.#span?.addEvent(OPERATIONS[kind].spanName, { [ATTR_OUTCOME]: "error", [ATTR_ERROR_REASON]: ffError.reason });
      if (ffError.isLeaseGone) this.#lose({ kind: "lease_lost", message: ffError.reason });
      throw ffError;
    }
  }

  /**
   * Sends a terminal operation until it is answered: one that goes unanswered (UNAVAILABLE,
   * DEADLINE_EXCEEDED, ABORTED — the store was down or refused the write) is sent again with
   * backoff, never turned into another outcome; a retry of one that had committed is reconciled
   * by the gateway (protocol rule 9). Retries stop once the lease is known lost or the worker closes.
   */
  async #settle<K extends OperationKind>(kind: K, request: OperationRequest<K>): Promise<OperationResponse<K>> {
    this.#assertRunning();
    this.#state = "settling";
    // Frames first: the end of the attempt closes its stream.
    if (this.#appendRetrying !== undefined) await this.#appendRetrying;
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.#channel.submit(this, kind, request);
        const op = OPERATIONS[kind];
        if (op.keepsLease(response)) {
          // e.g. a suspend already satisfied: the task keeps its lease and goes on running.
          this.#span?.addEvent(op.spanName, { [ATTR_OUTCOME]: op.outcome(response) ?? kind });
          this.#state = "running";
          return response;
        }
        this.#span?.addEvent(op.spanName).setAttribute(ATTR_OUTCOME, op.outcome(response) ?? kind);
        this.#end("consumed");
        return response;
      } catch (error) {
        const ffError = FlowFabricError.fromServiceError(error);
        this.#span?.addEvent(OPERATIONS[kind].spanName, { [ATTR_OUTCOME]: "error", [ATTR_ERROR_REASON]: ffError.reason });
        if (ffError.isRetryable && this.#lostWhileSettling === undefined) {
          await this.#retryPause(attempt);
          continue;
        }
        if (ffError.isLeaseGone || ffError.reason === LocalReason.CLOSED) this.#end("consumed");
        else if (this.#lostWhileSettling !== undefined) this.#end("lost");
        else this.#state = "running";
        throw ffError;
      }
    }
  }

  /** Queues an unanswered append for another try, in sequence order, and starts the retry loop. */
  #retryAppend(request: AppendFrameRequest): Promise<AppendFrameResponse> {
    return new Promise<AppendFrameResponse>((resolve, reject) => {
      const at = this.#appendRetries.findIndex((r) => r.request.sequence > request.sequence);
      this.#appendRetries.splice(at < 0 ? this.#appendRetries.length : at, 0, { request, resolve, reject });
      this.#appendRetrying ??= this.#sendAppendRetries().finally(() => { this.#appendRetrying = undefined; });
    });
  }

  async #sendAppendRetries(): Promise<void> {
    for (let attempt = 0; this.#appendRetries.length > 0;) {
      await this.#retryPause(attempt);
      const head = this.#appendRetries[0]!;
      try {
        if (this.#state !== "running" && this.#state !== "settling") this.#assertRunning();
        const response = await this.#channel.submit(this, "appendFrame", head.request);
        this.#appendRetries.shift();
        head.resolve(response);
        attempt = 0;
      } catch (error) {
        const ffError = FlowFabricError.fromServiceError(error);
        if (ffError.isRetryable) {
          attempt++;
          continue;
        }
        if (ffError.isLeaseGone) this.#lose({ kind: "lease_lost", message: ffError.reason });
        this.#appendRetries.shift();
        head.reject(ffError);
      }
    }
  }

  /** The pause before retry number `attempt` (0-based) of an unanswered operation. */
  #retryPause(attempt: number): Promise<void> {
    const ms = backoffDelayMs(attempt, this.#channel.retryBackoff ?? RETRY_BACKOFF);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
