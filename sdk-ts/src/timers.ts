/**
 * Timers that hang off an AbortSignal: aborting the signal clears them, so one
 * `AbortController.abort()` stops everything a component scheduled.
 */

/** Waits `ms` milliseconds; resolves `false` early (never rejects) when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Calls `tick` every `ms` milliseconds until `signal` aborts. */
export function every(ms: number, signal: AbortSignal, tick: () => void): void {
  if (signal.aborted) return;
  const timer = setInterval(tick, ms);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

/** An AbortController that also aborts when `parent` aborts. */
export function childController(parent: AbortSignal): AbortController {
  const child = new AbortController();
  if (parent.aborted) child.abort(parent.reason);
  else {
    const onAbort = (): void => child.abort(parent.reason);
    parent.addEventListener("abort", onAbort, { once: true });
    child.signal.addEventListener("abort", () => parent.removeEventListener("abort", onAbort), { once: true });
  }
  return child;
}
