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
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional, Tuple

from . import _tracing

SETTLE_ATTEMPTS = 5


class TaskFailure(Exception):
    """Raise from a handler to fail the attempt with an explicit ``category`` (matched against the
    retry policy's ``retryable_categories``)."""

    def __init__(self, reason: str, category: str = "error"):
        super().__init__(reason)
        self.category = category


def _plan(task, outcome: Tuple[bool, Any]):
    """What to send after the handler: (builder, args), or None."""
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


def settle(task, outcome: Tuple[bool, Any], emit) -> Future:
    """Sends what the handler's outcome asks for; the future resolves once the task is settled
    (or nothing more can be done). Runs on the engine's answers (callbacks), so a thread waits on
    it and asyncio awaits it alike."""
    done: Future = Future()

    def step(plan: Optional[tuple], attempt: int) -> None:
        if plan is None:
            done.set_result(None)
            return
        builder, args = plan

        def answered(future: Future) -> None:
            error = future.exception()
            if error is None:
                done.set_result(None)
                return
            emit("settle_failed", execution_id=task.execution_id, error=error)
            if task.state != "running":
                done.set_result(None)
            elif getattr(error, "retryable", False) and attempt < SETTLE_ATTEMPTS:
                backoff = random.uniform(0, min(5.0, 0.1 * 2 ** attempt))
                threading.Timer(backoff, step, ((builder, args), attempt + 1)).start()
            elif builder == task._op_complete:  # a refused result (e.g. too large): fail instead
                step((task._op_fail, (getattr(error, "message", str(error)), "error")), attempt + 1)
            else:
                done.set_result(None)

        try:
            future = builder(*args)
        except Exception as error:  # noqa: BLE001 - e.g. a result that is not JSON-serializable
            future = Future()
            future.set_exception(error)
        future.add_done_callback(answered)

    step(_plan(task, outcome), 1)
    return done


def run_sync(task, handler: Callable, worker_id: str, trace_mode: str, emit) -> None:
    """Runs ``handler(task)`` in this thread and settles the task. Never raises."""
    with _tracing.task_span(task, worker_id, trace_mode) as span:
        task._span = span
        try:
            outcome = (True, handler(task))
        except Exception as error:  # noqa: BLE001 - a handler error fails the attempt
            outcome = _failed(task, span, error, emit)
        settle(task, outcome, emit).result()


async def run_async(task, handler: Callable, worker_id: str, trace_mode: str, emit) -> None:
    """Awaits ``handler(task)`` and settles the task. Never raises (except CancelledError)."""
    with _tracing.task_span(task, worker_id, trace_mode) as span:
        task._span = span
        try:
            outcome = (True, await handler(task))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a handler error fails the attempt
            outcome = _failed(task, span, error, emit)
        await asyncio.wrap_future(settle(task, outcome, emit))


def _failed(task, span, error: Exception, emit) -> Tuple[bool, Any]:
    span.record_error(error)
    emit("handler_error", execution_id=task.execution_id, error=repr(error))
    return False, error
