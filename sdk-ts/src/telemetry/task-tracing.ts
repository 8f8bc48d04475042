import {
  metrics, ROOT_CONTEXT, SpanKind, trace,
  type Attributes, type Context, type Histogram, type MeterProvider, type SpanOptions, type Tracer, type TracerProvider,
} from "@opentelemetry/api";
import {
  ATTR_ATTEMPT_INDEX, ATTR_EXECUTION_ID, ATTR_EXECUTION_KIND, ATTR_LANE, ATTR_NAMESPACE, ATTR_OUTCOME, ATTR_RETRY_COUNT,
  ATTR_TRACE_MODE, ATTR_WORKER_ID, METRIC_TASK_HANDLER_DURATION, SCOPE_VERSION, SDK_SCOPE, SECONDS_BUCKETS, SPAN_TASK,
  TRACE_MODE_TAG,
} from "./attributes.js";
import { parseTraceparent, tracingEnabled } from "./trace-context.js";

/**
 * How a worker's `flowfabric.task` span joins the execution's trace:
 * - "child": a child of the gateway's dispatch span, itself a child of the producer's span (one trace);
 * - "link": the root of a new trace, with a span link to the dispatch span (keeps huge fan-outs
 *   and long-running work out of the producer's trace).
 */
export type TraceMode = "child" | "link";

/** What a task span is built from (the fields of a ClaimedTask it reads). */
export interface TracedTask {
  readonly executionId: string;
  readonly attemptIndex: number;
  readonly executionKind: string;
  readonly laneId: string;
  readonly namespace: string;
  readonly retryCount: number;
  readonly tags: Readonly<Record<string, string>>;
  readonly traceparent: string;
  readonly tracestate: string;
}

/**
 * A worker's telemetry: the tracer for task spans and the handler-duration histogram, created
 * once per worker through `@opentelemetry/api` (the global providers unless the worker options
 * name others).
 */
export class TaskTelemetry {
  readonly #tracerProvider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #handlerDuration: Histogram;

  constructor(
    private readonly workerId: string,
    private readonly traceMode: TraceMode,
    tracerProvider: TracerProvider | undefined,
    meterProvider: MeterProvider | undefined,
  ) {
    this.#tracerProvider = tracerProvider ?? trace.getTracerProvider();
    this.#tracer = this.#tracerProvider.getTracer(SDK_SCOPE, SCOPE_VERSION);
    this.#handlerDuration = (meterProvider ?? metrics.getMeterProvider()).getMeter(SDK_SCOPE, SCOPE_VERSION).createHistogram(METRIC_TASK_HANDLER_DURATION, {
      description: "Time a task handler ran, from its start to its return or throw",
      unit: "s",
      advice: { explicitBucketBoundaries: [...SECONDS_BUCKETS] },
    });
  }

  /** The tracer of task spans. */
  get tracer(): Tracer {
    return this.#tracer;
  }

  /** True when a tracer provider is in place (checked per task, so a provider registered later is picked up). */
  get tracing(): boolean {
    return tracingEnabled(this.#tracerProvider);
  }

  /** Records one handler run. */
  handlerDone(task: TracedTask, seconds: number, ok: boolean): void {
    this.#handlerDuration.record(seconds, { [ATTR_NAMESPACE]: task.namespace, [ATTR_LANE]: task.laneId, [ATTR_OUTCOME]: ok ? "ok" : "error" });
  }

  /**
   * Name, options and parent context of a task's span. The execution's tag `flowfabric.trace_mode`
   * overrides the worker's mode. Without a (valid) traceparent the span is a root either way.
   */
  taskSpan(task: TracedTask): { readonly name: string; readonly options: SpanOptions; readonly parent: Context } {
    const tagged = task.tags[TRACE_MODE_TAG];
    const mode: TraceMode = tagged === "link" || tagged === "child" ? tagged : this.traceMode;
    const remote = parseTraceparent(task.traceparent, task.tracestate);
    const attributes: Attributes = {
      [ATTR_EXECUTION_ID]: task.executionId,
      [ATTR_ATTEMPT_INDEX]: task.attemptIndex,
      [ATTR_EXECUTION_KIND]: task.executionKind,
      [ATTR_LANE]: task.laneId,
      [ATTR_NAMESPACE]: task.namespace,
      [ATTR_RETRY_COUNT]: task.retryCount,
      [ATTR_WORKER_ID]: this.workerId,
      [ATTR_TRACE_MODE]: mode,
    };
    if (mode === "link" || remote === undefined) {
      return {
        name: SPAN_TASK,
        options: { kind: SpanKind.CONSUMER, root: true, attributes, links: remote === undefined ? [] : [{ context: remote }] },
        parent: ROOT_CONTEXT,
      };
    }
    return { name: SPAN_TASK, options: { kind: SpanKind.CONSUMER, attributes }, parent: trace.setSpanContext(ROOT_CONTEXT, remote) };
  }
}
