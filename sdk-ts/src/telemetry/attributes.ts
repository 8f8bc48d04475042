/**
 * Names of FlowFabric's spans, span attributes and metric instruments, shared by the SDK and the
 * gateway (docs/observability.md lists them with their meaning).
 */

/** Instrumentation scope of the SDK (tracer and meter name). */
export const SDK_SCOPE = "flowfabric-sdk";
/** Instrumentation scope of the gateway. */
export const GATEWAY_SCOPE = "flowfabric-gateway";
/** Version reported with both scopes. */
export const SCOPE_VERSION = "0.1.0";

/** Execution id, "<partition>:<uuid>". */
export const ATTR_EXECUTION_ID = "flowfabric.execution.id";
/** Execution kind chosen by the producer. */
export const ATTR_EXECUTION_KIND = "flowfabric.execution.kind";
/** Zero-based attempt index. */
export const ATTR_ATTEMPT_INDEX = "flowfabric.attempt.index";
/** Retries consumed so far. */
export const ATTR_RETRY_COUNT = "flowfabric.retry.count";
/** Lane (queue) name. */
export const ATTR_LANE = "flowfabric.lane";
/** Namespace. */
export const ATTR_NAMESPACE = "flowfabric.namespace";
/** Worker identity (`Hello.worker_id`). */
export const ATTR_WORKER_ID = "flowfabric.worker.id";
/** Worker process identity (`Hello.instance_id`). */
export const ATTR_WORKER_INSTANCE_ID = "flowfabric.worker.instance_id";
/** Session id assigned by the gateway. */
export const ATTR_SESSION_ID = "flowfabric.session.id";
/** Why a session ended. */
export const ATTR_SESSION_CLOSE_REASON = "flowfabric.session.close_reason";
/** Gateway identity. */
export const ATTR_GATEWAY_ID = "flowfabric.gateway.id";
/**
 * How an operation or task ended: completed, failed, retry_scheduled, cancelled, delayed, lost,
 * error (a refused operation), ok / error (handler duration).
 */
export const ATTR_OUTCOME = "flowfabric.outcome";
/** Failure category reported by fail. */
export const ATTR_FAILURE_CATEGORY = "flowfabric.failure.category";
/** Error reason of a refused operation (e.g. STALE_LEASE). */
export const ATTR_ERROR_REASON = "flowfabric.error.reason";
/** Trace mode of a task span: "child" or "link". */
export const ATTR_TRACE_MODE = "flowfabric.trace_mode";

/**
 * Execution tag that overrides the worker's trace mode for one execution ("child" or "link");
 * set through `ExecutionSpec.traceMode`.
 */
export const TRACE_MODE_TAG = "flowfabric.trace_mode";

/** Waitpoint id of a signal delivery. */
export const ATTR_WAITPOINT_ID = "flowfabric.waitpoint.id";
/** Signal name of a signal delivery. */
export const ATTR_SIGNAL_NAME = "flowfabric.signal.name";
/** What a signal delivery did: accepted, triggered_resume, duplicate. */
export const ATTR_SIGNAL_EFFECT = "flowfabric.signal.effect";

/** Span names. */
export const SPAN_TASK = "flowfabric.task";
/** A signal delivered to an execution: in the execution's trace, linked to the sender's. */
export const SPAN_SIGNAL = "flowfabric.signal";
export const SPAN_DISPATCH = "flowfabric.dispatch";
export const SPAN_SESSION = "flowfabric.session";

const OPERATION_SPAN_NAMES = new Map<string, string>();

/** Span name of a task operation (`SessionRequest.body` case, e.g. "renewLease" -> "flowfabric.renew_lease"). */
export function operationSpanName(operation: string): string {
  let name = OPERATION_SPAN_NAMES.get(operation);
  if (name === undefined) {
    name = `flowfabric.${operation.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
    if (OPERATION_SPAN_NAMES.size < 64) OPERATION_SPAN_NAMES.set(operation, name);
  }
  return name;
}

/** Metric instrument names (Prometheus: dots become underscores, counters get `_total`). */
export const METRIC_TASK_HANDLER_DURATION = "flowfabric.task.handler.duration";
export const METRIC_DISPATCH_LATENCY = "flowfabric.dispatch.latency";
export const METRIC_CLAIMS = "flowfabric.claims";
export const METRIC_COMPLETIONS = "flowfabric.completions";
export const METRIC_FAILURES = "flowfabric.failures";
export const METRIC_RETRIES = "flowfabric.retries";
export const METRIC_CANCELLATIONS = "flowfabric.cancellations";
export const METRIC_LEASE_RENEWALS = "flowfabric.lease.renewals";
export const METRIC_LEASE_RENEWAL_FAILURES = "flowfabric.lease.renewal_failures";
export const METRIC_LEASES_LOST = "flowfabric.leases.lost";
export const METRIC_SESSIONS_LIVE = "flowfabric.sessions.live";
export const METRIC_LEASES_ACTIVE = "flowfabric.leases.active";
export const METRIC_ELIGIBLE_DEPTH = "flowfabric.queue.eligible_depth";
export const METRIC_FRAMES_APPENDED = "flowfabric.frames.appended";

/** Histogram buckets for latencies and durations, in seconds (0.5 ms .. 60 s). */
export const SECONDS_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);
