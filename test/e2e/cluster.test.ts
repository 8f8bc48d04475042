import { startGateway, type Gateway } from "../../gateway/src/index.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask, type StreamFrame } from "../../sdk-ts/src/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { awaitAll, eventually, FAST } from "../support/gateway.js";

/**
 * The whole stack on a 3-master Cluster: two gateways, workers on both, producers and stream
 * consumers on either — every grant once, frames followed across gateways.
 */
let cluster: TestCluster;
const gateways: Gateway[] = [];
const clients: FlowFabricClient[] = [];
const workers: FlowFabricWorker[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  for (let i = 0; i < 2; i++) {
    const g = await startGateway({ ...FAST, partitions: 6, grpcPort: 0, httpPort: 0, valkeyUrl: cluster.url });
    gateways.push(g);
    clients.push(await FlowFabricClient.connect({ address: g.grpcAddress }));
  }
}, 30_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  for (const c of clients) c.close();
  await Promise.all(gateways.map((g) => g.close(0)));
  await cluster?.stop();
});

async function startWorker(gateway: Gateway, lane: string, handler: (task: ClaimedTask) => Promise<string>): Promise<void> {
  const worker = await FlowFabricWorker.connect({ address: gateway.grpcAddress, workerId: `cw${workers.length}`, lanes: [lane], maxConcurrentTasks: 8 });
  workers.push(worker);
  void worker.run(handler);
}

async function collect(tail: AsyncIterable<StreamFrame>): Promise<string[]> {
  const out: string[] = [];
  for await (const f of tail) out.push(Buffer.from(f.payload).toString());
  return out;
}

test("two gateways, workers on both: every execution runs once, results and frames readable through either gateway", async () => {
  const runs = new Map<string, number>();
  const byGateway = [0, 0];
  for (const [i, g] of gateways.entries()) {
    await startWorker(g, "cluster-bulk", async (task) => {
      runs.set(task.executionId, (runs.get(task.executionId) ?? 0) + 1);
      byGateway[i]!++;
      await task.appendFrame("log", `start ${task.inputText()}`);
      await task.appendFrame("log", `end ${task.inputText()}`);
      return `done ${task.inputText()}`;
    });
  }
  const created = await clients[0]!.createExecutions(Array.from({ length: 300 }, (_, i) => ({ lane: "cluster-bulk", input: `${i}` })));
  const ids = created.map((c) => c.executionId);
  const results = await awaitAll((id) => clients[1]!.getResult(id), ids);
  ids.forEach((id, i) => expect(Buffer.from(results.get(id)!.result!).toString()).toBe(`done ${i}`));
  expect(runs.size).toBe(300);
  expect([...runs.values()].every((n) => n === 1)).toBe(true);
  expect(byGateway.every((n) => n > 0)).toBe(true);
  // A finished attempt's stream replays whole through the other gateway, then ends.
  for (const i of [0, 150, 299]) {
    const tail = clients[1]!.tailStream(ids[i]!, 0);
    expect(await collect(tail)).toEqual([`start ${i}`, `end ${i}`]);
    expect(tail.end?.reason).toBe("completed");
  }
});

test("a live tail on one gateway follows frames a worker appends through the other, then the close", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let appended = 0;
  await startWorker(gateways[0]!, "cluster-live", async (task) => {
    for (let n = 1; n <= 3; n++) {
      await task.appendFrame("token", `t${n}`);
      appended = n;
    }
    await released;
    await task.appendFrame("token", "last");
    return "ok";
  });
  const { executionId } = await clients[0]!.createExecution({ lane: "cluster-live" });
  await eventually(async () => appended, (n) => n === 3);
  const tail = clients[1]!.tailStream(executionId, 0);
  const frames = collect(tail);
  await eventually(async () => gateways[1]!.tails.active, (n) => n >= 1);
  release();
  expect(await frames).toEqual(["t1", "t2", "t3", "last"]);
  expect(tail.end?.reason).toBe("completed");
});
