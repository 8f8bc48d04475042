import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import {
  fromCancelResponse, fromCreateResponse, fromExecutionInfo, fromResultResponse, toCreateRequest,
  type CancelExecutionResult, type CreatedExecution, type ExecutionDescription, type ExecutionResult, type ExecutionSpec,
} from "./execution-types.js";
import {
  CancelExecutionRequestSchema, CreateExecutionsRequestSchema, DescribeExecutionRequestSchema, ExecutionService, GetResultRequestSchema,
} from "./gen/flowfabric/v1/execution_pb.js";
import { callMetadata, createGrpcClient, unaryCall, waitForReady, type TypedMethod } from "./grpc-call.js";
import { compileClientOptions, type ClientOptions, type CompiledClientOptions } from "./options.js";
import { FrameTail, readStream, type ReadStreamOptions, type ReadStreamResult, type StreamAccess, type TailStreamOptions } from "./streams.js";
import { traceHeaders } from "./telemetry/trace-context.js";

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
   */
  async createExecution(spec: ExecutionSpec): Promise<CreatedExecution> {
    const response = await this.#call(ExecutionService.method.createExecution, toCreateRequest(spec, this.options.namespace));
    return fromCreateResponse(response);
  }

  /** Creates many executions in one call (all validated before any is created); results in order. */
  async createExecutions(specs: readonly ExecutionSpec[]): Promise<CreatedExecution[]> {
    const request = create(CreateExecutionsRequestSchema, { executions: specs.map((spec) => toCreateRequest(spec, this.options.namespace)) });
    const response = await this.#call(ExecutionService.method.createExecutions, request);
    return response.results.map(fromCreateResponse);
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
   * Reads a range of one attempt's output frames: at most `count` (default 100) after
   * `afterEntryId`, with the stream's state (closed and why, mode, summary document).
   */
  readStream(executionId: string, attemptIndex: number, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    if (this.#closed) return Promise.reject(FlowFabricError.local(ErrorCode.CANCELLED, LocalReason.CLOSED, "the client is closed"));
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

  /** Closes the channel; later calls reject with CLOSED. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  #call<I extends DescMessage, O extends DescMessage>(method: TypedMethod<I, O>, request: MessageShape<I>): Promise<MessageShape<O>> {
    if (this.#closed) return Promise.reject(FlowFabricError.local(ErrorCode.CANCELLED, LocalReason.CLOSED, "the client is closed"));
    const metadata = callMetadata(this.options.authToken);
    // The producer's active span (if any) travels as W3C metadata: the gateway stores it with a
    // created execution and parents its own spans on it.
    const { traceparent, tracestate } = traceHeaders();
    if (traceparent !== "") {
      metadata.set("traceparent", traceparent);
      if (tracestate !== "") metadata.set("tracestate", tracestate);
    }
    return unaryCall(this.#client, method, request, metadata, this.options.callTimeoutMs);
  }
}
