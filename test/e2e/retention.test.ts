import { Redis } from "iovalkey";
import { compileOptions, DEFAULTS, optionsFromEnv } from "../../gateway/src/config.js";
import { FlowFabricClient, FlowFabricWorker } from "../../sdk-ts/src/index.js";
import { awaitAll, eventually, startHarness, type Harness } from "../support/gateway.js";

/** Retention: ended executions are deleted, with everything they own, once they are old enough. */
let h: Harness;
let client: FlowFabricClient;
let worker: FlowFabricWorker;

beforeAll(async () => {
  h = await startHarness({ retentionMs: 1500, retentionScanIntervalMs: 50 });
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
  worker = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, workerId: "retention", lanes: ["kept-a-while"], maxConcurrentTasks: 5 });
  void worker.run(async (task) => {
    await task.appendFrame("log", "working");
    return `done ${task.inputText()}`;
  });
});
afterAll(async () => {
  await worker.close({ graceMs: 0 });
  client.close();
  await h.stop();
});

test("a completed execution can be read until its retention passes, then it is gone with all its keys", async () => {
  const created = await client.createExecutions(Array.from({ length: 5 }, (_, i) => ({ lane: "kept-a-while", input: `${i}` })));
  const ids = created.map((c) => c.executionId);
  const results = await awaitAll((id) => client.getResult(id), ids);
  expect(Buffer.from(results.get(ids[0]!)!.result!).toString()).toBe("done 0");
  // A waiting execution (no worker for its lane) is never purged.
  const { executionId: waiting } = await client.createExecution({ lane: "nobody-serves-this" });

  for (const id of ids) {
    await eventually(() => client.describeExecution(id).then(() => "present", (err: { code?: string }) => err.code ?? "?"), (v) => v === "NOT_FOUND");
  }
  const uuids = ids.map((id) => id.slice(id.indexOf(":") + 1));
  const redis = new Redis(h.server.url);
  try {
    const leftovers = (await redis.keys("*")).filter((key) => uuids.some((u) => key.includes(u)));
    expect(leftovers).toEqual([]);
  } finally {
    redis.disconnect();
  }
  expect((await client.describeExecution(waiting)).state).toBe("waiting");
});

test("configuration: FLOWFABRIC_RETENTION_MS, 7 days by default, 0 keeps everything, negative refused", () => {
  expect(DEFAULTS.retentionMs).toBe(7 * 24 * 3600 * 1000);
  expect(optionsFromEnv({ FLOWFABRIC_RETENTION_MS: "0" }).retentionMs).toBe(0);
  expect(compileOptions({ retentionMs: 0 }).retentionMs).toBe(0);
  expect(() => compileOptions({ retentionMs: -1 })).toThrow(/retentionMs/);
  expect(() => compileOptions({ retentionMs: 2 ** 60 })).toThrow(/retentionMs/);
  expect(() => optionsFromEnv({ FLOWFABRIC_RETENTION_MS: "soon" })).toThrow(/FLOWFABRIC_RETENTION_MS/);
});
