import type { SchedulableSession } from "./schedulable.js";

/** A queue: one namespace's lane. */
export interface QueueRef {
  readonly namespace: string;
  readonly lane: string;
}

/**
 * Admission: the one place that decides how much work a queue may be granted before a claim is
 * made — where lane concurrency caps, quotas (rate window, concurrency), budgets and fairness
 * between namespaces plug in. The scheduler asks it before every claim; a claim never takes more
 * than it allows, so nothing granted ever has to be handed back for admission reasons.
 *
 * What is already decided elsewhere: a session is only offered work of the lanes it serves, in
 * its namespace, with free slots (the scheduler); required capabilities must be a subset of the
 * session's (`ff_claim` checks each execution atomically, grouping sessions by capability set);
 * priority then FIFO inside a queue and rotation across queues (the scheduler's pass).
 *
 * To add a rule: implement {@link Admission} (or compose several with {@link allOf}) and pass it
 * to the Scheduler. A rule that counts running work also needs to hear when work ends — add that
 * callback here when the first such rule lands (the session's settle path is where it fires).
 */
export interface Admission {
  /**
   * How many of `wanted` executions of `queue` may be claimed now for `sessions` (a group with
   * one capability set and free slots); 0..wanted. Called on the hot path: keep it synchronous
   * and cheap (state kept up to date by events, not read from the store here).
   */
  limit(queue: QueueRef, sessions: readonly SchedulableSession[], wanted: number): number;
  /**
   * A claim it allowed `allowed` executions for came back with `granted` of them (fewer when the
   * queue had less, 0 when the claim failed): the unused part of the allowance is free again.
   */
  claimed?(queue: QueueRef, allowed: number, granted: number): void;
}

/** No admission rule: every free slot may be filled. */
export const ADMIT_ALL: Admission = Object.freeze({ limit: (_q: QueueRef, _s: readonly SchedulableSession[], wanted: number) => wanted });

/** The strictest of several rules. */
export function allOf(...rules: readonly Admission[]): Admission {
  return {
    limit: (queue, sessions, wanted) => rules.reduce((n, rule) => (n === 0 ? 0 : Math.max(0, Math.min(n, Math.floor(rule.limit(queue, sessions, n))))), wanted),
    claimed: (queue, allowed, granted) => { for (const rule of rules) rule.claimed?.(queue, allowed, granted); },
  };
}
