import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startServerProcess, type ServerProcess } from "../../gateway/src/embedded/server-process.js";
import { ValkeyBackend } from "../../gateway/src/engine/valkey-backend.js";
import { startGateway, type Gateway } from "../../gateway/src/index.js";
import type { Logger } from "../../gateway/src/logger.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask } from "../../sdk-ts/src/index.js";
import { awaitAll, eventually, FAST } from "../support/gateway.js";

/**
 * The store restarts under a running gateway (clean shutdown, AOF, same port): what was created
 * survives, a task in flight keeps its lease, waiting work is pushed afterwards, new work flows,
 * and nothing runs twice.
 */
let dataDir = "";
let server: ServerProcess;
let gateway: Gateway;
let client: FlowFabricClient;
const workers: FlowFabricWorker[] = [];
/** What the gateway logged (message texts). */
const logged: string[] = [];
const logger: Logger = {
  debug: (msg) => { logged.push(msg); },
  info: (msg) => { logged.push(msg); },
  warn: (msg) => { logged.push(msg); },
  error: (msg) => { logged.push(msg); },
  child: () => logger,
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "ff-restart-"));
  server = await startServerProcess({ port: 0, dataDir, persistence: true });
  // No safety-net scan during the test: work created after the restart can only be pushed if the
  // gateway's wake-event subscription came back with the store.
  gateway = await startGateway({ ...FAST, safetyScanIntervalMs: 600_000, grpcPort: 0, httpPort: 0, valkeyUrl: server.url, logger });
  client = await FlowFabricClient.connect({ address: gateway.grpcAddress });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  client.close();
  await gateway.close(0);
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("a store restart loses nothing and runs nothing twice; the gateway and its workers carry on", async () => {
  const runs = new Map<string, number>();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let heldTask: ClaimedTask | undefined;
  const handler = async (task: ClaimedTask): Promise<string> => {
    runs.set(task.executionId, (runs.get(task.executionId) ?? 0) + 1);
    if (task.inputText() === "held") {
      heldTask = task;
      await released;
    }
    return `ok ${task.inputText()}`;
  };
  const worker = await FlowFabricWorker.connect({ address: gateway.grpcAddress, workerId: "restart", lanes: ["before"], maxConcurrentTasks: 5 });
  workers.push(worker);
  void worker.run(handler);

  const before = (await client.createExecutions(Array.from({ length: 20 }, (_, i) => ({ lane: "before", input: `${i}` })))).map((c) => c.executionId);
  await awaitAll((id) => client.getResult(id), before);
  const { executionId: held } = await client.createExecution({ lane: "before", input: "held" });
  await eventually(async () => heldTask !== undefined, (v) => v);
  const waiting = (await client.createExecutions(Array.from({ length: 30 }, (_, i) => ({ lane: "later", input: `w${i}` })))).map((c) => c.executionId);

  await server.stop(); // clean shutdown: the AOF has everything
  const duringOutage = client.createExecution({ lane: "later", input: "during" });
  // Down for at least one heartbeat: the held task's renewal fails, its lease (2 s) outlives that.
  await eventually(async () => heldTask!.consecutiveRenewalFailures(), (n) => n >= 1);
  expect(heldTask!.isLeaseHealthy()).toBe(true);
  server = await startServerProcess({ port: server.port, dataDir, persistence: true });
  await eventually(async () => heldTask!.consecutiveRenewalFailures(), (n) => n === 0);
  // The outage is reported once, and its end too.
  await eventually(async () => logged.filter((m) => m.startsWith("store connection")), (l) => l.length === 2);
  expect(logged.filter((m) => m.startsWith("store connection"))).toEqual(["store connection lost; reconnecting (commands wait meanwhile)", "store connection back"]);

  const results = await awaitAll((id) => client.getResult(id), before);
  before.forEach((id, i) => expect(Buffer.from(results.get(id)!.result!).toString()).toBe(`ok ${i}`));
  release();
  const heldResult = await eventually(() => client.getResult(held), (r) => r.state === "completed");
  expect(Buffer.from(heldResult.result!).toString()).toBe("ok held");

  const during = await duringOutage;
  const later = await FlowFabricWorker.connect({ address: gateway.grpcAddress, workerId: "restart-later", lanes: ["later", "before"], maxConcurrentTasks: 5 });
  workers.push(later);
  void later.run(handler);
  await awaitAll((id) => client.getResult(id), [...waiting, during.executionId]);
  const fresh = (await client.createExecutions(Array.from({ length: 10 }, (_, i) => ({ lane: "before", input: `f${i}` })))).map((c) => c.executionId);
  await awaitAll((id) => client.getResult(id), fresh);

  expect(runs.size).toBe(20 + 1 + 30 + 1 + 10);
  expect([...runs.values()].every((n) => n === 1)).toBe(true);
  expect((await client.describeExecution(held)).attemptCount).toBe(1);
}, 60_000);

test("an unreachable store at boot: the error names the address and the cause", async () => {
  const url = `redis://127.0.0.1:${await freePort()}`; // nothing listens there
  const health: string[] = [];
  await expect(ValkeyBackend.connect({ url, partitions: 4, connectTimeoutMs: 500, onConnectionHealth: (state) => health.push(state) }))
    .rejects.toThrow(new RegExp(`cannot reach Valkey/Redis at ${url}: connect ECONNREFUSED`));
  expect(health).toEqual(["down"]);
});
