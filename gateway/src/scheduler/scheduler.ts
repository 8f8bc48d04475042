import type { EngineBackend } from "../engine/backend.js";
import { SCORE_BAND, queueKey } from "../engine/keys.js";
import type { ClaimantIdentity, EngineEvent, Grant } from "../engine/types.js";
import type { Logger } from "../logger.js";
import type { SchedulableSession, SessionScheduler } from "./schedulable.js";
import { ADMIT_ALL, type Admission } from "./admission.js";
import { QueueState } from "./queue-state.js";

export interface SchedulerOptions {
  readonly claimBatchMax: number;
  readonly leaseTtlMs: number;
  readonly safetyScanIntervalMs: number;
}

/**
 * Pushes work into free session slots. Push, not poll: wake events from the Lua library (and
 * freed slots) trigger a scheduling pass; a slow safety-net scan of lane heads backs them up.
 *
 * A pass walks queues in rotating order (fair across lanes and namespaces). Within a queue,
 * sessions with the same capabilities form a group whose free slots are claimed together in one
 * FCALL from the partition with the best head, bounded so a batch never takes lower-priority
 * work while another partition holds higher-priority work. Slots are reserved while the claim is
 * in flight, so a session is never granted more than it has room for. Before each claim,
 * {@link Admission} says how much the queue may take (caps, quotas, fairness plug in there).
 * Sessions are seen only through {@link SchedulableSession}.
 */
