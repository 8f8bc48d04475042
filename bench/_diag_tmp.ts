import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess } from "../gateway/src/embedded/server-process.js";
import { startGateway } from "../gateway/src/index.js";
import { FlowFabricClient, FlowFabricWorker } from "../sdk-ts/src/index.js";

const mode = process.env["MODE"] ?? "off";
const exporter = new InMemorySpanExporter();
let spans = 0;
if (mode === "full" || mode === "alsonly") context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
if (mode === "full" || mode === "noals") {
  const p = new BatchSpanProcessor(exporter, { maxQueueSize: 20000 });
  const onEnd = p.onEnd.bind(p);
  p.onEnd = (s) => { onEnd(s); if (++spans % 5000 === 0) setTimeout(() => exporter.reset(), 0); };
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [p] }));
}
(async () => {
  const server = await startServerProcess({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "diag-")), persistence: false });
  const gw = await startGateway({ valkeyUrl: server.url, grpcPort: 0, httpPort: 0 });
  const client = await FlowFabricClient.connect({ address: gw.grpcAddress });
  const n = Number(process.env["N"] ?? 10000);
  const conc = Number(process.env["C"] ?? 10);
  const tracer = trace.getTracer("p");
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < n; i += 1000) {
      await tracer.startActiveSpan("produce", async (s) => { await client.createExecutions(Array.from({ length: Math.min(1000, n - i) }, () => ({ lane: `l${round}`, input: "x" }))); s.end(); });
    }
    let done = 0; let resolve!: () => void; const all = new Promise<void>((r) => (resolve = r));
    const cpu0 = process.cpuUsage(); const t0 = performance.now();
    const w = await FlowFabricWorker.connect({ address: gw.grpcAddress, workerId: "w", lanes: [`l${round}`], maxConcurrentTasks: conc });
    void w.run(async () => { if (++done === n) resolve(); return "ok"; });
    await all;
    const ms = performance.now() - t0; const cpu = process.cpuUsage(cpu0);
    if (round === 1) console.log(`${mode} c=${conc}: ${Math.round(n / (ms / 1000))} jobs/s, cpu ${((cpu.user + cpu.system) / n).toFixed(0)} us/item, spans ${spans}`);
    await w.close({ graceMs: 1000 });
  }
  client.close(); await gw.close(0); await server.stop();
})();
