"""ClaimedTask: one execution attempt whose lease this worker holds (the TS SDK's vocabulary).

Finish a task with exactly one terminal operation — :meth:`complete`, :meth:`fail`,
:meth:`cancel` or :meth:`delay` — or let the worker do it from the handler's return value or
exception. Stop work when :attr:`cancelled` is set (cancelled by someone, lease lost, worker
shutdown; :attr:`abort_reason` says which). :class:`AsyncClaimedTask` is the same with ``async``
operations, for :class:`flowfabric.aio.AsyncWorker`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import Future
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import FlowFabricError, LocalReason
from .types import (
    AbortReason, AppendFrameResult, FailResult, Payload, SettleResult, Signal, SuspendResult, WaitpointToken, to_bytes,
)
from .v1 import common_pb2, signal_pb2, worker_pb2

#: Consecutive missed renewals after which :meth:`ClaimedTask.is_lease_healthy` turns False.
UNHEALTHY_AFTER_MISSED_RENEWALS = 3


class _TaskBase:
    """State and request builders shared by the sync and async tasks. Internal fields (``_state``
    and the renewal counters) change only under the engine's lock."""

    def __init__(self, task: worker_pb2.Task, engine, streams=None):
        fence = task.fence
        self._fence: common_pb2.Fence = fence
        self._engine = engine
        self._streams = streams  # a Client, for read_stream/tail_stream (created lazily by the worker)
        #: Execution id, "<partition>:<uuid>".
        self.execution_id: str = fence.execution_id
        #: Zero-based attempt index.
        self.attempt_index: int = task.attempt_index
        self.attempt_id: str = fence.attempt_id
        self.lease_id: str = fence.lease_id
        self.lease_epoch: int = fence.lease_epoch
        #: Input payload, byte-exact.
        self.input: bytes = task.input
        #: Kind chosen by the producer (e.g. "send-email").
        self.execution_kind: str = task.kind
        self.lane_id: str = task.lane
        self.namespace: str = task.namespace
        self.tags: Dict[str, str] = dict(task.tags)
        self.priority: int = task.priority
        #: True when this resumes an attempt that was delayed or suspended, rather than starting a new one.
        self.resumed: bool = task.resumed
        #: Why it resumed: "signal" (see resume_signals()), "timeout", "operator", "delay"; "" for a new attempt.
        self.resume_reason: str = task.resume_reason
        self.retry_count: int = task.retry_count
        self.created_at_ms: int = task.created_at_ms
        self.deadline_at_ms: int = task.deadline_at_ms
        #: W3C trace context of the gateway's dispatch span (empty when untraced).
        self.traceparent: str = task.traceparent
        self.tracestate: str = task.tracestate
        #: Set when the task must stop: cancelled, lease lost, or worker shutdown.
        self.cancelled = threading.Event()
        #: Why :attr:`cancelled` was set; None while it is not.
        self.abort_reason: Optional[AbortReason] = None
        self._lease_expires_at_ms: int = task.lease_expires_at_ms
        self._state = "running"  # running -> settling -> consumed | lost
        self._failures = 0
        self._renewed_since_tick = True
        self._lost_while_settling = False
        self._frame_seq = 0
        self._span = None  # the task's tracing span (flowfabric._tracing.TaskSpan)

    # -- reading ---------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """"running", "settling" (a terminal operation is in flight), "consumed" or "lost"."""
        return self._state

    @property
    def lease_expires_at_ms(self) -> int:
        """Last known lease expiry, in Unix milliseconds (gateway clock)."""
        return self._lease_expires_at_ms

    def input_text(self) -> str:
        """The input decoded as UTF-8."""
        return self.input.decode("utf-8")

    def input_json(self) -> Any:
        """The input decoded as JSON."""
        return json.loads(self.input or b"null")

    def is_lease_healthy(self) -> bool:
        """False once the lease is lost or the task is over, or after 3 heartbeat periods in a
        row without a successful renewal. Check it before irreversible side effects."""
        return self._state in ("running", "settling") and self._failures < UNHEALTHY_AFTER_MISSED_RENEWALS

    def consecutive_renewal_failures(self) -> int:
        return self._failures

    def read_stream(self, **kwargs):
        """Reads this attempt's frames (see :meth:`flowfabric.Client.read_stream`)."""
        return self._streams().read_stream(self.execution_id, self.attempt_index, **kwargs)

    def tail_stream(self, **kwargs):
        """Follows this attempt's frames live (see :meth:`flowfabric.Client.tail_stream`)."""
        return self._streams().tail_stream(self.execution_id, self.attempt_index, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.execution_id} attempt={self.attempt_index} {self._state}>"

    # -- request builders (each returns the operation's Future) ----------------------------------
    def _settle_headers(self):
        return self._span.headers() if self._span is not None else (self.traceparent, self.tracestate)

    def _op_complete(self, result: Optional[Payload]) -> Future:
        tp, ts = self._settle_headers()
        body = worker_pb2.CompleteTaskRequest(fence=self._fence, traceparent=tp, tracestate=ts)
        if result is not None:
            body.result = to_bytes(result)
        return self._engine.submit(self, "complete", body)

    def _op_fail(self, reason: str, category: str) -> Future:
        tp, ts = self._settle_headers()
        return self._engine.submit(self, "fail", worker_pb2.FailTaskRequest(
            fence=self._fence, reason=reason[:4096], category=category[:64], traceparent=tp, tracestate=ts))

    def _op_cancel(self, reason: str) -> Future:
        tp, ts = self._settle_headers()
        return self._engine.submit(self, "cancel", worker_pb2.CancelTaskRequest(
            fence=self._fence, reason=reason, traceparent=tp, tracestate=ts))

    def _op_delay(self, until_ms: Optional[int], delay_s: Optional[float]) -> Future:
        if until_ms is None:
            until_ms = int(time.time() * 1000 + (delay_s or 0) * 1000)
        return self._engine.submit(self, "delay", worker_pb2.DelayTaskRequest(
            fence=self._fence, delay_until_ms=max(0, int(until_ms))))

    def _op_suspend(self, wait_for: Union[str, Sequence[str]], mode: str, count: int, timeout_s: Optional[float],
                    on_timeout: str, reason_code: str, waitpoint_key: str) -> Future:
        tp, ts = self._settle_headers()
        names = [wait_for] if isinstance(wait_for, str) else list(wait_for)
        return self._engine.submit(self, "suspend", signal_pb2.SuspendTaskRequest(
            fence=self._fence, reason_code=reason_code, waitpoint_key=waitpoint_key, traceparent=tp, tracestate=ts,
            wait_for=signal_pb2.SignalCondition(signal_names=names, count=count,
                                                mode=signal_pb2.SignalMatchMode.Value(f"SIGNAL_MATCH_MODE_{mode.upper()}")),
            timeout_ms=int((timeout_s or 0) * 1000),
            on_timeout=signal_pb2.SuspensionTimeoutBehavior.Value(f"SUSPENSION_TIMEOUT_BEHAVIOR_{on_timeout.upper()}")))

    def _op_waitpoint(self, key: str, expires_in_s: Optional[float]) -> Future:
        return self._engine.submit(self, "create_waitpoint", signal_pb2.CreateWaitpointRequest(
            fence=self._fence, waitpoint_key=key, expires_in_ms=int((expires_in_s or 0) * 1000)))

    def _op_resume_signals(self) -> Future:
        return self._engine.submit(self, "resume_signals", signal_pb2.ResumeSignalsRequest(fence=self._fence))

    def _op_progress(self, percent: float, message: str) -> Future:
        return self._engine.submit(self, "update_progress", worker_pb2.UpdateProgressRequest(
            fence=self._fence, percent=percent, message=message))

    def _op_renew(self) -> Future:
        return self._engine.submit(self, "renew_lease", worker_pb2.RenewLeaseRequest(fence=self._fence))

    def _op_append(self, frame_type: str, payload: Payload, metadata: Optional[Mapping[str, str]],
                   correlation_id: str, durable: bool) -> Future:
        with self._engine.lock:  # numbered in call order: a re-send after a reconnect is not stored twice
            self._frame_seq += 1
            seq = self._frame_seq
        return self._engine.submit(self, "append_frame", worker_pb2.AppendFrameRequest(
            fence=self._fence, frame_type=frame_type, payload=to_bytes(payload), correlation_id=correlation_id,
            metadata=dict(metadata or {}), durable=durable, sequence=seq))

    # -- engine hooks (called under the engine's lock) -------------------------------------------
    def _check_running(self) -> Optional[FlowFabricError]:
        if self._state == "running":
            return None
        if self._state == "lost":
            r = self.abort_reason
            return FlowFabricError.local("FAILED_PRECONDITION", LocalReason.LEASE_LOST,
                                         f"the lease of {self.execution_id} is gone "
                                         f"({r.kind if r else 'lease_lost'}: {r.message if r else ''})")
        return FlowFabricError.local("FAILED_PRECONDITION", LocalReason.TASK_CONSUMED,
                                     f"task {self.execution_id} was already completed, failed, cancelled or delayed")

    def _renewed(self, lease_expires_at_ms: int) -> None:
        if lease_expires_at_ms > 0:
            self._lease_expires_at_ms = lease_expires_at_ms
        self._failures = 0
        self._renewed_since_tick = True

    def _tick(self) -> None:
        if not self._renewed_since_tick and self._state in ("running", "settling"):
            self._failures += 1
        self._renewed_since_tick = False

    def _abort(self, kind: str, message: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = AbortReason(kind, message)
            self.cancelled.set()
            self._aborted()

    def _aborted(self) -> None:
        """Hook for the async task's event."""


class ClaimedTask(_TaskBase):
    """A task for a synchronous handler: every operation blocks until the gateway answers and
    raises :class:`FlowFabricError` on refusal."""

    def complete(self, result: Optional[Payload] = None) -> SettleResult:
        """Completes the execution with an optional result (bytes, str as UTF-8, else JSON)."""
        return self._op_complete(result).result()

    def fail(self, reason: str, category: str = "error") -> FailResult:
        """Reports a failure; the execution's retry policy decides between a retry and a terminal
        failure (a category outside its ``retryable_categories`` is never retried)."""
        return self._op_fail(reason, category).result()

    def cancel(self, reason: str = "") -> SettleResult:
        """Cancels the execution as its lease holder."""
        return self._op_cancel(reason).result()

    def delay(self, until_ms: Optional[int] = None, *, delay_s: Optional[float] = None) -> None:
        """Releases the lease; the same attempt resumes at ``until_ms`` (Unix ms) or after ``delay_s``."""
        self._op_delay(until_ms, delay_s).result()

    def suspend(self, wait_for: Union[str, Sequence[str]] = (), *, mode: str = "any", count: int = 0,
                timeout_s: Optional[float] = None, on_timeout: str = "fail", reason_code: str = "",
                waitpoint_key: str = "") -> SuspendResult:
        """Suspends the attempt until signals named ``wait_for`` arrive (``mode`` "any", "all" or
        "count" with ``count``; no names: any signal). Outcome "suspended": the lease is released,
        return from the handler; the same attempt resumes later (``resumed``, ``resume_reason``,
        :meth:`resume_signals`) on a worker of the lane. Hand ``result.waitpoint`` (id and token)
        to whoever will send the signal (``Client.deliver_signal``). Outcome "already_satisfied":
        buffered signals met the condition; the task keeps running. ``on_timeout``: "fail",
        "cancel", "expire" or "resume"."""
        return self._op_suspend(wait_for, mode, count, timeout_s, on_timeout, reason_code, waitpoint_key).result()

    def create_waitpoint(self, key: str = "", *, expires_in_s: Optional[float] = None) -> WaitpointToken:
        """A pending waitpoint (and its token) whose signals are buffered until the next suspend."""
        return self._op_waitpoint(key, expires_in_s).result()

    def resume_signals(self) -> List[Signal]:
        """The signals that satisfied this attempt's last resume (empty when not resumed by signals)."""
        return self._op_resume_signals().result()

    def update_progress(self, percent: float, message: str = "") -> None:
        """Records progress (0..100 and a short message) on the execution record."""
        self._op_progress(percent, message).result()

    def renew_lease(self) -> int:
        """Renews the lease now (heartbeats already do); returns the new expiry (Unix ms)."""
        return self._op_renew().result()

    def append_frame(self, frame_type: str, payload: Payload, metadata: Optional[Mapping[str, str]] = None, *,
                     correlation_id: str = "", durable: bool = False, wait: bool = True):
        """Appends one output frame (a token, a log line...) to this attempt's stream. Frames are
        stored in call order. ``wait=False`` returns a ``concurrent.futures.Future`` at once
        instead of the :class:`AppendFrameResult`, so a handler can stream without a round trip
        per frame."""
        future = self._op_append(frame_type, payload, metadata, correlation_id, durable)
        return future.result() if wait else future


class AsyncClaimedTask(_TaskBase):
    """A task for an ``async`` handler (:class:`flowfabric.aio.AsyncWorker`): the same operations
    as :class:`ClaimedTask`, awaited. ``await task.wait_cancelled()`` waits for the stop signal."""

    def __init__(self, task, engine, streams=None, loop: Optional[asyncio.AbstractEventLoop] = None):
        super().__init__(task, engine, streams)
        self._loop = loop or asyncio.get_running_loop()
        self._cancelled_async = asyncio.Event()

    def _aborted(self) -> None:
        self._loop.call_soon_threadsafe(self._cancelled_async.set)

    async def wait_cancelled(self) -> AbortReason:
        """Returns once the task must stop (see :attr:`abort_reason`)."""
        await self._cancelled_async.wait()
        assert self.abort_reason is not None
        return self.abort_reason

    async def complete(self, result: Optional[Payload] = None) -> SettleResult:
        return await asyncio.wrap_future(self._op_complete(result))

    async def fail(self, reason: str, category: str = "error") -> FailResult:
        return await asyncio.wrap_future(self._op_fail(reason, category))

    async def cancel(self, reason: str = "") -> SettleResult:
        return await asyncio.wrap_future(self._op_cancel(reason))

    async def delay(self, until_ms: Optional[int] = None, *, delay_s: Optional[float] = None) -> None:
        await asyncio.wrap_future(self._op_delay(until_ms, delay_s))

    async def suspend(self, wait_for: Union[str, Sequence[str]] = (), *, mode: str = "any", count: int = 0,
                      timeout_s: Optional[float] = None, on_timeout: str = "fail", reason_code: str = "",
                      waitpoint_key: str = "") -> SuspendResult:
        return await asyncio.wrap_future(
            self._op_suspend(wait_for, mode, count, timeout_s, on_timeout, reason_code, waitpoint_key))

    async def create_waitpoint(self, key: str = "", *, expires_in_s: Optional[float] = None) -> WaitpointToken:
        return await asyncio.wrap_future(self._op_waitpoint(key, expires_in_s))

    async def resume_signals(self) -> List[Signal]:
        return await asyncio.wrap_future(self._op_resume_signals())

    async def update_progress(self, percent: float, message: str = "") -> None:
        await asyncio.wrap_future(self._op_progress(percent, message))

    async def renew_lease(self) -> int:
        return await asyncio.wrap_future(self._op_renew())

    async def append_frame(self, frame_type: str, payload: Payload, metadata: Optional[Mapping[str, str]] = None, *,
                           correlation_id: str = "", durable: bool = False) -> AppendFrameResult:
        """Appends one output frame; appends started without awaiting each other are stored in call order."""
        return await asyncio.wrap_future(self._op_append(frame_type, payload, metadata, correlation_id, durable))
