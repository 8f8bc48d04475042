import { randomUUID } from "node:crypto";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import type { SessionRequest, SessionResponse } from "./gen/flowfabric/v1/worker_pb.js";
import type { OperationKind, OperationOwner, OperationRequest, OperationResponse } from "./task-operations.js";
import { OPERATIONS } from "./transport/worker-operations.js";
import type { WorkerSession } from "./worker-session.js";

interface PendingOperation {
  readonly requestId: string;
  readonly kind: OperationKind;
  readonly owner: OperationOwner;
  readonly body: SessionRequest["body"];
  sentOn: WorkerSession | undefined;
  resolve(response: unknown): void;
  reject(error: FlowFabricError): void;
}

/**
 * Sends task operations over the current session and matches answers by `request_id`.
 * An operation whose session ended unanswered is re-sent, with the same `request_id`, on the
 * next welcomed session (terminal operations reconcile on the gateway, protocol rule 9);
 * a non-terminal one whose task has meanwhile lost its lease is rejected with LEASE_LOST instead.
 */
export class OperationRouter {
  readonly #pending = new Map<string, PendingOperation>();
  #target: WorkerSession | undefined;
  #closed: FlowFabricError | undefined;

  /** Operations sent or waiting to be sent, not yet answered. */
  get size(): number {
    return this.#pending.size;
  }

  /** Sends an operation now, or as soon as a session is welcomed. */
  submit<K extends OperationKind>(owner: OperationOwner, kind: K, request: OperationRequest<K>): Promise<OperationResponse<K>> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise<OperationResponse<K>>((resolve, reject) => {
      const op: PendingOperation = {
        requestId: randomUUID(),
        kind,
        owner,
        body: { case: kind, value: request } as SessionRequest["body"],
        sentOn: undefined,
        resolve: resolve as (response: unknown) => void,
        reject,
      };
      this.#pending.set(op.requestId, op);
      this.#send(op);
    });
  }

  /** Directs new and unsent operations to `session` (undefined: hold them until the next one). */
  setTarget(session: WorkerSession | undefined): void {
    this.#target = session;
    this.#flush();
  }

  /** Settles the operation a response answers; returns false when `message` is not an answer. */
  answer(message: SessionResponse): boolean {
    if (message.requestId === "") return false;
    const op = this.#pending.get(message.requestId);
    if (op === undefined) return true; // a late duplicate answer
    this.#pending.delete(op.requestId);
    const body = message.body;
    if (body.case === "error") op.reject(FlowFabricError.fromOperationError(body.value));
    else if (body.case === op.kind) op.resolve(body.value);
    else op.reject(FlowFabricError.local(ErrorCode.INTERNAL, LocalReason.PROTOCOL_VIOLATION, `answer ${body.case ?? "empty"} to a ${op.kind} request`));
    return true;
  }

  /** `session` ended: its unanswered operations go to the target, or wait for one. */
  sessionEnded(session: WorkerSession): void {
    if (this.#target === session) this.#target = undefined;
    for (const op of this.#pending.values()) if (op.sentOn === session) op.sentOn = undefined;
    this.#flush();
  }

  /** Rejects every pending operation and refuses new ones. */
  close(error: FlowFabricError): void {
    this.#closed = error;
    const ops = [...this.#pending.values()];
    this.#pending.clear();
    for (const op of ops) op.reject(error);
  }

  #flush(): void {
    for (const op of [...this.#pending.values()]) {
      if (op.sentOn !== undefined) continue;
      if (!OPERATIONS[op.kind].settles && op.owner.state === "lost") {
        this.#pending.delete(op.requestId);
        op.reject(FlowFabricError.local(ErrorCode.FAILED_PRECONDITION, LocalReason.LEASE_LOST, `the lease of ${op.owner.executionId} was lost before ${op.kind} was answered`));
        continue;
      }
      this.#send(op);
    }
  }

  #send(op: PendingOperation): void {
    const target = this.#target;
    if (target !== undefined && target.state === "open" && target.send(op.body, op.requestId)) op.sentOn = target;
  }
}
