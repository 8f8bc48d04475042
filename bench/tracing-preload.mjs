/**
 * `--tracing` in the gateway process (loaded with `node --import` after tsx): registers what
 * `npm start` registers when it traces (gateway/src/telemetry/otel-setup.ts) — a tracer provider
 * with a BatchSpanProcessor, here into bench/tracing.ts's in-memory exporter, and the synchronous
 * context manager — before main.ts runs, so the gateway traces every execution as it would with a
 * real exporter, minus the network. With BENCH_TRACING_REPORT set, the number of spans exported
 * is written to that file at exit.
 */
import { writeFileSync } from "node:fs";
import { SyncContextManager } from "../gateway/src/telemetry/sync-context-manager.ts";
import { enableTracing, spansInThisProcess } from "./tracing.ts";

enableTracing(new SyncContextManager());
const report = process.env["BENCH_TRACING_REPORT"];
if (report) process.on("exit", () => writeFileSync(report, `${spansInThisProcess()}\n`));
