import type { EngineBackend } from "../engine/backend.js";
import type { ScanResult } from "../engine/types.js";
import type { Logger } from "../logger.js";

export interface ScannerOptions {
  readonly leaseScanIntervalMs: number;
  readonly delayedScanIntervalMs: number;
  readonly timeoutScanIntervalMs: number;
  readonly suspensionScanIntervalMs: number;
  readonly scanBatch: number;
  /** 0: ended executions are kept forever (no retention scanner). */
  readonly retentionMs: number;
  readonly retentionScanIntervalMs: number;
}

type Step = (partition: number, batch: number) => Promise<ScanResult>;

/**
 * Background loops over every partition: lease expiry -> requeue, delayed promotion, deadlines
 * and attempt timeouts, suspension timeouts, retention of ended executions. Every gateway runs them; the FCALLs are
 * idempotent, so overlap is safe.
 * Each loop waits its interval after a full pass, and repeats a partition while its batch was full.
 */
export class Scanners {
  private readonly abort = new AbortController();
  private readonly running: Promise<void>[] = [];
  /** Resolves when stop() is called. */
  private readonly stopped = new Promise<void>((resolve) => this.abort.signal.addEventListener("abort", () => resolve(), { once: true }));

  constructor(private readonly engine: EngineBackend, private readonly options: ScannerOptions, private readonly log: Logger) {}

  start(): void {
    const e = this.engine;
    this.running.push(
      this.loop("lease-expiry", this.options.leaseScanIntervalMs, (p, b) => e.expireLeases(p, b)),
      this.loop("delayed-promotion", this.options.delayedScanIntervalMs, (p, b) => e.promoteDelayed(p, b)),
      this.loop("timeouts", this.options.timeoutScanIntervalMs, (p, b) => e.expireTimeouts(p, b)),
      this.loop("suspension-timeouts", this.options.suspensionScanIntervalMs, (p, b) => e.expireSuspensions(p, b)),
    );
    const { retentionMs } = this.options;
    if (retentionMs > 0) {
      this.running.push(this.loop("retention", this.options.retentionScanIntervalMs, (p, b) => e.purgeTerminal(p, b, retentionMs)));
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.running);
  }

  private async loop(name: string, intervalMs: number, step: Step): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const pass = Promise.all(
          Array.from({ length: this.engine.partitions }, async (_, p) => {
            for (let r = await step(p, this.options.scanBatch); r.more && !signal.aborted; r = await step(p, this.options.scanBatch));
          }),
        );
        pass.catch(() => undefined);
        // stop() does not wait for a pass stuck on a store that is down (its calls wait for the store).
        await Promise.race([pass, this.stopped]);
      } catch (err) {
        if (!signal.aborted) this.log.warn("scanner pass failed", { scanner: name, err: String(err) });
      }
      await sleep(intervalMs, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
