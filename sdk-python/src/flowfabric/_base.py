"""What the threaded and the asyncio worker share besides the engine: handler registry, events,
the connection loop's decisions (fatal refusals, backoff), the ticker's schedule, and shutdown
bookkeeping. Each worker adds only its I/O (threads and queues, or asyncio tasks on grpc.aio).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, Dict, Optional, Tuple

from ._engine import Engine
from .errors import FATAL_STREAM_CODES, FlowFabricError, LocalReason
from .options import WorkerOptions
from .v1 import worker_pb2

log = logging.getLogger("flowfabric.worker")

#: A session that stayed up this long resets the reconnect backoff, in seconds.
BACKOFF_RESET_S = 10.0
#: Largest batch of requests sent as one message (docs/protocol.md, "Batching").
BATCH_MAX_REQUESTS = 1000
BATCH_MAX_BYTES = 256 * 1024


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Full-jitter exponential backoff: random(0, min(max, initial * 2^(attempt-1)))."""
    return random.uniform(0, min(max_s, initial_s * 2 ** min(attempt - 1, 30)))


def batch_requests(first: worker_pb2.SessionRequest, more: list) -> worker_pb2.SessionRequest:
    """``first`` alone, or ``first`` and ``more`` as one batch message."""
    if not more:
        return first
    return worker_pb2.SessionRequest(batch=worker_pb2.SessionRequestBatch(requests=[first, *more]))


class StreamBase:
    """What both workers' streams share: state, the drain and welcome handling, the hand-off of
    gateway messages to the engine, batch gathering. ``event`` makes their Events (threading or
    asyncio); subclasses add the I/O."""

    def __init__(self, worker, number: int, event: Callable[[], object]):
        self.worker = worker
        self.number = number
        self.welcome: Optional[worker_pb2.Welcome] = None
        self.welcomed = event()
        self.ended = event()
        self.draining = event()
        self.code: Optional[str] = None
        self.details = ""
        self.error: Optional[FlowFabricError] = None  # how the stream ended, when with an error status
        self.last_sent = time.monotonic()
        self._closed = False
        self._call = None

    def drained(self, drain: worker_pb2.Drain) -> None:
        self.worker._emit("drain", reason=drain.reason, grace_ms=drain.grace_ms)
        self.draining.set()

    def cancel(self) -> None:
        self.close()
        if self._call is not None:
            self._call.cancel()

    def close(self) -> None:
        raise NotImplementedError

    def received(self, resp: worker_pb2.SessionResponse) -> None:
        """One gateway message: the Welcome is kept; everything else goes to the engine."""
        if resp.WhichOneof("body") == "welcome":
            self.welcome = resp.welcome
            self.welcomed.set()
            return
        for task in self.worker._engine.handle(resp, self):
            self.worker._start_task(task)

    def ended_with(self, error: BaseException) -> None:
        e = self.error = FlowFabricError.from_rpc_error(error)
        self.code, self.details = e.code, f"{e.reason}: {e.message}"

    def gather(self, first: worker_pb2.SessionRequest, get_nowait: Callable, empty: type,
               put_back: Callable) -> worker_pb2.SessionRequest:
        """``first`` plus what is queued right now, as one batch message, when batching is on
        (opt-in, and the Welcome accepts it); the close marker (None) is put back for the next read."""
        if not (self.worker.options.batching and self.welcome is not None and self.welcome.batching):
            return first
        more, size = [], first.ByteSize()
        while len(more) < BATCH_MAX_REQUESTS - 1 and size < BATCH_MAX_BYTES:
            try:
                nxt = get_nowait()
            except empty:
                break
            if nxt is None:
                put_back(None)
                break
            more.append(nxt)
            size += nxt.ByteSize()
        return batch_requests(first, more)


