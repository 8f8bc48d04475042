import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span, type Tracer } from "@opentelemetry/api";
import {
  ATTR_ATTEMPT_INDEX, ATTR_ERROR_REASON, ATTR_EXECUTION_ID, ATTR_EXECUTION_KIND, ATTR_GATEWAY_ID, ATTR_LANE, ATTR_NAMESPACE,
  ATTR_OUTCOME, ATTR_SESSION_ID, ATTR_SIGNAL_EFFECT, ATTR_SIGNAL_NAME, ATTR_WAITPOINT_ID, ATTR_WORKER_ID, ATTR_WORKER_INSTANCE_ID, contextFromTraceparent, GATEWAY_SCOPE,
  headersOfSpanContext, operationOfPath, parseTraceparent, SCOPE_VERSION, SPAN_DISPATCH, SPAN_SESSION, SPAN_SIGNAL, type Task, tracingEnabled, withSpan,
  type WorkerOperation,
} from "@flowfabric/sdk/wire";
import type { Grant } from "../engine/types.js";
import { GatewayError } from "../errors.js";
import type { CallContext } from "../rpc/call-context.js";
import type { GatewayMetrics } from "./gateway-metrics.js";

/** The session fields a dispatch span reads. */
export interface TracedSession {
  readonly id: string;
  readonly workerId: string;
  readonly instanceId: string;
  readonly namespace: string;
}

/** A W3C trace context as carried in protocol fields ("" = none). */
export interface TraceHeaders {
  readonly traceparent: string;
  readonly tracestate: string;
}

/** A task operation request, as far as tracing is concerned. */
interface OperationRequest {
  readonly fence?: { readonly executionId: string } | undefined;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/**
 * The gateway's spans, through `@opentelemetry/api` only, and its instruments ({@link metrics}). Every method checks {@link tracing} first: with no tracer provider registered, nothing is
 * parsed, allocated or started per task.
 *
 * - `flowfabric.session` (SERVER): one per worker stream, child of the worker's `traceparent`
 *   metadata if any; ends when the stream does. Never a parent: per-task spans link to it.
 * - `flowfabric.dispatch` (PRODUCER): claim -> push of one task, child of the producer's span
 *   stored with the execution; the pushed task carries its context.
 * - `flowfabric.<operation>` (SERVER): complete, fail, cancel, delay, renew_lease, append_frame, … —
 *   child of the worker's task span (the request's `traceparent`) or, without one, of the task's
 *   dispatch span; linked to the session span. Never a root of its own.
 * - unary RPCs (SERVER): `<service>/<method>`, child of the request's `traceparent` field or metadata.
 * - `flowfabric.signal` (INTERNAL): a signal stored for an execution, child of the execution's
 *   stored trace context (so a suspended-then-resumed execution stays one trace), linked to the
 *   sender's span.
 */
export class GatewayTelemetry {
  readonly #tracer: Tracer = trace.getTracer(GATEWAY_SCOPE, SCOPE_VERSION);

  constructor(readonly metrics: GatewayMetrics, private readonly gatewayId: string, private readonly leaseTtlMs: number) {}

  /** True when a tracer provider is registered. */
  get tracing(): boolean {
    return tracingEnabled();
  }

