import { context, trace, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { DataPointType, MeterProvider, MetricReader, type HistogramMetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { FlowFabricClient, FlowFabricWorker, type ClaimedTask, type TraceMode } from "../../sdk-ts/src/index.js";
import {
  ATTR_ATTEMPT_INDEX, ATTR_EXECUTION_ID, ATTR_LANE, ATTR_OUTCOME, ATTR_TRACE_MODE, ATTR_WORKER_ID, METRIC_TASK_HANDLER_DURATION,
} from "../../sdk-ts/src/telemetry/attributes.js";
import { createLogger } from "../../gateway/src/logger.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { capturedLogs } from "../support/logs.js";

/**
 * Tracing and metrics end to end, against a real server: producer, gateway and worker in this
 * process export to one in-memory exporter, so one execution's spans can be followed across all
 * three. The gateway's metrics are read from GET /metrics.
 */
const spans = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });

/** A pull reader for the SDK's meter (collected on demand). */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}
const sdkReader = new TestReader();
const sdkMeters = new MeterProvider({ readers: [sdkReader] });

let h: Harness;
let client: FlowFabricClient;
const workers: FlowFabricWorker[] = [];
let seq = 0;
const producer = trace.getTracer("test-producer");
const user = trace.getTracer("test-user");

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  h = await startHarness();
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  client.close();
  await h.stop();
  await provider.shutdown();
  await sdkMeters.shutdown();
  trace.disable();
  context.disable();
});

async function startWorker(lane: string, handler: (task: ClaimedTask) => Promise<string | void>, traceMode?: TraceMode, maxConcurrentTasks = 10): Promise<FlowFabricWorker> {
  const worker = await FlowFabricWorker.connect({
    address: h.gateway.grpcAddress, workerId: `tw${++seq}`, lanes: [lane], maxConcurrentTasks, meterProvider: sdkMeters,
    ...(traceMode !== undefined ? { traceMode } : {}),
  });
  workers.push(worker);
  void worker.run(handler);
  return worker;
}

/** Runs `fn` inside an active "producer" span; returns its result and the span. */
async function produce<T>(fn: () => Promise<T>): Promise<{ result: T; span: ReadableSpan }> {
  let spanId = "";
  const result = await producer.startActiveSpan("producer", async (span) => {
    spanId = span.spanContext().spanId;
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
  const span = spans.getFinishedSpans().find((s) => s.spanContext().spanId === spanId);
  if (span === undefined) throw new Error("producer span not exported");
  return { result, span };
}

const ofExecution = (id: string, name: string): ReadableSpan[] =>
  spans.getFinishedSpans().filter((s) => s.name === name && s.attributes[ATTR_EXECUTION_ID] === id);
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
const completed = (id: string) => eventually(() => client.getResult(id), (r) => r.state === "completed");
/** Waits until the execution has `n` spans named `name`; returns them in start order. */
const waitSpans = (id: string, name: string, n = 1) =>
  eventually(async () => ofExecution(id, name), (list) => list.length >= n).then((list) =>
    [...list].sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]));

