import type { FlowFabricError } from "./errors.js";

/**
 * States of a worker's connection (one session owned at a time):
 * `connecting` (first Hello) -> `active` (welcomed) -> `draining` (the gateway sent Drain; a new
 * session is being opened while the old one still answers operations) or `reconnecting` (the
 * stream failed; backing off) -> `active` ...; any state -> `closing` (close() called) -> `closed`.
 */
export type WorkerState = "connecting" | "active" | "draining" | "reconnecting" | "closing" | "closed";

/** Why a task's {@link ClaimedTask.signal} was aborted. */
export type TaskAbortKind = "lease_lost" | "cancelled" | "shutdown";

/** The `reason` of an aborted {@link ClaimedTask.signal}. */
export interface TaskAbortReason {
  /** What happened. */
  readonly kind: TaskAbortKind;
  /** Human-readable detail (gateway reason, canceller's reason, ...). */
  readonly message: string;
}

/** Something that happened to a worker, reported to {@link WorkerOptions.onEvent}. */
export type WorkerEvent =
  /** The worker changed state. */
  | { readonly type: "state"; readonly from: WorkerState; readonly to: WorkerState }
  /** A session was welcomed; `adopted`/`notAdopted` count the re-adopted leases. */
  | { readonly type: "session_started"; readonly sessionId: string; readonly gatewayId: string; readonly adopted: number; readonly notAdopted: number }
  /** A session ended (expected after a drain, or a failure). */
  | { readonly type: "session_ended"; readonly sessionId: string | undefined; readonly error: FlowFabricError }
  /** A connection attempt failed; the next one starts after `delayMs`. */
  | { readonly type: "reconnect_scheduled"; readonly attempt: number; readonly delayMs: number; readonly error: FlowFabricError }
  /** The gateway asked the worker to move to another session. */
  | { readonly type: "drain"; readonly reason: string; readonly graceMs: number }
  /** A task stopped without a terminal operation of its own: lease lost or cancelled. */
  | { readonly type: "task_lost"; readonly executionId: string; readonly kind: TaskAbortKind; readonly message: string }
  /** `run()` could not complete or fail a task after its handler returned. */
  | { readonly type: "settle_failed"; readonly executionId: string; readonly error: FlowFabricError };
