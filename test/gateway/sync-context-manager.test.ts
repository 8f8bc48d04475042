import { context, createContextKey, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createLogger } from "../../gateway/src/logger.js";
import { SyncContextManager } from "../../gateway/src/telemetry/sync-context-manager.js";
import { capturedLogs } from "../support/logs.js";

/** The gateway's context manager (npm start): the active context lasts for the synchronous extent of `with`. */
const KEY = createContextKey("test");
const ctx = (v: string) => ROOT_CONTEXT.setValue(KEY, v);

test("with() makes a context active while fn runs, nests, and restores the previous one (also on a throw)", () => {
  const cm = new SyncContextManager().enable();
  expect(cm.active()).toBe(ROOT_CONTEXT);
  const seen: unknown[] = [];
  const out = cm.with(ctx("outer"), (a: number, b: number) => {
    seen.push(cm.active().getValue(KEY));
    cm.with(ctx("inner"), () => seen.push(cm.active().getValue(KEY)));
    seen.push(cm.active().getValue(KEY));
    return a + b;
  }, undefined, 2, 3);
  expect(out).toBe(5);
  expect(seen).toEqual(["outer", "inner", "outer"]);
  expect(() => cm.with(ctx("boom"), () => { throw new Error("x"); })).toThrow("x");
  expect(cm.active()).toBe(ROOT_CONTEXT);
});

test("the context does not follow an await (synchronous extent only); bind() keeps it for later calls", async () => {
  const cm = new SyncContextManager().enable();
  const after = await cm.with(ctx("a"), async () => {
    await Promise.resolve();
    return cm.active().getValue(KEY);
  });
  expect(after).toBeUndefined();
  const bound = cm.bind(ctx("b"), (x: number) => [x, cm.active().getValue(KEY)]);
  expect(bound(1)).toEqual([1, "b"]);
  const obj = { k: 1 };
  expect(cm.bind(ctx("c"), obj)).toBe(obj);
});

test("registered globally: a log line written inside an active span carries its ids", () => {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
  context.setGlobalContextManager(new SyncContextManager().enable());
  try {
    const log = createLogger("info");
    const span = provider.getTracer("t").startSpan("s");
    const [inside, outside] = capturedLogs(() => {
      context.with(trace.setSpan(context.active(), span), () => log.info("inside"));
      log.info("outside");
    });
    span.end();
    expect(inside).toMatchObject({ msg: "inside", trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    expect(outside).not.toHaveProperty("trace_id");
  } finally {
    context.disable();
  }
});
