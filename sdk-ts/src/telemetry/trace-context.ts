import {
  context, createTraceState, isSpanContextValid, ProxyTracerProvider, ROOT_CONTEXT, SpanStatusCode, trace,
  type Context, type Span, type SpanContext, type SpanOptions, type Tracer, type TracerProvider,
} from "@opentelemetry/api";

/**
 * Tracing helpers on `@opentelemetry/api` only (the application picks the SDK and exporter).
 *
 * The protocol carries trace context as W3C `traceparent`/`tracestate` strings (request metadata
 * and message fields), so they are formatted and parsed here directly: no global propagator has
 * to be registered for FlowFabric's own hops to join one trace.
 */

/** W3C trace context strings; empty strings mean "none". */
export interface TraceHeaders {
  readonly traceparent: string;
  readonly tracestate: string;
}

const NO_HEADERS: TraceHeaders = Object.freeze({ traceparent: "", tracestate: "" });
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/**
 * True when a tracer provider other than the API's no-op is in place. Callers check it before
 * building attributes or parsing trace context, so tracing costs nothing when it is off.
 */
export function tracingEnabled(provider: TracerProvider = trace.getTracerProvider()): boolean {
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer("flowfabric") !== undefined;
}

/** The W3C `traceparent` of a span context: "00-<trace id>-<span id>-<flags>". */
export function formatTraceparent(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/** Trace headers of a span context; empty when it is invalid. */
export function headersOfSpanContext(spanContext: SpanContext | undefined): TraceHeaders {
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return NO_HEADERS;
  return { traceparent: formatTraceparent(spanContext), tracestate: spanContext.traceState?.serialize() ?? "" };
}

/** Trace headers of the span active in `ctx` (default: the active context); empty when none. */
export function traceHeaders(ctx: Context = context.active()): TraceHeaders {
  return headersOfSpanContext(trace.getSpanContext(ctx));
}

/** Parses a W3C `traceparent` (and `tracestate`) into a remote span context; undefined when absent or malformed. */
export function parseTraceparent(traceparent: string, tracestate = ""): SpanContext | undefined {
  if (traceparent === "") return undefined;
  const m = TRACEPARENT.exec(traceparent);
  if (m === null || m[1] === "ff") return undefined;
  const spanContext: SpanContext = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: parseInt(m[4]!, 16) & 0x01,
    isRemote: true,
    ...(tracestate !== "" ? { traceState: createTraceState(tracestate) } : {}),
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** `base` with the parsed remote span as its active span; `base` itself when the traceparent is absent or malformed. */
export function contextFromTraceparent(traceparent: string, tracestate = "", base: Context = ROOT_CONTEXT): Context {
  const spanContext = parseTraceparent(traceparent, tracestate);
  return spanContext === undefined ? base : trace.setSpanContext(base, spanContext);
}

/**
 * The one span helper: starts `name` under `parent`, runs `fn` with the span active (so spans
 * started inside nest under it), records a thrown error or rejection (status ERROR, exception
 * event) and ends the span when `fn` returns or its promise settles.
 */
export function withSpan<T>(tracer: Tracer, name: string, options: SpanOptions, parent: Context, fn: (span: Span) => T): T {
  const span = tracer.startSpan(name, options, parent);
  let result: T;
  try {
    result = context.with(trace.setSpan(parent, span), fn, undefined, span);
  } catch (error) {
    endWithError(span, error);
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value: unknown) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        endWithError(span, error);
        throw error;
      },
    ) as T;
  }
  span.end();
  return result;
}

/** Records `error` on `span` (status ERROR, exception event) and ends it. */
export function endWithError(span: Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  span.recordException(error instanceof Error ? error : { message });
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}
