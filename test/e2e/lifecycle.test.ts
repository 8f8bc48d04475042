import { FlowFabricClient, FlowFabricWorker, type ClaimedTask } from "../../sdk-ts/src/index.js";
import { awaitAll, eventually, startHarness, type Harness } from "../support/gateway.js";

/** The execution lifecycle end to end: producer -> gateway -> SDK worker -> result. */
let h: Harness;
let client: FlowFabricClient;
const workers: FlowFabricWorker[] = [];
let seq = 0;

beforeAll(async () => {
  h = await startHarness();
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  client.close();
  await h.stop();
});

async function startWorker(lanes: string[], handler: (task: ClaimedTask) => Promise<Uint8Array | string | void>, maxConcurrentTasks = 10, capabilities: string[] = []): Promise<FlowFabricWorker> {
  const worker = await FlowFabricWorker.connect({ address: h.gateway.grpcAddress, workerId: `w${++seq}`, lanes, maxConcurrentTasks, capabilities });
  workers.push(worker);
  void worker.run(handler as never);
  return worker;
}
const TERMINAL = ["completed", "failed", "cancelled", "expired"];

test("1,000 executions complete with the correct results", async () => {
  let handled = 0;
  let allHandled!: () => void;
  const done = new Promise<void>((r) => (allHandled = r));
  await startWorker(["bulk"], async (task) => {
    if (++handled === 1000) allHandled();
    return Buffer.concat([Buffer.from("echo:"), Buffer.from(task.inputPayload)]);
  });
  const specs = Array.from({ length: 1000 }, (_, i) => ({ lane: "bulk", kind: "echo", input: Buffer.from(`item-${i}`) }));
  const created = [];
  for (let i = 0; i < specs.length; i += 250) created.push(...(await client.createExecutions(specs.slice(i, i + 250))));
  expect(new Set(created.map((c) => c.executionId)).size).toBe(1000);
  await done;
  // The last completions may still be in flight: wait for each to be committed, then check it.
  const results = await awaitAll((id) => client.getResult(id), created.map((c) => c.executionId));
  created.forEach((c, i) => expect(Buffer.from(results.get(c.executionId)!.result!).toString()).toBe(`echo:item-${i}`));
  expect(handled).toBe(1000);
}, 60_000);

test("a failure is retried and then succeeds", async () => {
  const attempts: number[] = [];
  await startWorker(["retry"], async (task) => {
    attempts.push(task.attemptIndex);
    if (task.attemptIndex === 0) throw Object.assign(new Error("transient boom"), { category: "transient" });
    return "second time lucky";
  });
  const { executionId } = await client.createExecution({
    lane: "retry", kind: "flaky", input: "x",
    retryPolicy: { maxRetries: 2, backoff: "fixed", initialDelayMs: 50, retryableCategories: ["transient"] },
  });
  const r = await eventually(() => client.getResult(executionId), (x) => x.state === "completed");
  expect(Buffer.from(r.result!).toString()).toBe("second time lucky");
  expect(attempts).toEqual([0, 1]);
  const d = await client.describeExecution(executionId);
  expect(d.retryCount).toBe(1);
  expect(d.attemptCount).toBe(2);
});

test("RetryPolicy.initial_delay_ms: an explicit 0 retries at once; absent keeps the 1,000 ms default", async () => {
  const outcomes = new Map<string, { sentAtMs: number; retryAtMs: number | undefined }>();
  await startWorker(["retry-zero"], async (task) => {
    if (task.attemptIndex > 0) return "again";
    const sentAtMs = Date.now();
    const r = await task.fail("boom", "transient");
    outcomes.set(task.executionId, { sentAtMs, retryAtMs: r.retryAtMs });
  });
  const zero = await client.createExecution({ lane: "retry-zero", kind: "k", input: "", retryPolicy: { maxRetries: 1, initialDelayMs: 0 } });
  const absent = await client.createExecution({ lane: "retry-zero", kind: "k", input: "", retryPolicy: { maxRetries: 1 } });
  await eventually(() => client.getResult(zero.executionId), (x) => x.state === "completed");
  await eventually(() => client.getResult(absent.executionId), (x) => x.state === "completed");
  const z = outcomes.get(zero.executionId)!;
  const a = outcomes.get(absent.executionId)!;
  expect(z.retryAtMs! - z.sentAtMs).toBeLessThan(500);
  expect(a.retryAtMs! - a.sentAtMs).toBeGreaterThanOrEqual(900);
});

