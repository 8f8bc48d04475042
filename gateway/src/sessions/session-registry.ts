import type { EngineEvent } from "../engine/types.js";
import type { WorkerSession } from "./worker-session.js";

/** Live sessions of this gateway and the leases they hold, for routing lease events. */
export class SessionRegistry {
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly byLease = new Map<string, WorkerSession>();

  add(session: WorkerSession): void { this.sessions.set(session.id, session); }
  remove(session: WorkerSession): void { this.sessions.delete(session.id); }
  get size(): number { return this.sessions.size; }
  all(): IterableIterator<WorkerSession> { return this.sessions.values(); }

  holdLease(leaseId: string, session: WorkerSession): void { this.byLease.set(leaseId, session); }
  dropLease(leaseId: string, session: WorkerSession): void {
    if (this.byLease.get(leaseId) === session) this.byLease.delete(leaseId);
  }
  get leaseCount(): number { return this.byLease.size; }

  /** Routes cancel / lost events to the session holding the lease, if it is on this gateway. */
  onEvent(event: EngineEvent): void {
    if (event.type === "wake" || event.type === "gap") return;
    const session = this.byLease.get(event.leaseId);
    if (!session) return;
    if (event.type === "cancel") session.cancelRequested(event.leaseId, event.executionId, event.reason, event.by);
    else session.leaseLost(event.leaseId, event.executionId, event.reason);
  }
}
