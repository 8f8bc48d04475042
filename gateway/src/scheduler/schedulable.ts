import type { Grant } from "../engine/types.js";

/**
 * What the scheduler needs from a worker session — and all it may touch. `WorkerSession`
 * implements it; unit tests use small fakes. Identity and routing facts are fixed once the session
 * is active; slots change as tasks come and go.
 */
export interface SchedulableSession {
  /** Session id (recorded on the leases granted to it). */
  readonly id: string;
  /** `Hello.worker_id`. */
  readonly workerId: string;
  /** `Hello.instance_id`. */
  readonly instanceId: string;
  /** The namespace it serves. */
  readonly namespace: string;
  /** The lanes it serves (each is a queue with `namespace`). */
  readonly lanes: readonly string[];
  /** Sorted capabilities it offers. */
  readonly capabilities: readonly string[];
  /** `capabilities` as one key: sessions with equal keys can share one claim. */
  readonly capabilityKey: string;
  /** Slots the scheduler may fill now (capacity - running - reserved; 0 unless active). */
  readonly freeSlots: number;
  /** Holds `n` slots for a claim in flight. */
  reserve(n: number): void;
  /** Gives back `n` reserved slots (the claim answered or failed). */
  unreserve(n: number): void;
  /** Hands granted work to the worker; false when it can no longer take it (the caller releases it). */
  push(grants: readonly Grant[]): boolean;
}

/** What a session tells the scheduler. */
export interface SessionScheduler {
  /** The session is active: serve its lanes. */
  addSession(session: SchedulableSession): void;
  /** The session is draining or gone: no more pushes. */
  removeSession(session: SchedulableSession): void;
  /** Some session has free slots again (coalesced into one pass). */
  slotsFreed(): void;
}