test("one producer call -> one trace: producer -> dispatch -> task -> complete, user spans under the task", async () => {
  await startWorker("trace-child", async () => {
    user.startActiveSpan("user-work", (span) => span.end());
    return "ok";
  });
  const { result: { executionId }, span: producerSpan } = await produce(() => client.createExecution({ lane: "trace-child", input: "x" }));
  await completed(executionId);
  const [dispatch] = await waitSpans(executionId, "flowfabric.dispatch");
  const [task] = await waitSpans(executionId, "flowfabric.task");
  const [complete] = await waitSpans(executionId, "flowfabric.complete");
  const traceId = producerSpan.spanContext().traceId;
  for (const s of [dispatch!, task!, complete!]) expect(s.spanContext().traceId).toBe(traceId);

  expect(parentOf(dispatch!)).toBe(producerSpan.spanContext().spanId);
  expect(dispatch!.kind).toBe(SpanKind.PRODUCER);
  expect(parentOf(task!)).toBe(dispatch!.spanContext().spanId);
  expect(task!.kind).toBe(SpanKind.CONSUMER);
  expect(task!.attributes[ATTR_ATTEMPT_INDEX]).toBe(0);
  expect(task!.attributes[ATTR_LANE]).toBe("trace-child");
  expect(task!.attributes[ATTR_WORKER_ID]).toMatch(/^tw\d+$/);
  expect(task!.attributes[ATTR_OUTCOME]).toBe("completed");
  expect(task!.events.map((e) => e.name)).toContain("flowfabric.complete");
  expect(parentOf(complete!)).toBe(task!.spanContext().spanId);
  expect(complete!.attributes[ATTR_OUTCOME]).toBe("completed");

  // The session span is long-lived: dispatch and complete link to it; it parents neither.
  const sessionLink = dispatch!.links[0]?.context;
  expect(sessionLink).toBeDefined();
  expect(complete!.links[0]?.context.spanId).toBe(sessionLink!.spanId);
  expect(sessionLink!.traceId).not.toBe(traceId);

  // A span the handler starts nests under the task span.
  const userSpan = spans.getFinishedSpans().find((s) => s.name === "user-work" && s.spanContext().traceId === traceId);
  expect(userSpan && parentOf(userSpan)).toBe(task!.spanContext().spanId);
  // The unary CreateExecution span is a child of the producer's span too (metadata).
  const rpc = spans.getFinishedSpans().find((s) => s.name === "flowfabric.v1.ExecutionService/CreateExecution" && s.spanContext().traceId === traceId);
  expect(rpc && parentOf(rpc)).toBe(producerSpan.spanContext().spanId);
});

test("operations without a traceparent (frames, progress) are children of the task's dispatch span, never roots", async () => {
  await startWorker("trace-ops", async (task) => {
    await task.appendFrame("log", "one");
    await task.updateProgress(50, "half");
    return "ok";
  });
  const { result: { executionId }, span: producerSpan } = await produce(() => client.createExecution({ lane: "trace-ops", input: "x" }));
  await completed(executionId);
  const [dispatch] = await waitSpans(executionId, "flowfabric.dispatch");
  const [append] = await waitSpans(executionId, "flowfabric.append_frame");
  const [progress] = await waitSpans(executionId, "flowfabric.update_progress");
  for (const s of [append!, progress!]) {
    expect(s.spanContext().traceId).toBe(producerSpan.spanContext().traceId);
    expect(parentOf(s)).toBe(dispatch!.spanContext().spanId);
    expect(s.links).toHaveLength(1); // the session span
  }
});

test("createExecution calls of one turn go in one CreateExecutions call; each keeps its own producer as trace parent", async () => {
  await startWorker("trace-batch", async () => "ok");
  const before = spans.getFinishedSpans().filter((s) => s.name.startsWith("flowfabric.v1.ExecutionService/CreateExecution")).length;
  const producers = Array.from({ length: 3 }, (_, i) => producer.startSpan(`batch-producer-${i}`));
  const calls = producers.map((span, i) =>
    context.with(trace.setSpan(context.active(), span), () => client.createExecution({ lane: "trace-batch", input: `b${i}` })));
  const created = await Promise.all(calls);
  for (const span of producers) span.end();
  const rpcs = spans.getFinishedSpans().filter((s) => s.name.startsWith("flowfabric.v1.ExecutionService/CreateExecution")).slice(before);
  expect(rpcs.map((s) => s.name)).toEqual(["flowfabric.v1.ExecutionService/CreateExecutions"]);
  for (const [i, c] of created.entries()) {
    await completed(c.executionId);
    const [dispatch] = await waitSpans(c.executionId, "flowfabric.dispatch");
    expect(dispatch!.spanContext().traceId).toBe(producers[i]!.spanContext().traceId);
    expect(parentOf(dispatch!)).toBe(producers[i]!.spanContext().spanId);
  }
});

