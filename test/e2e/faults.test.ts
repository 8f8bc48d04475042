import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask, type WorkerEvent } from "../../sdk-ts/src/index.js";
import { startGateway, type Gateway } from "../../gateway/src/index.js";
import { freePort } from "../../gateway/src/embedded/server-process.js";
import { awaitAll, eventually, FAST, startHarness, type Harness } from "../support/gateway.js";
import { grpcAddressOf, startMain } from "../support/main-process.js";

/** Crash recovery: nothing lost, nothing done twice. */
let h: Harness;
let client: FlowFabricClient;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  h = await startHarness({ leaseTtlMs: 1500, heartbeatIntervalMs: 300 });
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
});
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
  client.close();
  await h.stop();
});

/**
 * A worker (fast reconnects) whose handler holds each task until `release()`, then returns
 * `result`. `running` resolves with the first task; `runs` lists every execution it started.
 */
async function gatedWorker(address: string, workerId: string, lane: string, result: string, onEvent?: (e: WorkerEvent) => void) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: (t: ClaimedTask) => void;
  const running = new Promise<ClaimedTask>((r) => (started = r));
  const runs: string[] = [];
  const worker = await FlowFabricWorker.connect({
    address, workerId, lanes: [lane], maxConcurrentTasks: 2, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...(onEvent ? { onEvent } : {}),
  });
  cleanup.push(() => worker.close({ graceMs: 0 }));
  void worker.run(async (task: ClaimedTask) => {
    runs.push(task.executionId);
    started(task);
    await gate;
    return result;
  });
  return { worker, running, release, runs };
}

/** The execution completed with `result`, in its first attempt, run once by the gated worker. */
async function expectFinishedOnce(executionId: string, runs: readonly string[], result: string): Promise<void> {
  const r = await eventually(() => client.getResult(executionId), (x) => x.state === "completed");
  expect(Buffer.from(r.result!).toString()).toBe(result);
  expect(runs).toEqual([executionId]);
  expect((await client.describeExecution(executionId)).attemptCount).toBe(1);
}

test("a worker process killed with SIGKILL mid-task: its executions are requeued and completed elsewhere, none twice", async () => {
  const lane = "crash";
  // `node --import tsx` keeps the worker in this very process, so SIGKILL hits the worker itself.
  const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/hanging-worker.ts", h.gateway.grpcAddress, lane, "5"], { stdio: ["ignore", "pipe", "inherit"] });
  cleanup.push(() => { child.kill("SIGKILL"); });
  const lines = createInterface({ input: child.stdout! });
  const got = new Set<string>();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  let allGot!: () => void;
  const gotFive = new Promise<void>((r) => (allGot = r));
  lines.on("line", (line) => {
    if (line === "READY") ready();
    if (line.startsWith("GOT ")) { got.add(line.slice(4)); if (got.size === 5) allGot(); }
  });
  await isReady;
  const made = await client.createExecutions(Array.from({ length: 5 }, (_, i) => ({ lane, kind: "k", input: `job-${i}` })));
  await gotFive;
  expect([...got].sort()).toEqual(made.map((m) => m.executionId).sort());
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;

  const completions = new Map<string, number>();
  const survivor = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, workerId: "survivor", lanes: [lane], maxConcurrentTasks: 5 });
  cleanup.push(() => survivor.close({ graceMs: 0 }));
  void survivor.run(async (task: ClaimedTask) => {
    completions.set(task.executionId, (completions.get(task.executionId) ?? 0) + 1);
    return `done by survivor on attempt ${task.attemptIndex}`;
  });
  const results = await awaitAll((id) => client.getResult(id), made.map((m) => m.executionId));
  for (const m of made) {
    expect(Buffer.from(results.get(m.executionId)!.result!).toString()).toBe("done by survivor on attempt 1");
    const d = await client.describeExecution(m.executionId);
    expect(d.attemptCount).toBe(2);
    expect(d.reclaimCount).toBe(1);
  }
  expect([...completions.values()].every((n) => n === 1)).toBe(true);
  expect(completions.size).toBe(5);
}, 30_000);