test("retries exhausted -> failed; a non-retryable category fails at once", async () => {
  await startWorker(["exhaust"], async (task) => {
    throw Object.assign(new Error(`boom ${task.attemptIndex}`), { category: task.executionKind === "fatal" ? "validation" : "transient" });
  });
  const a = await client.createExecution({ lane: "exhaust", kind: "flaky", input: "", retryPolicy: { maxRetries: 2, backoff: "exponential", initialDelayMs: 10, maxDelayMs: 40, jitter: 0.5 } });
  const b = await client.createExecution({ lane: "exhaust", kind: "fatal", input: "", retryPolicy: { maxRetries: 5, backoff: "fixed", initialDelayMs: 10, retryableCategories: ["transient"] } });
  const ra = await eventually(() => client.getResult(a.executionId), (x) => x.state === "failed");
  expect(ra.failureReason).toBe("boom 2");
  expect((await client.describeExecution(a.executionId)).attemptCount).toBe(3);
  const rb = await eventually(() => client.getResult(b.executionId), (x) => x.state === "failed");
  expect(rb.failureCategory).toBe("validation");
  expect((await client.describeExecution(b.executionId)).attemptCount).toBe(1);
});

test("priority first, then FIFO", async () => {
  const lane = "order";
  const low = await client.createExecutions(Array.from({ length: 5 }, (_, i) => ({ lane, kind: "k", input: `low-${i}`, priority: 0 })));
  const high = await client.createExecutions(Array.from({ length: 5 }, (_, i) => ({ lane, kind: "k", input: `high-${i}`, priority: 10 })));
  const seen: string[] = [];
  await startWorker([lane], async (task) => { seen.push(Buffer.from(task.inputPayload).toString()); }, 1);
  await awaitAll((id) => client.describeExecution(id), [...low, ...high].map((c) => c.executionId), TERMINAL);
  expect(seen).toEqual([...Array.from({ length: 5 }, (_, i) => `high-${i}`), ...Array.from({ length: 5 }, (_, i) => `low-${i}`)]);
});

test("create with a delay, and a worker delaying its own execution, resume later (same attempt)", async () => {
  const startedAt = new Map<string, number>();
  const runs: { attempt: number; resumed: boolean }[] = [];
  await startWorker(["delay"], async (task) => {
    runs.push({ attempt: task.attemptIndex, resumed: task.resumed });
    if (!task.resumed) {
      startedAt.set(task.executionId, Date.now());
      await task.delayExecution(Date.now() + 300);
      return;
    }
    return "after delay";
  });
  const createdAt = Date.now();
  const { executionId, state } = await client.createExecution({ lane: "delay", kind: "k", input: "", delayUntilMs: Date.now() + 500 });
  expect(state).toBe("delayed");
  const r = await eventually(() => client.getResult(executionId), (x) => x.state === "completed");
  expect(Buffer.from(r.result!).toString()).toBe("after delay");
  expect(startedAt.get(executionId)! - createdAt).toBeGreaterThanOrEqual(490);
  expect(runs).toEqual([{ attempt: 0, resumed: false }, { attempt: 0, resumed: true }]);
  expect((await client.describeExecution(executionId)).attemptCount).toBe(1);
});

test("an execution past its deadline expires, and its running handler is told", async () => {
  let aborted: unknown;
  let started = false;
  await startWorker(["deadline"], async (task) => {
    started = true;
    await new Promise<void>((resolve) => task.signal.addEventListener("abort", () => resolve(), { once: true }));
    aborted = task.signal.reason;
  });
  // Far enough for the handler to be running when it passes, even on a loaded machine.
  const { executionId } = await client.createExecution({ lane: "deadline", kind: "k", input: "", deadlineAtMs: Date.now() + 1500 });
  await eventually(async () => started, (s) => s);
  expect((await client.describeExecution(executionId)).state).toBe("active");
  const d = await eventually(() => client.describeExecution(executionId), (x) => x.state === "expired");
  expect(d.failureReason).toBe("deadline");
  await eventually(async () => aborted, (a) => a !== undefined);
  expect(aborted).toMatchObject({ kind: "cancelled" });
});

test("idempotent create returns the same execution", async () => {
  const a = await client.createExecution({ lane: "idem", kind: "k", input: "1", idempotencyKey: "order-42" });
  const b = await client.createExecution({ lane: "idem", kind: "k", input: "2", idempotencyKey: "order-42" });
  expect(a.duplicate).toBe(false);
  expect(b).toMatchObject({ executionId: a.executionId, duplicate: true });
  const other = await client.createExecution({ lane: "idem", kind: "k", input: "1", idempotencyKey: "order-42", namespace: "other" });
  expect(other.executionId).not.toBe(a.executionId);
});

