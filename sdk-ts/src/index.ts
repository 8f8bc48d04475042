/**
 * FlowFabric TypeScript SDK: {@link FlowFabricWorker} runs tasks pushed over one Session stream,
 * {@link FlowFabricClient} creates and inspects executions, {@link FlowFabricError} is the one
 * error type.
 */
export { FlowFabricWorker, type CloseOptions } from "./worker.js";
export { ClaimedTask, UNHEALTHY_AFTER_MISSED_RENEWALS, type FailResult, type SettleResult } from "./claimed-task.js";
export type { TaskState } from "./task-operations.js";
export type { RunOptions, TaskHandler, TaskResult } from "./task-runner.js";
export type { TaskAbortKind, TaskAbortReason, WorkerEvent, WorkerState } from "./worker-events.js";
export { FlowFabricClient } from "./client.js";
export {
  FrameTail,
  type ReadStreamOptions, type ReadStreamResult, type StreamCloseReasonName, type StreamEnd, type StreamFrame, type StreamModeName,
  type TailStreamOptions,
} from "./streams.js";
export type { AppendFrameOptions, AppendFrameResult } from "./claimed-task.js";
export { MAX_PRIORITY, MIN_PRIORITY } from "./execution-types.js";
export type {
  CancelExecutionResult, CreatedExecution, ExecutionDescription, ExecutionResult, ExecutionSpec, PublicStateName, RetryPolicySpec,
} from "./execution-types.js";
export type {
  ReceivedSignal, ResumeReason, SignalDelivery, SignalDeliveryResult, SignalMatch, SuspendOptions, SuspendResult, SuspensionDescription,
  SuspensionTimeoutName, WaitFor, WaitpointDescription, WaitpointHandle,
} from "./signal-types.js";
export { ErrorCode, FlowFabricError, LEASE_GONE_REASONS, LocalReason, RETRYABLE_CODES, type FlowFabricErrorInit } from "./errors.js";
export {
  compileClientOptions, compileWorkerOptions, DEFAULT_ADDRESS,
  type ClientOptions, type CompiledClientOptions, type CompiledGrpcOptions, type CompiledWorkerOptions, type GrpcOptions,
  type ReconnectOptions, type TlsOptions, type WorkerOptions,
} from "./options.js";
export { backoffDelayMs, type BackoffPolicy } from "./backoff.js";
export type { TraceMode } from "./telemetry/task-tracing.js";
export * as telemetry from "./telemetry/attributes.js";