  /** Starts a session's span; undefined when tracing is off. */
  startSession(session: TracedSession, header: (name: string) => string | undefined): Span | undefined {
    if (!this.tracing) return undefined;
    const parent = contextFromTraceparent(header("traceparent") ?? "", header("tracestate") ?? "");
    return this.#tracer.startSpan(SPAN_SESSION, {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR_SESSION_ID]: session.id, [ATTR_WORKER_ID]: session.workerId, [ATTR_WORKER_INSTANCE_ID]: session.instanceId,
        [ATTR_NAMESPACE]: session.namespace, [ATTR_GATEWAY_ID]: this.gatewayId,
      },
    }, parent);
  }

  /**
   * Records a push of `grants` (built into `tasks`, same order) on `session`: the claims counter,
   * the dispatch latency of first attempts and, when tracing, one dispatch span per task whose
   * context replaces the task's traceparent. The grants of one push come from one claim, so from
   * one queue.
   */
  dispatched(grants: readonly Grant[], tasks: Task[], session: TracedSession, sessionSpan: Span | undefined): void {
    const first = grants[0];
    if (first === undefined) return;
    const queue = this.metrics.queue(first.namespace, first.lane);
    this.metrics.claims.add(grants.length, queue);
    const nowMs = Date.now();
    for (const g of grants) {
      if (g.attemptIndex === 0 && !g.resumed && g.createdAtMs > 0) this.metrics.dispatchLatency.record(Math.max(0, nowMs - g.createdAtMs) / 1000, queue);
    }
    if (!this.tracing) return;
    const links: Link[] = sessionSpan === undefined ? [] : [{ context: sessionSpan.spanContext() }];
    grants.forEach((g, i) => {
      const span = this.#tracer.startSpan(SPAN_DISPATCH, {
        kind: SpanKind.PRODUCER,
        // The lease was granted leaseTtlMs before its expiry (the claim's commit, store clock).
        startTime: Math.min(nowMs, g.leaseExpiresAtMs - this.leaseTtlMs),
        links,
        attributes: {
          // The session's own attributes (id, instance, gateway) are on the linked session span.
          [ATTR_EXECUTION_ID]: g.fence.executionId, [ATTR_ATTEMPT_INDEX]: g.attemptIndex, [ATTR_EXECUTION_KIND]: g.kind,
          [ATTR_LANE]: g.lane, [ATTR_NAMESPACE]: g.namespace, [ATTR_WORKER_ID]: session.workerId,
        },
      }, contextFromTraceparent(g.traceparent, g.tracestate));
      const headers = headersOfSpanContext(span.spanContext());
      const task = tasks[i];
      if (task !== undefined && headers.traceparent !== "") {
        task.traceparent = headers.traceparent;
        task.tracestate = headers.tracestate || g.tracestate;
      }
      span.end();
    });
  }

  /**
   * Records a delivered signal in the execution's trace (the store answered with its context),
   * linked to the sender's context; `startMs` is when the delivery began.
   */
  signalDelivered(startMs: number, d: {
    readonly executionId: string; readonly waitpointId: string; readonly name: string; readonly effect: string;
    readonly executionTraceparent: string; readonly executionTracestate: string;
    readonly senderTraceparent: string; readonly senderTracestate: string;
  }): void {
    if (!this.tracing) return;
    const sender = parseTraceparent(d.senderTraceparent, d.senderTracestate);
    this.#tracer.startSpan(SPAN_SIGNAL, {
      kind: SpanKind.INTERNAL,
      startTime: startMs,
      links: sender === undefined ? [] : [{ context: sender }],
      attributes: {
        [ATTR_EXECUTION_ID]: d.executionId, [ATTR_WAITPOINT_ID]: d.waitpointId, [ATTR_SIGNAL_NAME]: d.name,
        [ATTR_SIGNAL_EFFECT]: d.effect, [ATTR_GATEWAY_ID]: this.gatewayId,
      },
    }, contextFromTraceparent(d.executionTraceparent, d.executionTracestate)).end();
  }

  /**
   * Starts the span of an operation received on a Session stream. Its parent is the request's own
   * `traceparent` (the worker's task span) or else `task`'s: the context pushed with the task (the
   * dispatch span). An operation with neither (tracing off, or an adopted lease without one) gets
   * no span rather than a one-span trace of its own.
   */
  startOperation(operation: WorkerOperation, request: OperationRequest, sessionSpan: Span | undefined, task: TraceHeaders | undefined): Span | undefined {
    if (!this.tracing) return undefined;
    const own = request.traceparent !== undefined && request.traceparent !== "";
    const traceparent = own ? request.traceparent! : task?.traceparent ?? "";
    if (traceparent === "") return undefined;
    const parent = contextFromTraceparent(traceparent, own ? request.tracestate ?? "" : task?.tracestate ?? "");
    if (parent === ROOT_CONTEXT) return undefined;
    return this.#tracer.startSpan(operation.spanName, {
      kind: SpanKind.SERVER,
      links: sessionSpan === undefined ? [] : [{ context: sessionSpan.spanContext() }],
      attributes: { [ATTR_EXECUTION_ID]: request.fence?.executionId ?? "" },
    }, parent);
  }

  /** Ends an operation span: the outcome of a success (`response`), or the error's reason. */
  endOperation(span: Span | undefined, operation: WorkerOperation, response: unknown, error?: GatewayError): void {
    if (span === undefined) return;
    if (error !== undefined) {
      span.setAttribute(ATTR_ERROR_REASON, error.reason);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    } else {
      const outcome = outcomeOf(operation, response);
      if (outcome !== undefined) span.setAttribute(ATTR_OUTCOME, outcome);
    }
    span.end();
  }

  /**
   * Runs a unary RPC handler inside its span (`path` is "/<service>/<method>"). The parent is the
   * request's own `traceparent` field when it has one, else the call's metadata.
   */
  rpc<T>(path: string, request: unknown, ctx: Pick<CallContext, "traceparent" | "tracestate">, fn: () => Promise<T>): Promise<T> {
    if (!this.tracing) return fn();
    const slash = path.lastIndexOf("/");
    const service = path.slice(1, slash);
    const method = path.slice(slash + 1);
    const operation = operationOfPath(path);
    const fields = (request ?? {}) as OperationRequest;
    const own = typeof fields.traceparent === "string" && fields.traceparent !== "";
    const parent = own ? contextFromTraceparent(fields.traceparent!, fields.tracestate ?? "") : contextFromTraceparent(ctx.traceparent, ctx.tracestate);
    const attributes: Attributes = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
    if (fields.fence?.executionId) attributes[ATTR_EXECUTION_ID] = fields.fence.executionId;
    return withSpan(this.#tracer, operation !== undefined ? operation.spanName : `${service}/${method}`, { kind: SpanKind.SERVER, attributes }, parent, async (span) => {
      try {
        const response = await fn();
        const outcome = operation === undefined ? undefined : outcomeOf(operation, response);
        if (outcome !== undefined) span.setAttribute(ATTR_OUTCOME, outcome);
        return response;
      } catch (err) {
        span.setAttribute(ATTR_ERROR_REASON, GatewayError.from(err).reason);
        throw err;
      }
    });
  }
}

/** Outcome attribute of a successful task operation (its table entry's); undefined when it has none. */
function outcomeOf(operation: WorkerOperation, response: unknown): string | undefined {
  return (operation.outcome as (r: unknown) => string | undefined)(response);
}
