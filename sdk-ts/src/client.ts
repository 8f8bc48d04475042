import { randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { backoffDelayMs, RETRY_BACKOFF } from "./backoff.js";
import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import {
  fromCancelResponse, fromCreateResponse, fromExecutionInfo, fromResultResponse, toCreateRequest,
  type CancelExecutionResult, type CreatedExecution, type ExecutionDescription, type ExecutionResult, type ExecutionSpec,
} from "./execution-types.js";
import { AdminService, RotateWaitpointSecretRequestSchema } from "./gen/flowfabric/v1/admin_pb.js";
import {
  CancelExecutionRequestSchema, CreateExecutionsRequestSchema, DescribeExecutionRequestSchema, ExecutionService, GetResultRequestSchema,
  ResumeExecutionRequestSchema,
  type CreateExecutionRequest, type CreateExecutionResponse,
} from "./gen/flowfabric/v1/execution_pb.js";
import { DeliverSignalRequestSchema, SignalService } from "./gen/flowfabric/v1/signal_pb.js";
import { signalEffectName, type SignalDelivery, type SignalDeliveryResult } from "./signal-types.js";
import { callMetadata, createGrpcClient, unaryCall, waitForReady, type TypedMethod } from "./grpc-call.js";
import { compileClientOptions, type ClientOptions, type CompiledClientOptions } from "./options.js";
import { FrameTail, readStream, type ReadStreamOptions, type ReadStreamResult, type StreamAccess, type TailStreamOptions } from "./streams.js";
import { traceHeaders, type TraceHeaders } from "./telemetry/trace-context.js";
import { TurnBatcher } from "./transport/turn-batcher.js";

/** Most executions in one CreateExecutions call (the gateway's limit). */
const CREATE_BATCH_MAX = 1000;
/** Most input bytes in one auto-batched CreateExecutions call (well under the default 8 MiB message cap). */
const CREATE_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Idempotency window of the keys the SDK generates for creates that have none, in ms: longer than
 * any retry of them (createRetryWindowMs ≤ 300000 plus a call), short enough to cost little memory.
 */
export const GENERATED_KEY_TTL_MS = 600_000;
/** Prefix of the idempotency keys the SDK generates (readable in the store). */
const GENERATED_KEY_PREFIX = "ff-sdk:";

/** A createExecution call waiting for this turn's batch. */
interface PendingCreate {
  readonly request: CreateExecutionRequest;
  readonly headers: TraceHeaders;
  readonly resolve: (response: CreateExecutionResponse) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Producer and operator client: creates executions and reads their state and results through
 * `ExecutionService` unary calls. Errors are {@link FlowFabricError}s carrying the gateway's
 * reason and field.
 */
export class FlowFabricClient {
  /** The compiled options. */
  readonly options: CompiledClientOptions;
  readonly #client: grpc.Client;
  #closed = false;
  /** createExecution calls of the current event-loop turn, sent together at its end. */
  readonly #creates = new TurnBatcher<PendingCreate>((batch) => this.#sendCreates(batch), (p) => p.request.input.byteLength, CREATE_BATCH_BYTES, CREATE_BATCH_MAX);
  /** Requests whose idempotency key the SDK generated. */
  readonly #generatedKeys = new WeakSet<CreateExecutionRequest>();
  /** Creates (single and batch) not answered yet: close() waits for them. */
  readonly #unanswered = new Set<Promise<unknown>>();

  private constructor(options: CompiledClientOptions) {
    this.options = options;
    this.#client = createGrpcClient(options.address, options.grpc);
  }

  /** Opens a channel and waits until it is ready (UNAVAILABLE/NOT_CONNECTED after `connectTimeoutMs`). */
  static async connect(options: ClientOptions = {}): Promise<FlowFabricClient> {
    const client = new FlowFabricClient(compileClientOptions(options));
    try {
      await waitForReady(client.#client, client.options.connectTimeoutMs);
    } catch (error) {
      client.close();
      throw new FlowFabricError({ code: ErrorCode.UNAVAILABLE, reason: LocalReason.NOT_CONNECTED, message: `cannot reach ${client.options.address}`, cause: error });
    }
    return client;
  }

  /**
   * Creates one execution (an idempotency key already used returns the existing one, `duplicate: true`).
   * The span active in the caller's context becomes the execution's trace parent (see
   * docs/observability.md); `spec.traceparent` overrides it.
   *
   * Calls made in the same event-loop turn are sent together in one `CreateExecutions` call (at
   * most 1000 executions or 4 MiB of input each), so a busy producer pays one round trip per turn,
   * not per execution. Each call still gets its own answer: when a batch is refused for a bad
   * request (INVALID_ARGUMENT, RESOURCE_EXHAUSTED: nothing of it was created), its executions are
   * re-sent one by one so only the bad one fails.
   *
   * A create that goes unanswered (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED — e.g. the gateway's
   * store was down or failing over, and it may have been created all the same) is sent again with
   * backoff for up to `createRetryWindowMs` (default 60 s) before the call rejects. That cannot
   * duplicate it: a spec without an `idempotencyKey` gets one generated by the SDK (remembered by
   * the store for 10 minutes), and the retry that finds the execution created by the first try
   * answers it with `duplicate: false` — it is the same create.
   */
  createExecution(spec: ExecutionSpec): Promise<CreatedExecution> {
    if (this.#closed) return Promise.reject(closedError());
    let request: CreateExecutionRequest;
    try {
      request = this.#keyed(toCreateRequest(spec, this.options.namespace));
    } catch (error) {
      return Promise.reject(error);
    }
    // The caller's span, captured now: by the time the batch is sent, its context is gone.
    const headers = traceHeaders();
    const answer = this.#untilAnswered(new Promise<CreateExecutionResponse>((resolve, reject) => this.#creates.add({ request, headers, resolve, reject })));
    return answer.then((response) => this.#fromCreate(request, response));
  }

  /**
   * Creates many executions in one call (all validated before any is created); results in order.
   * Retried like {@link createExecution} when unanswered, with the same idempotency keys.
   */
  async createExecutions(specs: readonly ExecutionSpec[]): Promise<CreatedExecution[]> {
    const executions = specs.map((spec, i) => this.#keyed(toCreateRequest(spec, this.options.namespace, `executions[${i}]`)));
    const request = create(CreateExecutionsRequestSchema, { executions });
    if (this.#closed) throw closedError();
    const trace = traceHeaders();
    const response = await this.#untilAnswered(this.#retrying(() => this.#send(ExecutionService.method.createExecutions, request, trace)));
    return response.results.map((result, i) => this.#fromCreate(executions[i]!, result));
  }

  /** Returns an execution's record; rejects with NOT_FOUND for an unknown id. */
  async describeExecution(executionId: string): Promise<ExecutionDescription> {
    const response = await this.#call(ExecutionService.method.describeExecution, create(DescribeExecutionRequestSchema, { executionId }));
    if (response.execution === undefined) {
      throw FlowFabricError.local(ErrorCode.INTERNAL, LocalReason.PROTOCOL_VIOLATION, "DescribeExecution answered without a record");
    }
    return fromExecutionInfo(response.execution);
  }

  /** Returns an execution's state and, once completed, its result. */
  async getResult(executionId: string): Promise<ExecutionResult> {
    return fromResultResponse(await this.#call(ExecutionService.method.getResult, create(GetResultRequestSchema, { executionId })));
  }

  /** Cancels a non-terminal execution as an operator; a worker running it is told. */
  async cancelExecution(executionId: string, reason: string): Promise<CancelExecutionResult> {
    return fromCancelResponse(await this.#call(ExecutionService.method.cancelExecution, create(CancelExecutionRequestSchema, { executionId, reason })));
  }

  /**
   * Delivers a signal to a waitpoint of a suspended (or about to suspend) execution, with the
   * waitpoint's token. A bad, expired or rotated-out token rejects with PERMISSION_DENIED (reason
   * INVALID_TOKEN) whether or not the waitpoint exists; a closed waitpoint with
   * FAILED_PRECONDITION (WAITPOINT_CLOSED). The active span's context is linked from the
   * execution's trace.
   */
  async deliverSignal(signal: SignalDelivery): Promise<SignalDeliveryResult> {
    const payload = signal.payload === undefined ? new Uint8Array(0) : typeof signal.payload === "string" ? Buffer.from(signal.payload, "utf8") : signal.payload;
    const response = await this.#call(SignalService.method.deliverSignal, create(DeliverSignalRequestSchema, {
      executionId: signal.executionId, waitpointId: signal.waitpointId, token: signal.token, name: signal.name, payload,
      source: signal.source ?? "", idempotencyKey: signal.idempotencyKey ?? "",
    }));
    return { effect: signalEffectName(response.effect), signalId: response.signalId };
  }

  /** Resumes a suspended execution as an operator, without a signal (FAILED_PRECONDITION / EXECUTION_NOT_SUSPENDED otherwise). */
  async resumeExecution(executionId: string): Promise<void> {
    await this.#call(ExecutionService.method.resumeExecution, create(ResumeExecutionRequestSchema, { executionId }));
  }

  /**
   * Rotates the waitpoint token secret (operator): new tokens are signed with a new key; tokens
   * of the previous key stay valid for `graceMs` (default: the gateway's, 24 h; 0 revokes them).
   */
  async rotateWaitpointSecret(options: { readonly newKeyId?: string; readonly graceMs?: number } = {}): Promise<{ keyId: string; previousKeyId: string; previousKeyExpiresAtMs: number }> {
    const request = create(RotateWaitpointSecretRequestSchema, { newKeyId: options.newKeyId ?? "" });
    if (options.graceMs !== undefined) request.graceMs = BigInt(Math.max(0, Math.floor(options.graceMs)));
    const r = await this.#call(AdminService.method.rotateWaitpointSecret, request);
    return { keyId: r.keyId, previousKeyId: r.previousKeyId, previousKeyExpiresAtMs: Number(r.previousKeyExpiresAtMs) };
  }

  /**
   * Reads a range of one attempt's output frames: at most `count` (default 100) after
   * `afterEntryId`, with the stream's state (closed and why, mode, summary document).
   */
  readStream(executionId: string, attemptIndex: number, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    if (this.#closed) return Promise.reject(closedError());
    return readStream(this.#streamAccess(), executionId, attemptIndex, options);
  }

  /**
   * Follows one attempt's output frames live: `for await (const frame of client.tailStream(id, 0))`.
   * Replays the frames after `afterEntryId` (default: all), then delivers each new one as it is
   * appended, and ends when the stream closes (`tail.end` says why). Resumes by itself from the
   * last frame after a dropped connection or a gateway drain: no frame missed, none twice.
   */
  tailStream(executionId: string, attemptIndex: number, options: TailStreamOptions = {}): FrameTail {
    return new FrameTail(this.#streamAccess(), executionId, attemptIndex, options);
  }

  #streamAccess(): StreamAccess {
    return { client: () => this.#client, metadata: () => callMetadata(this.options.authToken), callTimeoutMs: this.options.callTimeoutMs };
  }

  /**
   * Closes the client: later calls reject with CLOSED. createExecution and createExecutions calls made before it (also
   * those of this turn, not sent yet) are still sent, and the channel closes once every one of
   * them is answered (an unanswered create keeps retrying for up to `createRetryWindowMs`). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#creates.flush();
    this.#closed = true;
    if (this.#unanswered.size === 0) this.#client.close();
    else void Promise.allSettled(this.#unanswered).then(() => this.#client.close());
  }

  /** Sends one turn's batch of createExecution calls: a unary call for a single one, else CreateExecutions. */
  #sendCreates(batch: PendingCreate[]): void {
    if (batch.length === 1) {
      this.#createOne(batch[0]!);
      return;
    }
    // Each request carries its producer's trace context in its own fields.
    const executions = batch.map((p) => withTraceFields(p.request, p.headers));
    this.#retrying(() => this.#send(ExecutionService.method.createExecutions, create(CreateExecutionsRequestSchema, { executions }), NO_TRACE)).then(
      (response) => {
        if (response.results.length !== batch.length) {
          const error = FlowFabricError.local(ErrorCode.INTERNAL, LocalReason.PROTOCOL_VIOLATION, `CreateExecutions answered ${response.results.length} results for ${batch.length} executions`);
          for (const p of batch) p.reject(error);
          return;
        }
        batch.forEach((p, i) => p.resolve(response.results[i]!));
      },
      (error: unknown) => {
        const code = error instanceof FlowFabricError ? error.code : undefined;
        if (code === ErrorCode.INVALID_ARGUMENT || code === ErrorCode.RESOURCE_EXHAUSTED) {
          for (const p of batch) this.#createOne(p);
        } else {
          for (const p of batch) p.reject(error);
        }
      },
    );
  }

  #createOne(p: PendingCreate): void {
    this.#retrying(() => this.#send(ExecutionService.method.createExecution, p.request, p.headers)).then(p.resolve, p.reject);
  }

  /** The request with an idempotency key: its own, or (when creates are retried) one generated here. */
  #keyed(request: CreateExecutionRequest): CreateExecutionRequest {
    if (request.idempotencyKey === "" && this.options.createRetryWindowMs > 0) {
      request.idempotencyKey = `${GENERATED_KEY_PREFIX}${randomUUID()}`;
      request.idempotencyTtlMs = BigInt(GENERATED_KEY_TTL_MS);
      this.#generatedKeys.add(request);
    }
    return request;
  }

  /**
   * The answer to a create: `duplicate` only when the caller's own key matched — a generated key
   * matching is this very create's earlier, unanswered try.
   */
  #fromCreate(request: CreateExecutionRequest, response: CreateExecutionResponse): CreatedExecution {
    const created = fromCreateResponse(response);
    return this.#generatedKeys.has(request) ? { ...created, duplicate: false } : created;
  }

  /** Tracks a create until it settles: close() keeps the channel open for it (and its retries). */
  #untilAnswered<T>(answer: Promise<T>): Promise<T> {
    this.#unanswered.add(answer);
    const forget = (): void => { this.#unanswered.delete(answer); };
    answer.then(forget, forget);
    return answer;
  }

  /** Runs `call` again with backoff while it goes unanswered, for up to `createRetryWindowMs`. */
  async #retrying<T>(call: () => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + this.options.createRetryWindowMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const pauseMs = backoffDelayMs(attempt, RETRY_BACKOFF);
        if (!(error instanceof FlowFabricError && error.isRetryable) || Date.now() + pauseMs >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }

  /**
   * One unary call. The producer's span (`trace`: captured by the caller; default: the active
   * one) travels as W3C metadata: the gateway stores it with a created execution and parents its
   * own spans on it.
   */
  #call<I extends DescMessage, O extends DescMessage>(method: TypedMethod<I, O>, request: MessageShape<I>, trace: TraceHeaders = traceHeaders()): Promise<MessageShape<O>> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#send(method, request, trace);
  }

  /** The call itself, also for createExecution calls flushed by close(); any throw becomes a rejection. */
  async #send<I extends DescMessage, O extends DescMessage>(method: TypedMethod<I, O>, request: MessageShape<I>, trace: TraceHeaders): Promise<MessageShape<O>> {
    const metadata = callMetadata(this.options.authToken);
    const { traceparent, tracestate } = trace;
    if (traceparent !== "") {
      metadata.set("traceparent", traceparent);
      if (tracestate !== "") metadata.set("tracestate", tracestate);
    }
    return unaryCall(this.#client, method, request, metadata, this.options.callTimeoutMs);
  }
}

const NO_TRACE: TraceHeaders = Object.freeze({ traceparent: "", tracestate: "" });



function closedError(): FlowFabricError {
  return FlowFabricError.local(ErrorCode.CANCELLED, LocalReason.CLOSED, "the client is closed");
}

/** The request with the producer's trace context in its fields (unless the spec set them). */
function withTraceFields(request: CreateExecutionRequest, headers: TraceHeaders): CreateExecutionRequest {
  if (request.traceparent === "" && headers.traceparent !== "") {
    request.traceparent = headers.traceparent;
    request.tracestate = headers.tracestate;
  }
  return request;
}
