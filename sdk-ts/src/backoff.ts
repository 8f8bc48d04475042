/** Shape of the reconnect backoff (protocol rule 13). */
export interface BackoffPolicy {
  /** Cap of the first delay, in milliseconds. */
  readonly initialDelayMs: number;
  /** Largest cap, in milliseconds. */
  readonly maxDelayMs: number;
}

/**
 * Full-jitter exponential backoff: the delay before retry `attempt` (0-based) is uniform in
 * `[0, min(maxDelayMs, initialDelayMs * 2^attempt)]`, in whole milliseconds.
 *
 * @param random - source of uniform numbers in [0, 1); injectable for tests.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52);
  const capMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.floor(random() * (capMs + 1));
}

/**
 * Backoff between retries of an operation that went unanswered (a settle, a frame append, a
 * create): full jitter, 100 ms doubling to 2 s — well inside a lease TTL.
 */
export const RETRY_BACKOFF: BackoffPolicy = Object.freeze({ initialDelayMs: 100, maxDelayMs: 2000 });
