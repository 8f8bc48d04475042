import { startGateway, type Gateway } from "../../gateway/src/index.js";
import type { GatewayOptions } from "../../gateway/src/config.js";
import { createLogger } from "../../gateway/src/logger.js";
import { startTestServer, type TestServer } from "./redis.js";

/** Fast timings for tests: short leases and scan intervals so faults resolve in well under a second or two. */
export const FAST: Partial<GatewayOptions> = {
  partitions: 4,
  leaseTtlMs: 2000,
  heartbeatIntervalMs: 500,
  keepaliveIntervalMs: 1000,
  leaseScanIntervalMs: 100,
  delayedScanIntervalMs: 20,
  timeoutScanIntervalMs: 50,
  suspensionScanIntervalMs: 50,
  safetyScanIntervalMs: 500,
  drainGraceMs: 1000,
};

export interface Harness {
  readonly server: TestServer;
  readonly gateway: Gateway;
  /** Starts another gateway on the same server. */
  startGateway(overrides?: Partial<GatewayOptions>): Promise<Gateway>;
  stop(): Promise<void>;
}

/** A real redis-server plus one gateway on free loopback ports. */
export async function startHarness(overrides: Partial<GatewayOptions> = {}): Promise<Harness> {
  const server = await startTestServer();
  const gateways: Gateway[] = [];
  const start = async (o: Partial<GatewayOptions> = {}): Promise<Gateway> => {
    // Errors only: every test server runs without persistence, which each gateway would warn about.
    const g = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, logger: createLogger("error"), ...overrides, ...o, valkeyUrl: server.url });
    gateways.push(g);
    return g;
  };
  const gateway = await start();
  return {
    server,
    gateway,
    startGateway: start,
    async stop() {
      await Promise.all(gateways.map((g) => g.close(0)));
      await server.stop();
    },
  };
}

/** Resolves when `predicate` holds, checking on every `intervalMs`; rejects after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T>, predicate: (value: T) => boolean, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Waits until every execution reaches one of `states`, polling the remaining ones in chunks (so
 * thousands of waits do not flood the gateway under test). Resolves with the final results by id.
 */
export async function awaitAll<R extends { state: string }>(
  get: (id: string) => Promise<R>,
  ids: readonly string[],
  states: readonly string[] = ["completed"],
  timeoutMs = 20_000,
): Promise<Map<string, R>> {
  const done = new Map<string, R>();
  let pending = [...ids];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += 100) {
      const chunk = pending.slice(i, i + 100);
      const results = await Promise.all(chunk.map((id) => get(id)));
      results.forEach((r, k) => (states.includes(r.state) ? done.set(chunk[k]!, r) : still.push(chunk[k]!)));
    }
    pending = still;
    if (pending.length === 0) return done;
    if (Date.now() > deadline) {
      const sample = await get(pending[0]!);
      throw new Error(`${pending.length} of ${ids.length} executions not in ${states.join("/")} within ${timeoutMs} ms; e.g. ${pending[0]}: ${JSON.stringify(sample)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
