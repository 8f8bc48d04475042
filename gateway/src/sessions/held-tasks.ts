import type { LeaseFence } from "../engine/types.js";

/** A pushed (or re-adopted) task held by a session: its lease and where it stands. */
export interface HeldTask {
  readonly fence: LeaseFence;
  /** The worker confirmed it has the task; unacknowledged tasks are requeued when the session dies. */
  acked: boolean;
  /**
   * A complete/fail/cancel/delay for it was received: its slot is already free (the handler is
   * done), but the lease is still held and renewed until one of them is answered for good.
   */
  settling: boolean;
  /**
   * The trace context pushed with the task (the dispatch span's when tracing): the parent of the
   * task's operations that carry no `traceparent` of their own. Kept once per lease.
   */
  readonly traceparent: string;
  readonly tracestate: string;
  /** Terminal operations for it now waiting on the store. */
  settlesInFlight: number;
  /**
   * When its last terminal operation failed without a definitive answer (UNAVAILABLE: the store
   * refused or was unreachable); undefined while one is in flight or none failed. The worker is
   * expected to retry; if it stays silent for a lease TTL, heartbeats stop renewing the lease, so
   * it lapses and the task is requeued — never held and renewed forever (see {@link renewableFences}).
   */
  settleFailedAtMs: number | undefined;
}

/**
 * A session's held tasks, by lease id, and how many of them occupy a slot (`busy`: held and not
 * settling). Pure bookkeeping: the session does the side effects (lease registry, scheduler).
 */
export class HeldTasks {
  readonly #tasks = new Map<string, HeldTask>();
  #busy = 0;

  /** Held tasks. */
  get size(): number { return this.#tasks.size; }
  /** Held tasks that occupy a slot (not settling). */
  get busy(): number { return this.#busy; }

  get(leaseId: string): HeldTask | undefined { return this.#tasks.get(leaseId); }
  has(leaseId: string): boolean { return this.#tasks.has(leaseId); }
  values(): IterableIterator<HeldTask> { return this.#tasks.values(); }

  /** Holds a lease; `trace` is the context pushed with it (none for an adopted lease). */
  hold(fence: LeaseFence, acked: boolean, trace: { readonly traceparent: string; readonly tracestate: string } | undefined): void {
    const previous = this.#tasks.get(fence.leaseId);
    if (previous !== undefined && !previous.settling) this.#busy--;
    this.#tasks.set(fence.leaseId, {
      fence, acked, settling: false, settlesInFlight: 0, settleFailedAtMs: undefined,
      traceparent: trace?.traceparent ?? "", tracestate: trace?.tracestate ?? "",
    });
    this.#busy++;
  }

  /** The worker acknowledged these leases. */
  ack(leaseIds: readonly string[]): void {
    for (const leaseId of leaseIds) {
      const held = this.#tasks.get(leaseId);
      if (held) held.acked = true;
    }
  }

  /**
   * A terminal operation for the task arrived. Returns the held task (undefined when not held)
   * and whether this freed its slot (the first terminal operation for it).
   */
  markSettling(leaseId: string): { held: HeldTask; freed: boolean } | undefined {
    const held = this.#tasks.get(leaseId);
    if (!held) return undefined;
    held.settlesInFlight++;
    held.settleFailedAtMs = undefined;
    if (held.settling) return { held, freed: false };
    held.settling = true;
    held.acked = true; // a worker settling a task certainly has it
    this.#busy--;
    return { held, freed: true };
  }

  /** A terminal operation for `held` failed without a definitive answer, at `nowMs`. */
  settleFailed(held: HeldTask, nowMs: number): void {
    if (--held.settlesInFlight === 0) held.settleFailedAtMs = nowMs;
  }

  /** True while some terminal operation waits on the store. */
  settleInFlight(): boolean {
    for (const t of this.#tasks.values()) if (t.settlesInFlight > 0) return true;
    return false;
  }

  /** Fences heartbeats renew now: all but those whose failed terminal operation went unretried for `leaseTtlMs`. */
  renewableFences(nowMs: number, leaseTtlMs: number): LeaseFence[] {
    const out: LeaseFence[] = [];
    for (const t of this.#tasks.values()) if (t.settleFailedAtMs === undefined || nowMs - t.settleFailedAtMs < leaseTtlMs) out.push(t.fence);
    return out;
  }

  /** Forgets a task; returns it when it was held. */
  drop(leaseId: string): HeldTask | undefined {
    const held = this.#tasks.get(leaseId);
    if (!held) return undefined;
    this.#tasks.delete(leaseId);
    if (!held.settling) this.#busy--;
    return held;
  }

  /** Forgets every task; returns them. */
  clear(): HeldTask[] {
    const all = [...this.#tasks.values()];
    this.#tasks.clear();
    this.#busy = 0;
    return all;
  }
}
