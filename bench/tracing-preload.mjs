/**
 * `--tracing` in the gateway process (loaded with `node --import` after tsx): registers what
 * `npm start` registers when it traces (gateway/src/telemetry/otel-setup.ts) — a tracer provider
 * with a BatchSpanProcessor, here into an in-memory exporter, and the synchronous context
 * manager — before main.ts runs, so the gateway traces every execution as it would with a real
 * exporter, minus the network. With BENCH_TRACING_REPORT set, the number of spans exported is
 * written to that file at exit.
 */
import { writeFileSync } from "node:fs";
import { context, trace } from "@opentelemetry/api";
import { SyncContextManager } from "../gateway/src/telemetry/sync-context-manager.ts";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, ParentBasedSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base";

let count = 0;
/** Counts the spans of each batch, then drops them, as a network exporter would once they are sent. */
class CountingMemoryExporter extends InMemorySpanExporter {
  export(spans, resultCallback) {
    count += spans.length;
    super.export(spans, resultCallback);
    this.reset(); // like a network exporter, keep nothing once a batch is "sent"
  }
}
context.setGlobalContextManager(new SyncContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({
  sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(Number(process.env["BENCH_TRACING_RATIO"] ?? "1")) }),
  spanProcessors: [new BatchSpanProcessor(new CountingMemoryExporter())],
}));
const report = process.env["BENCH_TRACING_REPORT"];
if (report) process.on("exit", () => writeFileSync(report, `${count}\n`));
