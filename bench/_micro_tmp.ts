import { trace, ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { contextFromTraceparent } from "../sdk-ts/src/telemetry/trace-context.js";
const exporter = new InMemorySpanExporter();
const kind = process.env["P"] ?? "simple";
const p = kind === "simple" ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter, { maxQueueSize: 100000, maxExportBatchSize: 512 });
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [p] }));
const t = trace.getTracer("x");
const N = 100000;
const parent = contextFromTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
for (let r = 0; r < 3; r++) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const s = t.startSpan("flowfabric.dispatch", { kind: SpanKind.PRODUCER, attributes: { a: "x", b: 1, c: "y", d: "z" } }, parent);
    s.end();
    if (i % 10000 === 0) exporter.reset();
  }
  const c = process.cpuUsage(c0);
  console.log(kind, ((c.user + c.system) / N).toFixed(2), "us/span");
}
