import type { WorkerSession } from "../sessions/worker-session.js";

/**
 * What one gateway knows about one queue (a namespace's lane): which partitions have eligible
 * work and the score of each partition's head, which sessions serve it, and which claims are in
 * flight. Knowledge comes from wake events (pushed by the Lua library), claim replies and the
 * safety-net scan; it is a hint, never the truth — claims are atomic in Valkey.
 */
export class QueueState {
  /** partition -> eligible score of its head (lowest = next in line). */
  readonly heads = new Map<number, number>();
  readonly sessions = new Set<WorkerSession>();
  /** partition -> lowest score woken while a claim on it was in flight (Infinity: none). */
  readonly inflight = new Map<number, number>();
  /** partition -> capability keys that found only unmatched work there (cleared by a wake). */
  readonly unmatched = new Map<number, Set<string>>();

  constructor(readonly namespace: string, readonly lane: string) {}

  wake(partition: number, score: number): void {
    const known = this.heads.get(partition);
    if (known === undefined || score < known) this.heads.set(partition, score);
    const pending = this.inflight.get(partition);
    if (pending !== undefined && score < pending) this.inflight.set(partition, score);
    this.unmatched.delete(partition);
  }

  /** Records a claim reply: the partition's new head (null: empty), merged with wakes seen meanwhile. */
  settle(partition: number, headScore: number | null, capsKey: string, unmatchedRemain: boolean, granted: number): void {
    const woken = this.inflight.get(partition) ?? Infinity;
    this.inflight.delete(partition);
    const head = Math.min(headScore ?? Infinity, woken);
    if (head === Infinity) this.heads.delete(partition);
    else this.heads.set(partition, head);
    if (unmatchedRemain && granted === 0 && woken === Infinity) {
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
    let bestIdleScore = Infinity;
    let otherBest = Infinity; // best head among the other candidates (idle or busy)
    for (const [p, score] of this.heads) {
      if (this.unmatched.get(p)?.has(capsKey)) continue;
      if (!this.inflight.has(p) && score < bestIdleScore) {
        otherBest = Math.min(otherBest, bestIdleScore);
        bestIdle = p;
        bestIdleScore = score;
      } else {
        otherBest = Math.min(otherBest, score);
      }
    }
    if (bestIdle === null) return null;
    const bound = Math.max(bestIdleScore, otherBest);
    return { partition: bestIdle, maxScore: bound === Infinity ? Infinity : bandEnd(bound, band) };
  }
}

/** Highest score in the same priority band as `score` (bands are `band` wide). */
function bandEnd(score: number, band: number): number {
  return (Math.floor(score / band) + 1) * band - 1;
}
