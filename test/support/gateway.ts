import { startGateway, type Gateway } from "../../gateway/src/index.js";
import type { GatewayOptions } from "../../gateway/src/config.js";
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
    const g = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, ...overrides, ...o, valkeyUrl: server.url });
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