test("gateway restart: workers reconnect and their held leases survive (the task is not run again)", async () => {
  const lane = "restart";
  const first: Gateway = await startGateway({ ...FAST, leaseTtlMs: 10000, heartbeatIntervalMs: 300, grpcPort: 0, httpPort: 0, valkeyUrl: h.server.url });
  const port = Number(first.grpcAddress.split(":")[1]);
  const producer = await FlowFabricClient.connect({ address: first.grpcAddress });
  const { worker, running, release, runs } = await gatedWorker(first.grpcAddress, "restarter", lane, "finished across a restart");
  const { executionId } = await producer.createExecution({ lane, kind: "k", input: "" });
  const task = await running;
  producer.close();
  await first.close(200); // Drain, then gone
  const second = await startGateway({ ...FAST, leaseTtlMs: 10000, heartbeatIntervalMs: 300, grpcPort: port, httpPort: 0, valkeyUrl: h.server.url });
  cleanup.push(() => second.close(0));
  await eventually(async () => second.sessions.leaseCount, (n) => n === 1, 15_000); // re-adopted on the new gateway
  expect(task.isLeaseHealthy()).toBe(true);
  release();
  await expectFinishedOnce(executionId, runs, "finished across a restart");
  await worker.close({ graceMs: 0 });
}, 30_000);

test("gateway crash (SIGKILL, no drain): workers reconnect to its replacement and keep their leases", async () => {
  const lane = "crashed-gateway";
  const port = await freePort();
  const env = { VALKEY_URL: h.server.url, FLOWFABRIC_GRPC_PORT: String(port), FLOWFABRIC_PARTITIONS: String(FAST.partitions), FLOWFABRIC_LEASE_TTL_MS: "15000", FLOWFABRIC_HEARTBEAT_INTERVAL_MS: "500" };
  const first = startMain(env);
  cleanup.push(() => { first.child.kill("SIGKILL"); });
  const address = await grpcAddressOf(first);
  const sessions: { adopted: number }[] = [];
  const { running, release, runs } = await gatedWorker(address, "survives-a-crash", lane, "finished across a crash", (e) => {
    if (e.type === "session_started") sessions.push({ adopted: e.adopted });
  });
  const { executionId } = await client.createExecution({ lane, kind: "k", input: "" });
  const task = await running;
  const exited = new Promise((r) => first.child.once("exit", r));
  first.child.kill("SIGKILL");
  await exited;
  const second = startMain(env);
  cleanup.push(() => { second.child.kill("SIGKILL"); });
  await grpcAddressOf(second);
  await eventually(async () => sessions, (s) => s.length === 2); // reconnected to the replacement
  expect(sessions[1]!.adopted).toBe(1);
  expect(task.isLeaseHealthy()).toBe(true);
  release();
  await expectFinishedOnce(executionId, runs, "finished across a crash");
}, 30_000);

test("two gateways, many workers: no execution is granted twice", async () => {
  const lane = "contend";
  const g2 = await h.startGateway({ leaseTtlMs: 5000 });
  const grants = new Map<string, number>();
  const started: FlowFabricWorker[] = [];
  for (let i = 0; i < 8; i++) {
    const w = await FlowFabricWorker.connect({ address: (i % 2 ? g2 : h.gateway).grpcAddress, workerId: `contender-${i}`, lanes: [lane], maxConcurrentTasks: 8 });
    started.push(w);
    void w.run(async (task: ClaimedTask) => {
      grants.set(task.executionId, (grants.get(task.executionId) ?? 0) + 1);
      return "ok";
    });
  }
  cleanup.push(async () => { await Promise.all(started.map((w) => w.close({ graceMs: 0 }))); });
  const ids: string[] = [];
  for (let b = 0; b < 4; b++) {
    const made = await client.createExecutions(Array.from({ length: 500 }, (_, i) => ({ lane, kind: "k", input: `${b}-${i}` })));
    ids.push(...made.map((m) => m.executionId));
  }
  await eventually(async () => grants.size, (n) => n === 2000, 30_000, 50);
  await awaitAll((id) => client.getResult(id), ids);
  expect([...grants.values()].filter((n) => n !== 1)).toEqual([]);
  for (const id of ids.slice(0, 50)) expect((await client.describeExecution(id)).attemptCount).toBe(1);
}, 60_000);
