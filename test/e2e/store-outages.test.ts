import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "iovalkey";
import { startServerProcess, type ServerProcess } from "../../gateway/src/embedded/server-process.js";
import type { ValkeyBackend } from "../../gateway/src/engine/valkey-backend.js";
import { startGateway, type Gateway } from "../../gateway/src/index.js";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask } from "../../sdk-ts/src/index.js";
import { awaitAll, eventually, FAST } from "../support/gateway.js";
import { RawSession } from "../support/raw-session.js";
import { startTestServer } from "../support/redis.js";

/**
 * Store outages under running work: a store that refuses writes (`maxmemory 1`) and a store that
 * is gone for longer than the store client's old retry window (~10.5 s). No handler's result is
 * lost or turned into a failure, and no task is left held once the store is back.
 */
let dataDir = "";
let server: ServerProcess;
let admin: Redis;
let gateway: Gateway;
let client: FlowFabricClient;
const workers: FlowFabricWorker[] = [];

/** Lease TTL of this file's gateway: longer than the 12 s outage below. */
const LEASE_TTL_MS = 30_000;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "ff-outage-"));
  server = await startServerProcess({ port: 0, dataDir, persistence: true });
  admin = new Redis(server.url, { maxRetriesPerRequest: null });
  admin.on("error", () => undefined);
  gateway = await startGateway({ ...FAST, leaseTtlMs: LEASE_TTL_MS, heartbeatIntervalMs: 500, keepaliveIntervalMs: 1000, grpcPort: 0, httpPort: 0, valkeyUrl: server.url });
  client = await FlowFabricClient.connect({ address: gateway.grpcAddress });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  client.close();
  await gateway.close(0);
  admin.disconnect();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A worker whose handler waits for `release()`, then returns "done <input>"; `started` counts handler starts. */
async function gatedWorker(lane: string, slots: number): Promise<{ worker: FlowFabricWorker; started: ClaimedTask[]; release(): void }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const started: ClaimedTask[] = [];
  const worker = await FlowFabricWorker.connect({ address: gateway.grpcAddress, workerId: `outage-${lane}`, lanes: [lane], maxConcurrentTasks: slots });
  workers.push(worker);
  void worker.run(async (task) => {
    started.push(task);
    await gate;
    return `done ${task.inputText()}`;
  });
  return { worker, started, release };
}

async function expectCompletedOnce(ids: readonly string[], inputs: readonly string[], started: readonly ClaimedTask[]): Promise<void> {
  const results = await awaitAll((id) => client.getResult(id), ids, ["completed", "failed"], 30_000);
  ids.forEach((id, i) => {
    const r = results.get(id)!;
    expect(r.state).toBe("completed");
    expect(Buffer.from(r.result!).toString()).toBe(`done ${inputs[i]}`);
  });
  for (const id of ids) expect((await client.describeExecution(id)).attemptCount).toBe(1);
  expect(started.map((t) => t.executionId).sort()).toEqual([...ids].sort());
}

test("a store refusing writes (maxmemory 1) while handlers return: each result is recorded once writes work again, none failed, none held", async () => {
  const lane = "oom";
  const { started, release } = await gatedWorker(lane, 4);
  const inputs = ["a", "b", "c", "d"];
  const ids = (await client.createExecutions(inputs.map((input) => ({ lane, input })))).map((c) => c.executionId);
  await eventually(async () => started.length, (n) => n === 4);
  await admin.config("SET", "maxmemory", "1");
  try {
    release(); // every handler returns now: complete is refused (OOM) until memory is back
    // Refused for a while: heartbeats fail to renew (a write) and the settles keep being retried.
    await eventually(async () => started.every((t) => t.consecutiveRenewalFailures() >= 2), (ok) => ok);
    expect(started.every((t) => t.state === "settling")).toBe(true);
    expect((await client.describeExecution(ids[0]!)).state).toBe("active");
  } finally {
    await admin.config("SET", "maxmemory", "0");
  }
  await expectCompletedOnce(ids, inputs, started);
  expect(started.every((t) => t.state === "consumed")).toBe(true);
  await eventually(async () => gateway.sessions.leaseCount, (n) => n === 0, 5000);
}, 60_000);

test("a settle that is never retried: the gateway stops renewing its lease after one lease TTL, so the task is requeued, not held forever", async () => {
  const lane = "silent-settle";
  const short = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: server.url }); // lease TTL 2 s
  try {
    const { executionId } = await client.createExecution({ lane, input: "x" });
    const raw = new RawSession(short.grpcAddress);
    raw.send({ body: { case: "hello", value: { workerId: "raw", instanceId: "raw-silent", lanes: [lane], maxConcurrentTasks: 1 } } });
    await raw.next("welcome");
    const task = (await raw.next("tasks")).body.value.tasks[0]!;
    raw.send({ body: { case: "ack", value: { leaseIds: [task.fence!.leaseId] } } });
    raw.send({ body: { case: "credit", value: { maxConcurrentTasks: 0 } } }); // it must not get the work back
    await admin.config("SET", "maxmemory", "1");
    try {
      raw.send({ requestId: "c1", body: { case: "complete", value: { fence: task.fence!, result: Buffer.from("r") } } });
      const answer = await raw.next("error", (m) => m.requestId === "c1");
      expect(answer.body.value.detail?.reason).toBe("UNAVAILABLE");
    } finally {
      await admin.config("SET", "maxmemory", "0");
    }
    // The worker keeps its session alive but never retries the complete.
    const beat = setInterval(() => raw.send({ body: { case: "heartbeat", value: {} } }), 200);
    try {
      const requeued = await eventually(() => client.describeExecution(executionId), (d) => d.state === "waiting", 10_000, 100);
      expect(requeued.reclaimCount).toBe(1);
      expect(short.sessions.leaseCount).toBe(0);
    } finally {
      clearInterval(beat);
      raw.kill();
    }
    await client.cancelExecution(executionId, "test over");
  } finally {
    await short.close(0);
  }
}, 30_000);

test("a store down for 12 s (longer than the client's old ~10.5 s retry window) while handlers return: every result is recorded once it is back", async () => {
  const lane = "down";
  const { started, release } = await gatedWorker(lane, 5);
  const inputs = ["1", "2", "3", "4", "5"];
  const ids = (await client.createExecutions(inputs.map((input) => ({ lane, input })))).map((c) => c.executionId);
  await eventually(async () => started.length, (n) => n === 5);
  await server.stop(); // clean shutdown: the AOF has everything
  release(); // the handlers return while the store is gone
  await eventually(async () => started.every((t) => t.consecutiveRenewalFailures() >= 1), (ok) => ok);
  await new Promise((r) => setTimeout(r, 12_000)); // the outage itself: a duration, not an event
  expect(started.every((t) => t.state === "settling")).toBe(true);
  server = await startServerProcess({ port: server.port, dataDir, persistence: true });
  await expectCompletedOnce(ids, inputs, started);
  await eventually(async () => gateway.sessions.leaseCount, (n) => n === 0, 5000);
}, 60_000);

test("a gateway whose store is down still closes promptly (its store calls no longer give up by themselves)", async () => {
  const other = await startTestServer();
  const g = await startGateway({ ...FAST, grpcPort: 0, httpPort: 0, valkeyUrl: other.url });
  await other.stop();
  await eventually(async () => (g.engine as ValkeyBackend).connection.status, (s) => s !== "ready");
  const startedAt = Date.now();
  await g.close(0);
  expect(Date.now() - startedAt).toBeLessThan(3000);
});