test("link mode: the task span is a new root linked to the dispatch span (worker option and per-execution override)", async () => {
  await startWorker("trace-link", async () => "ok", "link");
  const { result: a, span: pa } = await produce(() => client.createExecution({ lane: "trace-link", input: "a" }));
  // A child-mode worker honours an execution's own traceMode: "link".
  const { result: b, span: pb } = await produce(() => client.createExecution({ lane: "trace-child", input: "b", traceMode: "link" }));
  // And a link-mode worker honours traceMode: "child".
  const { result: c, span: pc } = await produce(() => client.createExecution({ lane: "trace-link", input: "c", traceMode: "child" }));
  await Promise.all([a, b, c].map((x) => completed(x.executionId)));

  for (const [created, producerSpan] of [[a, pa], [b, pb]] as const) {
    const [dispatch] = await waitSpans(created.executionId, "flowfabric.dispatch");
    const [task] = await waitSpans(created.executionId, "flowfabric.task");
    const [complete] = await waitSpans(created.executionId, "flowfabric.complete");
    expect(parentOf(dispatch!)).toBe(producerSpan.spanContext().spanId);
    expect(task!.parentSpanContext).toBeUndefined();
    expect(task!.spanContext().traceId).not.toBe(producerSpan.spanContext().traceId);
    expect(task!.attributes[ATTR_TRACE_MODE]).toBe("link");
    expect(task!.links.map((l) => l.context.spanId)).toEqual([dispatch!.spanContext().spanId]);
    expect(task!.links[0]!.context.traceId).toBe(producerSpan.spanContext().traceId);
    expect(parentOf(complete!)).toBe(task!.spanContext().spanId);
    expect(complete!.spanContext().traceId).toBe(task!.spanContext().traceId);
  }
  const [dispatchC] = await waitSpans(c.executionId, "flowfabric.dispatch");
  const [taskC] = await waitSpans(c.executionId, "flowfabric.task");
  expect(taskC!.attributes[ATTR_TRACE_MODE]).toBe("child");
  expect(parentOf(taskC!)).toBe(dispatchC!.spanContext().spanId);
  expect(taskC!.spanContext().traceId).toBe(pc.spanContext().traceId);
});

test("a retried execution: every attempt's dispatch, task and settle span is in the producer's trace", async () => {
  await startWorker("trace-retry", async (task) => {
    if (task.attemptIndex === 0) throw Object.assign(new Error("transient boom"), { category: "transient" });
    return "second time lucky";
  });
  const { result: { executionId }, span: producerSpan } = await produce(() =>
    client.createExecution({ lane: "trace-retry", input: "x", retryPolicy: { maxRetries: 2, backoff: "fixed", initialDelayMs: 20 } }));
  await completed(executionId);
  const dispatches = await waitSpans(executionId, "flowfabric.dispatch", 2);
  const tasks = await waitSpans(executionId, "flowfabric.task", 2);
  const [fail] = await waitSpans(executionId, "flowfabric.fail");
  const [complete] = await waitSpans(executionId, "flowfabric.complete");
  const traceId = producerSpan.spanContext().traceId;
  for (const s of [...dispatches, ...tasks, fail!, complete!]) expect(s.spanContext().traceId).toBe(traceId);
  expect(dispatches.map((d) => d.attributes[ATTR_ATTEMPT_INDEX])).toEqual([0, 1]);
  expect(dispatches.map(parentOf)).toEqual([producerSpan.spanContext().spanId, producerSpan.spanContext().spanId]);
  expect(tasks.map(parentOf)).toEqual(dispatches.map((d) => d.spanContext().spanId));
  expect(tasks[0]!.status.code).toBe(SpanStatusCode.ERROR);
  expect(tasks[0]!.attributes[ATTR_OUTCOME]).toBe("retry_scheduled");
  expect(parentOf(fail!)).toBe(tasks[0]!.spanContext().spanId);
  expect(fail!.attributes[ATTR_OUTCOME]).toBe("retry_scheduled");
  expect(parentOf(complete!)).toBe(tasks[1]!.spanContext().spanId);
});

// ---- metrics ---------------------------------------------------------------------------------

/** GET /metrics parsed into "name{labels}" -> value (labels as exported, in order). */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${h.gateway.httpAddress}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/** Sum of the series of `name` whose labels include every `labels` pair. */
function value(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [series, v] of m) {
    const brace = series.indexOf("{");
    if ((brace < 0 ? series : series.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, l]) => series.includes(`${k}="${l}"`))) sum += v;
  }
  return sum;
}

