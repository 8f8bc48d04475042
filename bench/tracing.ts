/**
 * `npm run bench -- --tracing` (BENCH_TRACING=1): FlowFabric with tracing on, every span going to
 * an in-memory exporter, to measure the overhead against a run without it (DESIGN §9/§11,
 * docs/observability.md). The bench process (producer client, worker) registers an SDK tracer
 * provider here; the gateway process loads bench/tracing-preload.mjs for the same. Each
 * pre-create batch runs inside a producer span, so every execution carries a trace context and
 * gets the full chain: producer -> dispatch -> task -> complete (plus the unary RPC spans).
 */
import { resolve } from "node:path";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

export function tracingRequested(): boolean {
  return process.env["BENCH_TRACING"] === "1";
}

let exporter: InMemorySpanExporter | undefined;
let spanCount = 0;

/** Registers the in-memory tracer provider in this process (once). */
export function enableTracing(): void {
  if (exporter !== undefined) return;
  exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor(exporter);
  const onEnd = processor.onEnd.bind(processor);
  const mem = exporter;
  processor.onEnd = (span) => {
    onEnd(span);
    if (++spanCount % 10_000 === 0) mem.reset();
  };
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }));
}

/** Spans ended in this process so far. */
export function spansInThisProcess(): number {
  return spanCount;
}

/** Node arguments that make a spawned gateway process trace too (none when tracing is off). */
export function gatewayNodeArgs(): string[] {
  return tracingRequested() ? ["--import", resolve(__dirname, "tracing-preload.mjs")] : [];
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