export class Scheduler implements SessionScheduler {
  private readonly queues = new Map<string, QueueState>();
  private rotation = 0;
  /** Wakes received so far: a safety scan's reads never override a newer wake. */
  private wakes = 0;
  private scheduled = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private safetyTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  /** `admission` decides how much each queue may be granted before every claim (see admission.ts). */
  constructor(
    private readonly engine: EngineBackend,
    private readonly options: SchedulerOptions,
    private readonly log: Logger,
    private readonly admission: Admission = ADMIT_ALL,
  ) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.safetyScan().catch((err: unknown) => this.log.warn("safety scan failed", { err: String(err) }))
        .finally(() => { if (!this.stopped) this.safetyTimer = setTimeout(tick, this.options.safetyScanIntervalMs); });
    };
    this.safetyTimer = setTimeout(tick, this.options.safetyScanIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.safetyTimer);
    clearTimeout(this.retryTimer);
  }

  addSession(session: SchedulableSession): void {
    const fresh: QueueState[] = [];
    for (const lane of session.lanes) {
      const key = queueKey(session.namespace, lane);
      let q = this.queues.get(key);
      if (!q) {
        this.queues.set(key, (q = new QueueState(session.namespace, lane)));
        fresh.push(q);
      }
      q.sessions.add(session);
    }
    if (fresh.length > 0) {
      this.safetyScan().catch((err: unknown) => this.log.warn("lane head scan failed", { err: String(err) }));
    }
    this.kick();
  }

  removeSession(session: SchedulableSession): void {
    for (const lane of session.lanes) {
      const key = queueKey(session.namespace, lane);
      const q = this.queues.get(key);
      if (!q) continue;
      q.sessions.delete(session);
      if (q.sessions.size === 0 && q.inflight.size === 0) this.queues.delete(key);
    }
  }

  /** A session has free slots again. */
  slotsFreed(): void {
    this.kick();
  }

  onEvent(event: EngineEvent): void {
    if (event.type === "gap") {
      this.safetyScan().catch((err: unknown) => this.log.warn("lane head scan after a subscription gap failed", { err: String(err) }));
      return;
    }
    if (event.type !== "wake") return;
    const q = this.queues.get(queueKey(event.namespace, event.lane));
    if (!q) return;
    q.wake(event.partition, event.position, ++this.wakes);
    this.kick();
  }

  /**
   * Coalesces triggers into one pass at the end of this event-loop turn (setImmediate): every
   * slot freed by the messages of one socket read is claimed together, in one FCALL per partition.
   * (A microtask ran a pass per message: claims of one at a time, 2-3x more claim FCALLs.)
   */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pass();
    });
  }

  private pass(): void {
    if (this.stopped) return;
    const queues = [...this.queues.values()];
    if (queues.length === 0) return;
    this.rotation = (this.rotation + 1) % queues.length;
    for (let i = 0; i < queues.length; i++) {
      const q = queues[(this.rotation + i) % queues.length]!;
      if (q.heads.size === 0) continue;
      for (const group of groupsWithFreeSlots(q)) this.claimForGroup(q, group);
    }
  }

  private claimForGroup(q: QueueState, group: SchedulableSession[]): void {
    const capsKey = group[0]!.capabilityKey;
    for (;;) {
      const free = group.reduce((n, s) => n + s.freeSlots, 0);
      if (free === 0) return;
      const target = q.pick(capsKey, SCORE_BAND);
      if (!target) return;
      const wanted = Math.min(free, this.options.claimBatchMax);
      const allowed = Math.min(wanted, Math.floor(this.admission.limit(q, group, wanted)));
      if (!(allowed > 0)) return; // admission says not now (NaN included)
      const reservations = reserve(group, allowed);
      const count = [...reservations.values()].reduce((n, slots) => n + slots, 0);
      q.inflight.set(target.partition, null);
      // Grants are recorded under the session each one is pushed to (distribute's order).
      const shares = [...reservations].map(([s, slots]) => ({ claimant: claimantOf(s), slots }));
      this.engine
        .claim({
          partition: target.partition,
          namespace: q.namespace,
          lane: q.lane,
          count,
          capabilities: group[0]!.capabilities,
          maxScore: target.maxScore,
          claimant: shares[0]!.claimant,
          ...(shares.length > 1 ? { shares } : {}),
          leaseTtlMs: this.options.leaseTtlMs,
        })
        .then((out) => {
          this.admission.claimed?.(q, count, out.grants.length);
          q.settle(target.partition, out.head, capsKey, out.unmatchedRemain, out.grants.length);
          this.distribute(out.grants, reservations);
          this.kick();
        })
        .catch((err: unknown) => {
          this.admission.claimed?.(q, count, 0);
          q.inflight.delete(target.partition);
          for (const [s, n] of reservations) s.unreserve(n);
          this.log.warn("claim failed", { err: String(err), partition: target.partition, lane: q.lane });
          this.retryLater();
        });
    }
  }

  /** Hands grants to the sessions that reserved slots; anything undeliverable goes back to the queue. */
  private distribute(grants: Grant[], reservations: Map<SchedulableSession, number>): void {
    let i = 0;
    for (const [session, reserved] of reservations) {
      const share = grants.slice(i, i + reserved);
      i += share.length;
      session.unreserve(reserved);
      if (share.length > 0 && !session.push(share)) this.releaseAll(share);
    }
    if (i < grants.length) this.releaseAll(grants.slice(i));
  }

  private releaseAll(grants: Grant[]): void {
    for (const g of grants) {
      this.engine.release(g.fence).catch((err: unknown) => this.log.warn("release failed", { err: String(err), executionId: g.fence.executionId }));
    }
  }

  private retryLater(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.kick(); }, 200);
  }

  /** Re-reads every partition's queue heads: the safety net behind wake events. */
  async safetyScan(): Promise<void> {
    const seq = this.wakes;
    const scans = await Promise.all(
      Array.from({ length: this.engine.partitions }, (_, p) => this.engine.laneHeads(p).then((heads) => ({ p, heads }))),
    );
    for (const q of this.queues.values()) {
      const key = queueKey(q.namespace, q.lane);
      for (const { p, heads } of scans) q.scanned(p, heads.get(key), seq);
      q.unmatched.clear();
    }
    this.kick();
  }
}

function claimantOf(s: SchedulableSession): ClaimantIdentity {
  return { sessionId: s.id, workerId: s.workerId, workerInstanceId: s.instanceId };
}

/** Sessions of a queue with free slots, grouped by capability key. */
function groupsWithFreeSlots(q: QueueState): SchedulableSession[][] {
  const groups = new Map<string, SchedulableSession[]>();
  for (const s of q.sessions) {
    if (s.freeSlots <= 0) continue;
    const g = groups.get(s.capabilityKey);
    if (g) g.push(s);
    else groups.set(s.capabilityKey, [s]);
  }
  return [...groups.values()];
}

/** Reserves up to `count` slots across sessions, most free first. */
function reserve(group: SchedulableSession[], count: number): Map<SchedulableSession, number> {
  const out = new Map<SchedulableSession, number>();
  let left = count;
  const ordered = [...group].sort((a, b) => b.freeSlots - a.freeSlots);
  for (const s of ordered) {
    if (left === 0) break;
    const n = Math.min(s.freeSlots, left);
    if (n <= 0) continue;
    s.reserve(n);
    out.set(s, n);
    left -= n;
  }
  return out;
}
