/**
 * The engine on a 3-master Redis Cluster: library on every master, FCALL routing by the partition
 * tag, renew grouped per partition, and sharded pub/sub subscribed on each channel's slot owner.
 */
import type { Cluster } from "iovalkey";
import { ValkeyBackend } from "../../gateway/src/engine/valkey-backend.js";
import type { EngineEvent } from "../../gateway/src/engine/types.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { spec } from "../support/engine.js";

let cluster: TestCluster;
let backend: ValkeyBackend;

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  cluster = await startCluster();
  backend = await ValkeyBackend.connect({ url: cluster.url, partitions: 12 });
}, 30_000);

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
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