test("GET /metrics: counters move by the right amounts", async () => {
  const before = await scrape();
  await startWorker("metrics", async (task) => {
    if (task.executionKind === "flaky" && task.attemptIndex === 0) throw Object.assign(new Error("again"), { category: "transient" });
    if (task.executionKind === "fatal") throw Object.assign(new Error("bad input"), { category: "validation" });
    await task.appendFrame("log", "one frame");
    return "ok";
  });
  const created = await client.createExecutions([
    { lane: "metrics", kind: "ok" }, { lane: "metrics", kind: "ok" }, { lane: "metrics", kind: "ok" },
    { lane: "metrics", kind: "flaky", retryPolicy: { maxRetries: 1, backoff: "fixed", initialDelayMs: 10 } },
    { lane: "metrics", kind: "fatal", retryPolicy: { maxRetries: 3, backoff: "fixed", initialDelayMs: 10, retryableCategories: ["transient"] } },
  ]);
  await Promise.all(created.slice(0, 4).map((c) => completed(c.executionId)));
  await eventually(() => client.getResult(created[4]!.executionId), (r) => r.state === "failed");
  const after = await eventually(scrape, (m) => value(m, "flowfabric_completions_total") - value(before, "flowfabric_completions_total") >= 4);
  const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);

  expect(delta("flowfabric_claims_total", { flowfabric_lane: "metrics" })).toBe(6); // 5 first attempts + 1 retry
  expect(delta("flowfabric_completions_total")).toBe(4);
  expect(delta("flowfabric_failures_total", { flowfabric_failure_category: "transient", flowfabric_outcome: "retry_scheduled" })).toBe(1);
  expect(delta("flowfabric_failures_total", { flowfabric_failure_category: "validation", flowfabric_outcome: "failed" })).toBe(1);
  expect(delta("flowfabric_retries_total")).toBe(1);
  expect(delta("flowfabric_frames_appended_total")).toBe(4); // the 4 successful attempts
  expect(delta("flowfabric_dispatch_latency_count", { flowfabric_lane: "metrics" })).toBe(5); // first attempts only
  expect(value(after, "flowfabric_sessions_live")).toBeGreaterThanOrEqual(1);

  // The SDK's handler duration went through the API to the worker's meter provider.
  const { resourceMetrics } = await sdkReader.collect();
  const histogram = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === METRIC_TASK_HANDLER_DURATION) as HistogramMetricData | undefined;
  expect(histogram?.dataPointType).toBe(DataPointType.HISTOGRAM);
  const points = histogram!.dataPoints.filter((p) => p.attributes[ATTR_LANE] === "metrics");
  expect(points.reduce((n, p) => n + p.value.count, 0)).toBe(6); // 5 first attempts + 1 retry
});

test("GET /metrics: eligible depth per lane, active leases and lease renewals", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await startWorker("depth", async () => { await gate; return "ok"; }, undefined, 1);
  const before = await scrape();
  const created = await client.createExecutions(Array.from({ length: 4 }, () => ({ lane: "depth" })));
  // One task is held (and renewed by heartbeats); three wait.
  const during = await eventually(scrape, (m) =>
    value(m, "flowfabric_queue_eligible_depth", { flowfabric_lane: "depth" }) === 3 &&
    value(m, "flowfabric_lease_renewals_total") > value(before, "flowfabric_lease_renewals_total"));
  expect(value(during, "flowfabric_leases_active")).toBeGreaterThanOrEqual(1);
  release();
  await Promise.all(created.map((c) => completed(c.executionId)));
  const after = await eventually(scrape, (m) => value(m, "flowfabric_queue_eligible_depth", { flowfabric_lane: "depth" }) === 0);
  expect(value(after, "flowfabric_lease_renewal_failures_total")).toBe(value(before, "flowfabric_lease_renewal_failures_total"));
});

test("structured logs carry the active span's trace and span ids", () => {
  const log = createLogger("info");
  let ids = { traceId: "", spanId: "" };
  const [inside, outside] = capturedLogs(() => {
    producer.startActiveSpan("logged", (span) => {
      ids = span.spanContext();
      log.info("inside a span", { k: 1 });
      span.end();
    });
    log.info("outside");
  });
  expect(inside).toMatchObject({ msg: "inside a span", trace_id: ids.traceId, span_id: ids.spanId, k: 1 });
  expect(outside).not.toHaveProperty("trace_id");
});
