import type { BackoffPolicy, RETRY_BACKOFF } from "./backoff.js";
import type { StreamAccess } from "./streams.js";
import type { OperationKind, OperationRequest, OperationResponse } from "./transport/worker-operations.js";

/** The operation types come from the one table of worker operations (transport/worker-operations.ts). */
export type { OperationKind, OperationRequest, OperationResponse } from "./transport/worker-operations.js";

/**
 * Life of a {@link ClaimedTask}: `running` -> `settling` (a terminal operation is in flight) ->
 * `consumed` (it succeeded or the lease turned out to be gone); `running` -> `lost` (lease lost or
 * cancelled by someone else). A terminal operation that goes unanswered (UNAVAILABLE...) is
 * retried and the task stays `settling`; one refused for another reason (e.g. PAYLOAD_TOO_LARGE)
 * returns the task from `settling` to `running`.
 */
export type TaskState = "running" | "settling" | "consumed" | "lost";

/** The task an operation belongs to, as seen by the operation channel. */
export interface OperationOwner {
  /** The execution. */
  readonly executionId: string;
  /** Current state. */
  readonly state: TaskState;
}

/**
 * What a {@link ClaimedTask} needs from its worker: a way to send operations (answered,
 * re-sent across reconnects, rejected with a FlowFabricError) and a way to say it ended.
 * Tests substitute a fake.
 */
export interface TaskOperationChannel {
  /** Sends one operation and resolves with its answer; rejects with a FlowFabricError. */
  submit<K extends OperationKind>(task: OperationOwner, kind: K, request: OperationRequest<K>): Promise<OperationResponse<K>>;
  /** Called once when the task is consumed or lost (its slot is free). */
  taskEnded(task: OperationOwner): void;
  /** Channel for reading frame streams (ClaimedTask.readStream/tailStream); absent in fakes. */
  readonly streams?: StreamAccess;
  /** Backoff between retries of an unanswered operation; default {@link RETRY_BACKOFF}. */
  readonly retryBackoff?: BackoffPolicy;
}