class Ticker:
    """Heartbeats every ``heartbeat_interval_ms`` (rule 6), a Ping after ``keepalive_interval_ms``
    without sending anything (rule 11); both intervals come from the Welcome."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._next_beat: Optional[float] = None
        self._nonce = 0

    def due(self, stream) -> Optional[worker_pb2.SessionRequest]:
        welcome = self._engine.welcome
        if stream is None or welcome is None or stream.ended.is_set():
            return None
        now = time.monotonic()
        beat_s = max(welcome.heartbeat_interval_ms or 10_000, 50) / 1000
        if self._next_beat is None:
            self._next_beat = now + beat_s
        if now >= self._next_beat:
            self._next_beat = now + beat_s
            return self._engine.heartbeat()
        if now - stream.last_sent >= max(welcome.keepalive_interval_ms or 15_000, 100) / 1000:
            self._nonce += 1
            return worker_pb2.SessionRequest(ping=worker_pb2.Ping(nonce=self._nonce))
        return None


class WorkerBase:
    """Shared by :class:`flowfabric.Worker` and :class:`flowfabric.aio.AsyncWorker`."""

    def __init__(self, address: str, options: dict):
        self.options = WorkerOptions(address=address, **options)
        self._handlers: Dict[str, Callable] = {}
        self._default: Optional[Callable] = None
        self._engine = Engine(self.options, self._new_task, self._emit)
        self._ticker_state = Ticker(self._engine)
        self._client = None
        #: Why the worker gave up (a fatal refusal or max_reconnect_attempts), else None.
        self.fatal: Optional[FlowFabricError] = None

    def task(self, kind: Optional[str] = None):
        """Decorator: registers a handler for executions of ``kind`` (None: every other kind)."""
        def register(fn: Callable) -> Callable:
            if kind is None:
                self._default = fn
            else:
                self._handlers[kind] = fn
            return fn
        return register

    @property
    def client(self):
        """A :class:`flowfabric.Client` on the same gateway (``task.read_stream`` uses it)."""
        if self._client is None:
            from .client import Client

            c = self.options.channel
            self._client = Client(c.address, namespace=self.options.namespace, auth_token=c.auth_token, tls=c.tls,
                                  channel_options=c.channel_options)
        return self._client

    @property
    def active_task_count(self) -> int:
        """Tasks this worker holds (running or settling)."""
        return self._engine.held_count()

    def _new_task(self, pushed: worker_pb2.Task):
        raise NotImplementedError

    def _set_handler(self, handler: Optional[Callable]) -> None:
        if handler is not None:
            self._default = handler
        if self._default is None and not self._handlers:
            raise ValueError("no handler: pass one to run()/start() or register one with @worker.task(kind)")

    def _handler_for(self, kind: str, unknown: Callable) -> Callable:
        return self._handlers.get(kind, self._default) or unknown

    def _emit(self, event: str, **fields) -> None:
        hook = self.options.on_event
        if hook is not None:
            try:
                hook(event, fields)
            except Exception:  # noqa: BLE001 - a hook must not break the worker
                log.exception("on_event hook raised")

    def _welcomed(self, stream, held: list) -> float:
        """Installs a welcomed stream; returns the time it was welcomed."""
        info = self._engine.welcomed(stream.welcome, held, stream.send)
        previous, self._stream = self._stream, stream
        if previous is not None and previous is not stream:
            previous.close()  # a drained stream: its answers still arrive until the gateway ends it
        self._emit("welcome", **info)
        return time.monotonic()

    def _after_stream(self, stream, attempt: int, welcomed_at: Optional[float]) -> Tuple[int, Optional[float]]:
        """After a stream ended or was never welcomed: (next attempt number, backoff in seconds),
        or delay None when the worker gives up (fatal refusal, max_reconnect_attempts)."""
        o = self.options
        if welcomed_at is not None:
            self._engine.detach(stream.send)
            self._emit("stream_ended", code=stream.code, details=stream.details)
            if time.monotonic() - welcomed_at > BACKOFF_RESET_S:
                attempt = 0
        if stream.code in FATAL_STREAM_CODES:
            e = stream.error or FlowFabricError(stream.code, stream.details)
            self._give_up(FlowFabricError(e.code, f"the gateway refused the session: {e.message}", e.reason,
                                          e.field or "", e.metadata))
            return attempt, None
        attempt += 1
        if o.max_reconnect_attempts and attempt > o.max_reconnect_attempts:
            self._give_up(FlowFabricError.local(
                "UNAVAILABLE", LocalReason.NOT_CONNECTED,
                f"gave up after {attempt - 1} attempts; is a FlowFabric gateway listening on {o.address}?"))
            return attempt, None
        delay = backoff_s(attempt, o.backoff_initial_s, o.backoff_max_s)
        self._emit("reconnecting", attempt=attempt, delay_s=delay, code=stream.code, details=stream.details)
        return attempt, delay

    def _give_up(self, error: FlowFabricError) -> None:
        log.error("%s", error)
        self.fatal = error
        with self._engine.lock:
            tasks = list(self._engine.tasks.values())
        for task in tasks:
            self._engine.lose(task, "lease_lost", "the worker gave up reconnecting", fail_pending=True)
        self._closed.set()

    def _shutdown_leftovers(self) -> int:
        """Grace over: sets every remaining task's ``cancelled`` (kind "shutdown"); their runners
        hand them back with ``delay`` once the handlers return."""
        with self._engine.lock:
            leftover = list(self._engine.tasks.values())
            for task in leftover:
                task._abort("shutdown", "the worker is shutting down")
        if leftover:
            log.warning("grace over with %d task(s) running: handing them back", len(leftover))
        return len(leftover)

    def _not_welcomed(self) -> FlowFabricError:
        return self.fatal or FlowFabricError.local("UNAVAILABLE", LocalReason.NOT_CONNECTED,
                                                   f"no session welcomed at {self.options.address}")
