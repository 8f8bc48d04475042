import type { QueuePosition } from "../engine/types.js";
import type { SchedulableSession } from "./schedulable.js";

/**
 * What one gateway knows about one queue (a namespace's lane): which partitions have eligible
 * work and the score of each partition's head, which sessions serve it, and which claims are in
 * flight. Knowledge comes from wake events (pushed by the Lua library), claim replies and the
 * safety-net scan; it is a hint, never the truth — claims are atomic in Valkey.
 */
export class QueueState {
  /** partition -> position of its head (lowest = next in line). */
  readonly heads = new Map<number, QueuePosition>();
  readonly sessions = new Set<SchedulableSession>();
  /** partition -> lowest position woken while a claim on it was in flight (null: none). */
  readonly inflight = new Map<number, QueuePosition | null>();
  /** partition -> capability keys that found only unmatched work there (cleared by a wake). */
  readonly unmatched = new Map<number, Set<string>>();
  /** partition -> sequence number (the scheduler's) of its latest wake. */
  readonly wokenAt = new Map<number, number>();

  constructor(readonly namespace: string, readonly lane: string) {}

  /** New eligible work at `position`; `seq` orders wakes against safety scans (see {@link scanned}). */
  wake(partition: number, position: QueuePosition, seq = 0): void {
    this.wokenAt.set(partition, seq);
    this.heads.set(partition, earliest(this.heads.get(partition), position)!);
    if (this.inflight.has(partition)) this.inflight.set(partition, earliest(this.inflight.get(partition) ?? undefined, position)!);
    this.unmatched.delete(partition);
  }

  /**
   * Records a safety scan's view of a partition's head (undefined: no eligible work), read after
   * wake number `seq`. A wake that arrived after the read is newer and wins; a partition with a
   * claim in flight is left to the claim's reply.
   */
  scanned(partition: number, head: QueuePosition | undefined, seq: number): void {
    if (this.inflight.has(partition) || (this.wokenAt.get(partition) ?? -1) > seq) return;
    if (head === undefined) this.heads.delete(partition);
    else this.heads.set(partition, head);
  }

  /** Records a claim reply: the partition's new head (null: empty), merged with wakes seen meanwhile. */
  settle(partition: number, head: QueuePosition | null, capsKey: string, unmatchedRemain: boolean, granted: number): void {
    const woken = this.inflight.get(partition) ?? null;
    this.inflight.delete(partition);
    const next = earliest(head ?? undefined, woken ?? undefined);
    if (next === undefined) this.heads.delete(partition);
    else this.heads.set(partition, next);
    if (unmatchedRemain && granted === 0 && woken === null) {
      let set = this.unmatched.get(partition);
      if (!set) this.unmatched.set(partition, (set = new Set()));
      set.add(capsKey);
    }
  }

  /**
   * The partition to claim from next for a capability key: the lowest head not already being
   * claimed and not known to hold only unmatched work; plus an upper score bound so a batch never
   * takes lower-priority work while another partition has higher-priority work waiting.
   */
  pick(capsKey: string, band: number): { partition: number; maxScore: number } | null {
    let bestIdle: number | null = null;
    let bestIdlePos: QueuePosition | undefined;
    let otherBest = Infinity; // best head score among the other candidates (idle or busy)
    for (const [p, pos] of this.heads) {
      if (this.unmatched.get(p)?.has(capsKey)) continue;
      if (!this.inflight.has(p) && (bestIdlePos === undefined || before(pos, bestIdlePos))) {
        if (bestIdlePos) otherBest = Math.min(otherBest, bestIdlePos.score);
        bestIdle = p;
        bestIdlePos = pos;
      } else {
        otherBest = Math.min(otherBest, pos.score);
      }
    }
    if (bestIdle === null || !bestIdlePos) return null;
    const bound = Math.max(bestIdlePos.score, otherBest);
    return { partition: bestIdle, maxScore: bound === Infinity ? Infinity : bandEnd(bound, band) };
  }
}

/** True when a comes before b in eligible order (score, then member). */
export function before(a: QueuePosition, b: QueuePosition): boolean {
  return a.score < b.score || (a.score === b.score && a.member < b.member);
}

function earliest(a: QueuePosition | undefined, b: QueuePosition | undefined): QueuePosition | undefined {
  if (!a) return b;
  if (!b) return a;
  return before(b, a) ? b : a;
}

/** Highest score in the same priority band as `score` (bands are `band` wide). */
function bandEnd(score: number, band: number): number {
  return (Math.floor(score / band) + 1) * band - 1;
}