test("createExecution calls of one turn (sent together): each gets its own answer in call order, a bad one only its own error", async () => {
  const inputs = Array.from({ length: 300 }, (_, i) => `batched-${i}`);
  const calls = inputs.map((input) => client.createExecution({ lane: "batched", input }));
  // One turn: a valid call, an invalid one (bad lane) and an idempotent pair, sent together.
  const good = client.createExecution({ lane: "batched", input: "good" });
  const bad = client.createExecution({ lane: "bad lane!", input: "bad" });
  const first = client.createExecution({ lane: "batched", input: "once", idempotencyKey: "batch-idem" });
  const again = client.createExecution({ lane: "batched", input: "twice", idempotencyKey: "batch-idem" });
  const created = await Promise.all(calls);
  expect(new Set(created.map((c) => c.executionId)).size).toBe(300);
  await expect(bad).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "lane" });
  expect((await good).duplicate).toBe(false);
  const [a, b] = await Promise.all([first, again]);
  expect(b.executionId).toBe(a.executionId);
  expect([a.duplicate, b.duplicate]).toEqual([false, true]);

  // Answers are in call order: running them, each id's result is its own call's input.
  await startWorker(["batched"], async (task) => task.inputPayload);
  const results = await awaitAll((id) => client.getResult(id), created.map((c) => c.executionId));
  created.forEach((c, i) => expect(Buffer.from(results.get(c.executionId)!.result!).toString()).toBe(inputs[i]));
});

test("close() right after createExecution calls still sends them; later calls reject with CLOSED", async () => {
  for (const n of [1, 3]) { // one call (unary CreateExecution) and a batch (CreateExecutions)
    const producer = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
    const calls = Array.from({ length: n }, (_, i) => producer.createExecution({ lane: "closing", input: `${i}` }));
    producer.close();
    const created = await Promise.all(calls);
    for (const c of created) expect((await client.describeExecution(c.executionId)).state).toBe("waiting");
    await expect(producer.createExecution({ lane: "closing" })).rejects.toMatchObject({ code: "CANCELLED", reason: "CLOSED" });
  }
});

test("binary payloads round-trip byte for byte", async () => {
  const bytes = new Uint8Array(256 * 4);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
  bytes.set([0xc3, 0x28, 0xff, 0xfe, 0x00, 0xed, 0xa0, 0x80], 100); // invalid UTF-8 sequences
  let received: Uint8Array | undefined;
  await startWorker(["binary"], async (task) => {
    received = task.inputPayload;
    return Uint8Array.from(task.inputPayload).reverse();
  });
  const { executionId } = await client.createExecution({ lane: "binary", kind: "k", input: bytes });
  const r = await eventually(() => client.getResult(executionId), (x) => x.state === "completed");
  expect(Buffer.from(received!).equals(Buffer.from(bytes))).toBe(true);
  expect(Buffer.from(r.result!).equals(Buffer.from(Uint8Array.from(bytes).reverse()))).toBe(true);
});

test("an operator cancel reaches the running handler's signal with the reason", async () => {
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let reason: unknown;
  await startWorker(["cancel"], async (task) => {
    started();
    await new Promise<void>((resolve) => task.signal.addEventListener("abort", () => resolve(), { once: true }));
    reason = task.signal.reason;
  });
  const { executionId } = await client.createExecution({ lane: "cancel", kind: "k", input: "" });
  await running;
  const out = await client.cancelExecution(executionId, "user asked");
  expect(out.cancelled).toBe(true);
  await eventually(async () => reason, (r) => r !== undefined, 2000);
  expect(reason).toMatchObject({ kind: "cancelled" });
  const d = await client.describeExecution(executionId);
  expect(d).toMatchObject({ state: "cancelled", cancelReason: "user asked", cancelledBy: "operator" });
});

test("capabilities route work only to workers that have them", async () => {
  const gotGpu: string[] = [];
  const gotPlain: string[] = [];
  await startWorker(["caps"], async (task) => { gotPlain.push(task.executionKind); });
  await startWorker(["caps"], async (task) => { gotGpu.push(task.executionKind); }, 10, ["gpu", "linux"]);
  const made = await client.createExecutions([
    ...Array.from({ length: 10 }, () => ({ lane: "caps", kind: "needs-gpu", input: "", requiredCapabilities: ["gpu"] })),
    ...Array.from({ length: 10 }, () => ({ lane: "caps", kind: "any", input: "" })),
  ]);
  await awaitAll((id) => client.describeExecution(id), made.map((c) => c.executionId), TERMINAL);
  expect(gotPlain.filter((k) => k === "needs-gpu")).toHaveLength(0);
  expect(gotGpu.filter((k) => k === "needs-gpu")).toHaveLength(10);
});
