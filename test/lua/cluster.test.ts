/**
 * The engine on a 3-master Redis Cluster: library on every master, FCALL routing by the partition
 * tag, renew grouped per partition, and sharded pub/sub subscribed on each channel's slot owner.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis, type Cluster } from "iovalkey";
import { findServerBinary } from "../../gateway/src/embedded/server-binary.js";
import { freePort } from "../../gateway/src/embedded/server-process.js";
import { ValkeyBackend } from "../../gateway/src/engine/valkey-backend.js";
import type { EngineEvent } from "../../gateway/src/engine/types.js";
import { spec } from "../support/engine.js";

const binary = findServerBinary();
let dir = "";
const children: ChildProcess[] = [];
const ports: number[] = [];
let backend: ValkeyBackend;

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ff-cluster-"));
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    ports.push(port);
    children.push(spawn(binary!, [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
      "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "5000",
      "--loglevel", "warning",
    ], { stdio: "ignore" }));
  }
  const admins = ports.map((port) => new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 50 }));
  try {
    await Promise.all(admins.map((a) => waitFor(async () => { await a.connect().catch(() => undefined); return (await a.ping()) === "PONG"; }, "node start")));
    const ranges = [[0, 5460], [5461, 10922], [10923, 16383]];
    await Promise.all(admins.map((a, i) => a.call("CLUSTER", "ADDSLOTSRANGE", String(ranges[i]![0]), String(ranges[i]![1]))));
    for (const port of ports.slice(1)) await admins[0]!.call("CLUSTER", "MEET", "127.0.0.1", String(port));
    await Promise.all(admins.map((a) => waitFor(async () => {
      const info = String(await a.call("CLUSTER", "INFO"));
      return info.includes("cluster_state:ok") && info.includes("cluster_known_nodes:3");
    }, "cluster ok")));
  } finally {
    await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
  }
  backend = await ValkeyBackend.connect({ url: `redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`, partitions: 12 });
}, 30_000);

afterAll(async () => {
  await backend?.close();
  await Promise.all(children.map((c) => new Promise<void>((res) => {
    if (c.exitCode !== null) return res();
    c.once("exit", () => res());
    c.kill("SIGTERM");
  })));
  rmSync(dir, { recursive: true, force: true });
});

describe("Cluster mode", () => {
  test("the library is loaded on every master", async () => {
    const masters = (backend.connection as Cluster).nodes("master");
    expect(masters).toHaveLength(3);
    for (const m of masters) expect(Number(await m.call("FCALL_RO", "ff_version", 0))).toBe(backend.libraryVersion);
  });

  test("create, claim, renew, complete across partitions; events from every partition", async () => {
    const events: EngineEvent[] = [];
    await backend.subscribe((e) => events.push(e));
    const s = spec({ input: Buffer.from([0, 0xff, 0x80, 0xc3]) });
    const created = await backend.create(Array.from({ length: 240 }, () => s));
    expect(new Set(created.map((c) => c.executionId)).size).toBe(240);
    const grants = [];
    for (let p = 0; p < 12; p++) {
      const out = await backend.claim({
        partition: p, namespace: s.namespace, lane: s.lane, count: 100, capabilities: [], maxScore: Infinity,
        claimant: { sessionId: "s", workerId: "w", workerInstanceId: "i" }, leaseTtlMs: 30_000,
      });
      expect(out.head).toBeNull();
      grants.push(...out.grants);
    }
    expect(grants).toHaveLength(240);
    expect(Buffer.compare(Buffer.from(grants[0]!.input), Buffer.from([0, 0xff, 0x80, 0xc3]))).toBe(0);
    const renewed = await backend.renew(grants.map((g) => g.fence), "s2", 30_000);
    expect(renewed.every((r) => r.renewed)).toBe(true);
    const done = await Promise.all(grants.map((g) => backend.complete(g.fence, Buffer.from([1]))));
    expect(done.every((d) => !d.reconciled)).toBe(true);
    await waitFor(async () => new Set(events.filter((e) => e.type === "wake").map((e) => (e as { partition: number }).partition)).size === 12, "wakes from all partitions");
    expect((await backend.getResult(grants[5]!.fence.executionId)).state).toBe("completed");
  });
});
