/**
 * `--tracing` in the gateway process (loaded with `node --import`): registers an SDK tracer
 * provider exporting to memory and the AsyncLocalStorage context manager, before main.ts runs,
 * so the gateway traces every execution as it would with a real exporter (minus the network).
 * With BENCH_TRACING_REPORT set, the number of spans is written to that file at exit.
 */
import { writeFileSync } from "node:fs";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

const exporter = new InMemorySpanExporter();
let count = 0;
// Keep memory flat over long runs: count, then drop, every 10,000 spans.
const processor = new SimpleSpanProcessor(exporter);
const onEnd = processor.onEnd.bind(processor);
processor.onEnd = (span) => {
  onEnd(span);
  if (++count % 10_000 === 0) exporter.reset();
};
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }));
const report = process.env["BENCH_TRACING_REPORT"];
if (report) process.on("exit", () => writeFileSync(report, `${count}\n`));
