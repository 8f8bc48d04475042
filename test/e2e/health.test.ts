import { Redis } from "iovalkey";
import { startGateway } from "../../gateway/src/index.js";
import type { Logger } from "../../gateway/src/logger.js";
import { storeNotReady } from "../../gateway/src/engine/store-checks.js";
import { FlowFabricClient } from "../../sdk-ts/src/index.js";
import { FAST, eventually } from "../support/gateway.js";
import { RawSession } from "../support/raw-session.js";
import { startTestServer, type TestServer } from "../support/redis.js";

/** Liveness, readiness (a frozen store fails it within its bound) and the store checks at start. */
let server: TestServer;
let admin: Redis;
beforeAll(async () => {
  server = await startTestServer();
  admin = new Redis(server.url);
});
afterAll(async () => {
  await admin.quit();
  await server.stop();
});

/** A logger that keeps what it was told. */
function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const logger: Logger & { lines: typeof lines } = {
    lines,
    debug: (msg) => { lines.push({ level: "debug", msg }); },
    info: (msg) => { lines.push({ level: "info", msg }); },
    warn: (msg) => { lines.push({ level: "warn", msg }); },
    error: (msg) => { lines.push({ level: "error", msg }); },
    child: () => logger,
  };
  return logger;
}

const get = async (url: string): Promise<{ status: number; body: Record<string, string> }> => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, string> };
};

test("/healthz is liveness; /readyz fails within its bound while the store is frozen, and when draining", async () => {
  const g = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: server.url, readyTimeoutMs: 300, logger: recordingLogger() });
  try {
    expect(await get(`${g.httpAddress}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
    expect(await get(`${g.httpAddress}/readyz`)).toEqual({ status: 200, body: { status: "ready" } });
    process.kill(server.pid, "SIGSTOP");
    try {
      const t0 = Date.now();
      const frozen = await get(`${g.httpAddress}/readyz`);
      expect(Date.now() - t0).toBeLessThan(300 + 1000);
      expect(frozen.status).toBe(503);
      expect(frozen.body["reason"]).toContain("did not answer within 300 ms");
      expect((await get(`${g.httpAddress}/healthz`)).status).toBe(200);
    } finally {
      process.kill(server.pid, "SIGCONT");
    }
    await eventually(() => get(`${g.httpAddress}/readyz`), (r) => r.status === 200);
    // Draining (a worker holds a task, so the drain waits its grace with the listeners open).
    const producer = await FlowFabricClient.connect({ address: g.grpcAddress });
    await producer.createExecution({ lane: "held", kind: "k", input: "" });
    producer.close();
    const s = new RawSession(g.grpcAddress);
    s.send({ body: { case: "hello", value: { workerId: "w", instanceId: "health", lanes: ["held"], maxConcurrentTasks: 1 } } });
    const task = (await s.next("tasks")).body.value.tasks[0]!;
    s.send({ body: { case: "ack", value: { leaseIds: [task.fence!.leaseId] } } });
    await eventually(async () => g.sessions.leaseCount, (n) => n === 1);
    const closing = g.close(2000);
    await s.next("drain");
    expect(await get(`${g.httpAddress}/readyz`)).toEqual({ status: 503, body: { status: "not_ready", reason: "draining" } });
    expect(await get(`${g.httpAddress}/healthz`)).toEqual({ status: 200, body: { status: "draining" } });
    s.kill();
    await closing;
  } finally {
    await g.close(0);
  }
}, 30_000);

test("readiness names a store without the library loaded", async () => {
  await admin.call("FUNCTION", "FLUSH");
  expect(await storeNotReady(admin, 300)).toMatch(/the flowfabric library \(version \d+\) is not loaded on 127\.0\.0\.1:\d+/);
});

test("a store that may evict keys is refused naming maxmemory-policy and FLOWFABRIC_ALLOW_EVICTION; allowed, it is a warning", async () => {
  await admin.config("SET", "maxmemory-policy", "allkeys-lru");
  try {
    await expect(startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: server.url, logger: recordingLogger() }))
      .rejects.toThrow(/maxmemory-policy "allkeys-lru".*noeviction.*FLOWFABRIC_ALLOW_EVICTION=1/s);
    const log = recordingLogger();
    const g = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: server.url, allowEviction: true, logger: log });
    await g.close(0);
    expect(log.lines.filter((l) => l.level === "warn" && l.msg.includes("allkeys-lru"))).toHaveLength(1);
  } finally {
    await admin.config("SET", "maxmemory-policy", "noeviction");
  }
});

test("a store with no persistence is accepted with a warning; with AOF there is none", async () => {
  const log = recordingLogger();
  const g = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: server.url, logger: log });
  await g.close(0);
  expect(log.lines.filter((l) => l.level === "warn" && l.msg.includes("no persistence"))).toHaveLength(1);
  await admin.config("SET", "appendonly", "yes");
  try {
    const quiet = recordingLogger();
    const g2 = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: server.url, logger: quiet });
    await g2.close(0);
    expect(quiet.lines.filter((l) => l.msg.includes("no persistence"))).toEqual([]);
  } finally {
    await admin.config("SET", "appendonly", "no");
  }
});
