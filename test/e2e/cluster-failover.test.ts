import { idempotencyPartition, keySlot, PartitionKeys } from "../../gateway/src/engine/keys.js";
import { startGateway, type Gateway } from "../../gateway/src/index.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask } from "../../sdk-ts/src/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { awaitAll, eventually, FAST } from "../support/gateway.js";

/**
 * A primary of a 3-primary + 3-replica Cluster is killed while two gateways run work: once its
 * replica is promoted, pushes (wake events: the safety scan is off) and a live frame tail on the
 * failed shard resume within ~1-2 s, every execution completes once with its own result, and no
 * task is left held.
 */
const PARTITIONS = 8;
const NAMESPACE = "default";
const LANE = "failover";
let cluster: TestCluster;
const gateways: Gateway[] = [];
const clients: FlowFabricClient[] = [];
const workers: FlowFabricWorker[] = [];

beforeAll(async () => {
  cluster = await startCluster({ replicas: 1, nodeTimeoutMs: 1000 });
  for (let i = 0; i < 2; i++) {
    const g = await startGateway({
      ...FAST, partitions: PARTITIONS, leaseTtlMs: 15_000, heartbeatIntervalMs: 500, safetyScanIntervalMs: 600_000,
      grpcPort: 0, httpPort: 0, valkeyUrl: cluster.url,
    });
    gateways.push(g);
    clients.push(await FlowFabricClient.connect({ address: g.grpcAddress }));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  for (const c of clients) c.close();
  await Promise.all(gateways.map((g) => g.close(0)));
  await cluster?.stop();
});

/** An idempotency key that pins an execution to a partition whose slot is in [from, to]. */
let pins = 0;
function keyInSlots(from: number, to: number): string {
  for (;;) {
    const key = `pin-${++pins}`;
    const slot = keySlot(new PartitionKeys(idempotencyPartition(NAMESPACE, key, PARTITIONS)).prefix);
    if (slot >= from && slot <= to) return key;
  }
}

test("a primary killed mid-run: pushes and tails on its shard resume within ~2 s of the promotion; every execution completes once; none held", async () => {
  const victim = cluster.ports[2]!; // slots 10923..16383 (not a seed of the gateways' URL)
  const runs = new Map<string, number>();
  const started = new Map<string, number>();
  let tailing = true;
  for (const [i, g] of gateways.entries()) {
    const worker = await FlowFabricWorker.connect({ address: g.grpcAddress, workerId: `fo-${i}`, lanes: [LANE], maxConcurrentTasks: 20 });
    workers.push(worker);
    void worker.run(async (task: ClaimedTask) => {
      runs.set(task.executionId, (runs.get(task.executionId) ?? 0) + 1);
      started.set(task.inputText(), Date.now());
      if (task.inputText() === "tail") {
        for (let n = 0; tailing; n++) {
          await task.appendFrame("tick", String(n));
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      return `r:${task.inputText()}`;
    });
  }

  // A live tail, through the other gateway, of an execution on the victim's shard.
  const tailed = await clients[0]!.createExecution({ lane: LANE, input: "tail", idempotencyKey: keyInSlots(10923, 16383) });
  const frameTimes: number[] = [];
  const tail = (async () => {
    for await (const frame of clients[1]!.tailStream(tailed.executionId, 0)) {
      if (frame.frameType === "tick") frameTimes.push(Date.now());
    }
  })();
  await eventually(async () => frameTimes.length, (n) => n >= 5);

  // A producer creating through both gateways all along.
  const ids: string[] = [];
  const inputs = new Map<string, string>();
  let producing = true;
  const producer = (async () => {
    for (let batch = 0; producing; batch++) {
      const made = await Promise.all(Array.from({ length: 20 }, (_, i) => clients[batch % 2]!.createExecution({ lane: LANE, input: `${batch}-${i}` })));
      made.forEach((m, i) => { ids.push(m.executionId); inputs.set(m.executionId, `${batch}-${i}`); });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await eventually(async () => ids.length, (n) => n >= 100);

  await cluster.kill(victim);
  const promotedAt = await cluster.promoted(victim, cluster.ports[0]!).then(() => Date.now());

  // Pushes: an execution created now on the failed shard is pushed by a wake event.
  const probe = await clients[0]!.createExecution({ lane: LANE, input: "probe", idempotencyKey: keyInSlots(10923, 16383) });
  await eventually(async () => started.get("probe"), (t) => t !== undefined, 10_000);
  const pushDelayMs = started.get("probe")! - promotedAt;
  // Tails: frames appended on the promoted primary reach the consumer again.
  await eventually(async () => frameTimes.filter((t) => t > promotedAt).length, (n) => n >= 3, 10_000);
  const tailDelayMs = frameTimes.find((t) => t > promotedAt)! - promotedAt;
  console.log(`failover: push ${pushDelayMs} ms, tail ${tailDelayMs} ms after the promotion`);
  expect(pushDelayMs).toBeLessThan(2500);
  expect(tailDelayMs).toBeLessThan(2500);

  producing = false;
  await producer;
  tailing = false;
  await tail;
  const all = [...ids, probe.executionId, tailed.executionId];
  inputs.set(probe.executionId, "probe");
  inputs.set(tailed.executionId, "tail");
  const results = await awaitAll((id) => clients[0]!.getResult(id), all, ["completed", "failed", "cancelled"], 60_000);
  for (const id of all) {
    expect(results.get(id)!.state).toBe("completed");
    expect(Buffer.from(results.get(id)!.result!).toString()).toBe(`r:${inputs.get(id)}`);
  }
  expect(new Set(all).size).toBe(all.length);
  expect([...runs.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  await eventually(async () => gateways.map((g) => g.sessions.leaseCount), (held) => held.every((n) => n === 0), 10_000);
}, 110_000);
