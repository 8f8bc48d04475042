"""Trace propagation through ``opentelemetry-api`` when it is installed; plain W3C headers otherwise.

- Producer: ``Client.create_execution`` sends the caller's active context as ``traceparent``
  metadata; the gateway stores it with the execution.
- Worker: each handler runs inside a ``flowfabric.task`` span started from the pushed task's
  ``traceparent`` (a child, or a new root with a link when ``trace_mode="link"``); complete, fail
  and cancel carry that span's context, so the gateway's operation span is its child.
- Without opentelemetry-api, the settle requests carry the task's own ``traceparent`` (the
  gateway's dispatch span), so the gateway's spans still join the producer's trace.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Tuple

try:  # optional dependency
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - depends on the environment
    _propagate = None
    _trace = None

ENABLED = _trace is not None
TRACER_NAME = "flowfabric-python"


def current_headers() -> Tuple[str, str]:
    """(traceparent, tracestate) of the caller's active span; empty without OpenTelemetry."""
    if _propagate is None:
        return "", ""
    carrier: Dict[str, str] = {}
    _propagate.inject(carrier)
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")


def metadata() -> list:
    tp, ts = current_headers()
    if not tp:
        return []
    return [("traceparent", tp)] + ([("tracestate", ts)] if ts else [])


class TaskSpan:
    """The span a task runs in (a no-op holder of the task's own headers without OpenTelemetry)."""

    def __init__(self, span, fallback: Tuple[str, str]):
        self.span = span
        self._fallback = fallback

    def headers(self) -> Tuple[str, str]:
        """(traceparent, tracestate) that settle requests carry."""
        if self.span is None or _propagate is None:
            return self._fallback
        carrier: Dict[str, str] = {}
        _propagate.inject(carrier, context=_trace.set_span_in_context(self.span))
        return carrier.get("traceparent", "") or self._fallback[0], carrier.get("tracestate", "")

    def set_outcome(self, outcome: str) -> None:
        if self.span is not None:
            self.span.set_attribute("flowfabric.outcome", outcome)

    def record_error(self, error: BaseException) -> None:
        if self.span is not None:
            self.span.record_exception(error)
            self.span.set_status(_trace.Status(_trace.StatusCode.ERROR, str(error)))


@contextlib.contextmanager
def task_span(task, worker_id: str, trace_mode: str = "child") -> Iterator[TaskSpan]:
    """Runs the block inside the task's ``flowfabric.task`` span (current while it runs)."""
    fallback = (task.traceparent, task.tracestate)
    if _trace is None:
        yield TaskSpan(None, fallback)
        return
    carrier = {"traceparent": task.traceparent, "tracestate": task.tracestate} if task.traceparent else {}
    parent = _propagate.extract(carrier)
    mode = task.tags.get("flowfabric.trace_mode", trace_mode)
    links = []
    if mode == "link":
        span_ctx = _trace.get_current_span(parent).get_span_context()
        links = [_trace.Link(span_ctx)] if span_ctx.is_valid else []
        parent = None
    attributes = {
        "flowfabric.execution.id": task.execution_id, "flowfabric.execution.kind": task.execution_kind,
        "flowfabric.lane": task.lane_id, "flowfabric.attempt.index": task.attempt_index,
        "flowfabric.worker.id": worker_id,
    }
    tracer = _trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span("flowfabric.task", context=parent, kind=_trace.SpanKind.CONSUMER,
                                      links=links, attributes=attributes, record_exception=False,
                                      set_status_on_exception=False) as span:
        yield TaskSpan(span, fallback)


def noop_span(task) -> TaskSpan:
    return TaskSpan(None, (task.traceparent, task.tracestate))

