"""Runs a handler on a task and settles the task from its outcome (one rule for both workers).

- The handler returns: complete with the value (bytes as is, str as UTF-8, None = no result,
  anything else as JSON).
- The handler raises: fail with ``str(error)`` and the error's ``category`` attribute (default
  "error"); :class:`TaskFailure` sets both explicitly.
- The handler already settled the task, or its lease is gone: nothing more is sent.
- The worker is shutting down and the handler stopped: the task is handed back with ``delay``
  until now (same attempt, no retry consumed), as docs/protocol.md asks.
- A refused completion (e.g. PAYLOAD_TOO_LARGE) fails the task instead; a transient error
  (UNAVAILABLE...) is retried with backoff.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Callable, Tuple

from . import _tracing
from .errors import FlowFabricError

SETTLE_ATTEMPTS = 5


class TaskFailure(Exception):
    """Raise from a handler to fail the attempt with an explicit ``category`` (matched against the
    retry policy's ``retryable_categories``)."""

    def __init__(self, reason: str, category: str = "error"):
        super().__init__(reason)
        self.category = category


def _plan(task, outcome: Tuple[bool, Any]):
    """What to send after the handler: (builder, args) or None."""
    if task.state != "running":
        return None
    reason = task.abort_reason
    if reason is not None and reason.kind == "shutdown":
        return task._op_delay, (None, 0.0)
    ok, value = outcome
    if ok:
        return task._op_complete, (value,)
    message = str(value) or type(value).__name__
    category = getattr(value, "category", None)
    return task._op_fail, (message, category if isinstance(category, str) and category else "error")


def _after_error(task, error: FlowFabricError, attempt: int, builder):
    """The next (builder, args) after a refused settle, or None."""
    if task.state != "running":
        return None
    if error.retryable and attempt < SETTLE_ATTEMPTS:
        return builder, None  # same again
    if builder == task._op_complete:
        return task._op_fail, (error.message, "error")
    return None


def run_sync(task, handler: Callable, worker_id: str, trace_mode: str, emit) -> None:
    """Runs ``handler(task)`` in this thread and settles the task. Never raises."""
    with _tracing.task_span(task, worker_id, trace_mode) as span:
        task._span = span
        try:
            outcome = (True, handler(task))
        except Exception as error:  # noqa: BLE001 - a handler error fails the attempt
            span.record_error(error)
            outcome = (False, error)
            emit("handler_error", execution_id=task.execution_id, error=repr(error))
        plan = _plan(task, outcome)
        attempt, args = 0, None
        while plan is not None:
            builder, new_args = plan
            args = new_args if new_args is not None else args
            attempt += 1
            try:
                builder(*args).result()
                return
            except FlowFabricError as error:
                emit("settle_failed", execution_id=task.execution_id, error=error)
                plan = _after_error(task, error, attempt, builder)
                if plan is not None and plan[1] is None:
                    time.sleep(random.uniform(0, min(5.0, 0.1 * 2 ** attempt)))


async def run_async(task, handler: Callable, worker_id: str, trace_mode: str, emit) -> None:
    """Awaits ``handler(task)`` and settles the task. Never raises (except CancelledError)."""
    with _tracing.task_span(task, worker_id, trace_mode) as span:
        task._span = span
        try:
            outcome = (True, await handler(task))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001
            span.record_error(error)
            outcome = (False, error)
            emit("handler_error", execution_id=task.execution_id, error=repr(error))
        plan = _plan(task, outcome)
        attempt, args = 0, None
        while plan is not None:
            builder, new_args = plan
            args = new_args if new_args is not None else args
            attempt += 1
            try:
                await asyncio.wrap_future(builder(*args))
                return
            except FlowFabricError as error:
                emit("settle_failed", execution_id=task.execution_id, error=error)
                plan = _after_error(task, error, attempt, builder)
                if plan is not None and plan[1] is None:
                    await asyncio.sleep(random.uniform(0, min(5.0, 0.1 * 2 ** attempt)))

