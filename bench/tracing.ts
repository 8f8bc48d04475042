/**
 * `npm run bench -- --tracing` (BENCH_TRACING=1): FlowFabric with tracing on, every span going to
 * an in-memory exporter, to measure the overhead against a run without it (DESIGN §9/§11,
 * docs/observability.md). The bench process (producer client, worker) registers an SDK tracer
 * provider here; the gateway process loads bench/tracing-preload.mjs for the same. Each
 * pre-create batch runs inside a producer span, so every execution carries a trace context and
 * gets the full chain: producer -> dispatch -> task -> complete (plus the unary RPC spans).
 */
import { resolve } from "node:path";
import { context, trace, type ContextManager } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import type { ExportResult } from "@opentelemetry/core";

export function tracingRequested(): boolean {
  return process.env["BENCH_TRACING"] === "1";
}

let spanCount = 0;
let enabled = false;

/** An in-memory exporter that counts the spans of each batch, then drops them, as a network exporter would once they are sent. */
class CountingMemoryExporter extends InMemorySpanExporter {
  override export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    spanCount += spans.length;
    super.export(spans, resultCallback);
    this.reset(); // like a network exporter, keep nothing once a batch is "sent"
  }
}

/**
 * Registers the tracer provider (BatchSpanProcessor into memory, as in production minus the
 * network) in this process, once, with `contextManager` (default: AsyncLocalStorage, what a
 * worker application registers so user spans nest under the task span).
 */
export function enableTracing(contextManager: ContextManager = new AsyncLocalStorageContextManager()): void {
  if (enabled) return;
  enabled = true;
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({
    // BENCH_TRACING_RATIO (default 1): share of producer traces sampled; the gateway and worker follow the parent.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(Number(process.env["BENCH_TRACING_RATIO"] ?? "1")) }),
    spanProcessors: [new BatchSpanProcessor(new CountingMemoryExporter())],
  }));
}

/** Spans exported in this process so far. */
export function spansInThisProcess(): number {
  return spanCount;
}

/**
 * Node arguments of a spawned gateway process: the tracing preload when tracing is on, plus
 * BENCH_GATEWAY_NODE_ARGS (space-separated, e.g. "--cpu-prof --cpu-prof-dir=.bench/prof" to profile it).
 */
export function gatewayNodeArgs(): string[] {
  const extra = (process.env["BENCH_GATEWAY_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
  return [...extra, ...(tracingRequested() ? ["--import", resolve(__dirname, "tracing-preload.mjs")] : [])];
}

/** Runs `fn` inside a producer span when tracing is on. */
export function asProducer<T>(fn: () => Promise<T>): Promise<T> {
  if (!tracingRequested()) return fn();
  return trace.getTracer("bench-producer").startActiveSpan("bench.produce", async (span) => {
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
}
