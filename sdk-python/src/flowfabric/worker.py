"""The thread-based worker: one Session stream, handlers in a thread pool.

Threads: a connection manager (opens sessions, follows drains, reconnects with backoff), one
reader per stream (hands gateway messages to the engine), one ticker (heartbeats every
``heartbeat_interval_ms``, pings when idle), and ``max_concurrent_tasks`` handler threads.
"""

from __future__ import annotations

import logging
import queue
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Optional

import grpc

from ._engine import Engine
from ._rpc import bind
from ._runner import run_sync
from .errors import FATAL_STREAM_CODES, FlowFabricError, LocalReason
from .options import WorkerOptions
from .task import ClaimedTask
from .v1 import worker_pb2

log = logging.getLogger("flowfabric.worker")

#: A session that stayed up this long resets the reconnect backoff, in seconds.
BACKOFF_RESET_S = 10.0
#: Largest batch of requests sent as one message (docs/protocol.md, "Batching").
BATCH_MAX_REQUESTS = 1000
BATCH_MAX_BYTES = 256 * 1024

Handler = Callable[[ClaimedTask], object]


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Full-jitter exponential backoff: random(0, min(max, initial * 2^(attempt-1)))."""
    return random.uniform(0, min(max_s, initial_s * 2 ** min(attempt - 1, 30)))


def batch_requests(first: worker_pb2.SessionRequest, more: list) -> worker_pb2.SessionRequest:
    """``first`` alone, or ``first`` and ``more`` as one batch message."""
    if not more:
        return first
    return worker_pb2.SessionRequest(batch=worker_pb2.SessionRequestBatch(requests=[first, *more]))


class _Stream:
    """One Session stream: an outbox feeding grpc's request iterator, and a reader thread."""

    def __init__(self, worker: "Worker", number: int):
        self.worker = worker
        self.number = number
        self.outbox: "queue.SimpleQueue[Optional[worker_pb2.SessionRequest]]" = queue.SimpleQueue()
        self.welcome: Optional[worker_pb2.Welcome] = None
        self.welcomed = threading.Event()
        self.ended = threading.Event()
        self.draining = threading.Event()
        self.code: Optional[str] = None
        self.details = ""
        self.last_sent = time.monotonic()
        self._closed = False
        self._call = None

    def start(self, hello: worker_pb2.Hello) -> None:
        self.outbox.put(worker_pb2.SessionRequest(hello=hello))
        self._call = self.worker._session_rpc(self._requests(), metadata=self.worker.options.channel.metadata())
        threading.Thread(target=self._read, name=f"ff-reader-{self.number}", daemon=True).start()

    def send(self, request: worker_pb2.SessionRequest) -> None:
        if not self._closed:
            self.last_sent = time.monotonic()
            self.outbox.put(request)

    def drained(self, drain: worker_pb2.Drain) -> None:
        self.worker._emit("drain", reason=drain.reason, grace_ms=drain.grace_ms)
        self.draining.set()

    def close(self) -> None:
        """Half-closes the request side (the gateway then ends the stream)."""
        if not self._closed:
            self._closed = True
            self.outbox.put(None)

    def cancel(self) -> None:
        self.close()
        if self._call is not None:
            self._call.cancel()

    def _requests(self):
        batching = False
        while True:
            request = self.outbox.get()
            if request is None:
                return
            if not batching and self.welcome is not None:
                batching = self.worker.options.batching and self.welcome.batching
            more, size = [], request.ByteSize()
            while batching and len(more) < BATCH_MAX_REQUESTS - 1 and size < BATCH_MAX_BYTES:
                try:
                    nxt = self.outbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    yield batch_requests(request, more)
                    return
                more.append(nxt)
                size += nxt.ByteSize()
            yield batch_requests(request, more)

    def _read(self) -> None:
        engine = self.worker._engine
        try:
            for resp in self._call:
                if resp.WhichOneof("body") == "welcome":
                    self.welcome = resp.welcome
                    self.welcomed.set()
                    continue
                for task in engine.handle(resp, self):
                    self.worker._start_task(task)
            self.code = "OK"
        except grpc.RpcError as err:
            error = FlowFabricError.from_rpc_error(err)
            self.code, self.details = error.code, f"{error.reason}: {error.message}"
        except Exception as err:  # a bug must not wedge the worker: end this stream, reconnect
            log.exception("session reader crashed")
            self.code, self.details = "INTERNAL", repr(err)
        finally:
            self._closed = True
            self.ended.set()
            self.welcomed.set()


class Worker:
    """A FlowFabric worker running handlers in threads.

    >>> worker = Worker("127.0.0.1:50051", lanes=["default"], max_concurrent_tasks=8)
    >>> @worker.task("greet")
    ... def greet(task):
    ...     return {"hello": task.input_json()["name"]}
    >>> worker.run()   # blocks; SIGTERM/SIGINT drain it gracefully

    Keyword arguments are :class:`flowfabric.options.WorkerOptions` fields.
    """

    def __init__(self, address: str = "127.0.0.1:50051", **options):
        self.options = WorkerOptions(address=address, **options)
        self._handlers: Dict[str, Handler] = {}
        self._default: Optional[Handler] = None
        self._engine = Engine(self.options, self._new_task, self._emit)
        self._channel = self.options.channel.channel()
        self._session_rpc = bind(self._channel, "WorkerService.Session")
        self._pool = ThreadPoolExecutor(self.options.max_concurrent_tasks, thread_name_prefix="ff-task")
        self._stream: Optional[_Stream] = None
        self._closed = threading.Event()  # no more sessions
        self._stopped = threading.Event()  # stop() finished
        self._first_welcome = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_started = False
        self._signals = 0
        self._threads: list = []
        self._client = None
        #: Why the worker gave up (a fatal refusal or max_reconnect_attempts), else None.
        self.fatal: Optional[FlowFabricError] = None

    # -- handlers --------------------------------------------------------------------------------
    def task(self, kind: Optional[str] = None):
        """Decorator: registers a handler for executions of ``kind`` (None: every other kind)."""
        def register(fn: Handler) -> Handler:
            if kind is None:
                self._default = fn
            else:
                self._handlers[kind] = fn
            return fn
        return register

    # -- running ---------------------------------------------------------------------------------
    def start(self, handler: Optional[Handler] = None, *, wait_welcome_s: Optional[float] = None) -> "Worker":
        """Connects and runs in background threads; returns at once (or once welcomed, with
        ``wait_welcome_s``: raises NOT_CONNECTED if no session was welcomed in time)."""
        if handler is not None:
            self._default = handler
        if self._default is None and not self._handlers:
            raise ValueError("no handler: pass one to run()/start() or register one with @worker.task(kind)")
        for target, name in ((self._connection_loop, "ff-connection"), (self._ticker, "ff-ticker")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if wait_welcome_s is not None and not self.wait_welcomed(wait_welcome_s):
            self.stop(0)
            raise self.fatal or FlowFabricError.local("UNAVAILABLE", LocalReason.NOT_CONNECTED,
                                                      f"no session welcomed at {self.options.address}")
        return self

    def wait_welcomed(self, timeout_s: Optional[float] = None) -> bool:
        """True once a session was welcomed (False on timeout or when the worker gave up)."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._first_welcome.is_set() and not self._closed.is_set():
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            self._first_welcome.wait(0.05 if left is None else min(0.05, left))
        return self._first_welcome.is_set()

    def run(self, handler: Optional[Handler] = None) -> None:
        """Runs until :meth:`stop`, SIGTERM/SIGINT (with ``handle_signals``) or a fatal error;
        then drains gracefully. Raises the fatal :class:`FlowFabricError`, if any."""
        restore = self._install_signals() if self.options.handle_signals else None
        try:
            self.start(handler)
            while not self._closed.is_set() and not self._stop_started:
                self._closed.wait(0.2)
            self.stop()
        finally:
            if restore:
                restore()
        if self.fatal is not None:
            raise self.fatal

    def stop(self, grace_s: Optional[float] = None) -> None:
        """Graceful shutdown: credit 0 (no new work; later pushes are not acked and go back to the
        queue), running tasks get ``grace_s`` (default ``options.grace_s``) to finish, then their
        ``cancelled`` event is set and they are handed back with ``delay`` (same attempt, no retry
        consumed) once their handler returns; then the stream is half-closed. Idempotent; blocks."""
        with self._stop_lock:
            first = not self._stop_started
            self._stop_started = True
        if not first:
            self._stopped.wait()
            return
        grace = self.options.grace_s if grace_s is None else grace_s
        self._emit("stopping", running=self._engine.held_count(), grace_s=grace)
        self._engine.begin_stop()
        self._wait_idle(grace)
        with self._engine.lock:
            leftover = list(self._engine.tasks.values())
            for task in leftover:
                task._abort("shutdown", "the worker is shutting down")
        if leftover:
            log.warning("grace over with %d task(s) running: handing them back", len(leftover))
            self._wait_idle(min(5.0, max(grace, 1.0)))
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.close()
            stream.ended.wait(2.0)
            stream.cancel()
        self._engine.fail_all_pending("the worker stopped")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._channel.close()
        if self._client is not None:
            self._client.close()
        self._emit("stopped", fatal=str(self.fatal or ""))
        self._stopped.set()

    close = stop

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def client(self):
        """A :class:`flowfabric.Client` on the same gateway (used by ``task.read_stream``)."""
        if self._client is None:
            from .client import Client

            c = self.options.channel
            self._client = Client(c.address, namespace=self.options.namespace, auth_token=c.auth_token, tls=c.tls,
                                  channel_options=c.channel_options)
        return self._client

    @property
    def active_task_count(self) -> int:
        return self._engine.held_count()

    # -- internals -------------------------------------------------------------------------------
    def _emit(self, event: str, **fields) -> None:
        hook = self.options.on_event
        if hook is not None:
            try:
                hook(event, fields)
            except Exception:  # noqa: BLE001 - a hook must not break the worker
                log.exception("on_event hook raised")

    def _new_task(self, pushed: worker_pb2.Task) -> ClaimedTask:
        return ClaimedTask(pushed, self._engine, lambda: self.client)

    def _start_task(self, task: ClaimedTask) -> None:
        handler = self._handlers.get(task.execution_kind, self._default)
        if handler is None:
            handler = _unknown_kind
        try:
            self._pool.submit(run_sync, task, handler, self.options.worker_id, self.options.trace_mode, self._emit)
        except RuntimeError:  # the pool is shut down: the lease lapses and the gateway requeues
            pass

    def _wait_idle(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        with self._engine.idle:
            while self._engine.tasks and self._signals < 2:
                left = end - time.monotonic()
                if left <= 0:
                    return
                self._engine.idle.wait(min(left, 0.1))

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_signal(signum, _frame):
            self._signals += 1  # a second signal cuts the grace short
            threading.Thread(target=self.stop, name="ff-stop", daemon=True).start()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]

    def _connection_loop(self) -> None:
        attempt, number = 0, 0
        o = self.options
        while not self._closed.is_set():
            number += 1
            stream = _Stream(self, number)
            hello, held = self._engine.hello()
            stream.start(hello)
            stream.welcomed.wait(o.welcome_timeout_s)
            if stream.welcome is not None and not self._closed.is_set():
                info = self._engine.welcomed(stream.welcome, held, stream.send)
                previous, self._stream = self._stream, stream
                if previous is not None and previous is not stream:
                    previous.close()  # a drained stream: its answers still arrive until the gateway ends it
                self._emit("welcome", **info)
                self._first_welcome.set()
                welcomed_at = time.monotonic()
                while not (stream.ended.is_set() or stream.draining.is_set() or self._closed.is_set()):
                    stream.ended.wait(0.1)
                if self._closed.is_set():
                    return
                if stream.draining.is_set() and not stream.ended.is_set():
                    self._emit("reconnecting", attempt=0, delay_s=0.0, code="DRAINING")
                    continue  # rule 12: a new session at once; operations move there once welcomed
                self._engine.detach(stream.send)
                self._emit("stream_ended", code=stream.code, details=stream.details)
                if time.monotonic() - welcomed_at > BACKOFF_RESET_S:
                    attempt = 0
            else:
                if not stream.ended.is_set():
                    stream.code, stream.details = "DEADLINE_EXCEEDED", "no Welcome in time"
                stream.cancel()
                if self._closed.is_set():
                    return
            if stream.code in FATAL_STREAM_CODES:
                return self._give_up(FlowFabricError(stream.code, f"the gateway refused the session: {stream.details}"))
            attempt += 1
            if o.max_reconnect_attempts and attempt > o.max_reconnect_attempts:
                return self._give_up(FlowFabricError.local(
                    "UNAVAILABLE", LocalReason.NOT_CONNECTED,
                    f"gave up after {attempt - 1} attempts; is a FlowFabric gateway listening on {o.address}?"))
            delay = backoff_s(attempt, o.backoff_initial_s, o.backoff_max_s)
            self._emit("reconnecting", attempt=attempt, delay_s=delay, code=stream.code, details=stream.details)
            if self._closed.wait(delay):
                return

    def _give_up(self, error: FlowFabricError) -> None:
        log.error("%s", error)
        self.fatal = error
        with self._engine.lock:
            tasks = list(self._engine.tasks.values())
        for task in tasks:
            self._engine.lose(task, "lease_lost", "the worker gave up reconnecting", fail_pending=True)
        self._closed.set()

    def _ticker(self) -> None:
        next_beat = None
        nonce = 0
        while not self._closed.wait(0.05):
            stream, welcome = self._stream, self._engine.welcome
            if stream is None or welcome is None or stream.ended.is_set():
                continue
            now = time.monotonic()
            beat_s = max(welcome.heartbeat_interval_ms or 10_000, 50) / 1000
            if next_beat is None:
                next_beat = now + beat_s
            if now >= next_beat:
                stream.send(self._engine.heartbeat())
                next_beat = now + beat_s
            elif now - stream.last_sent >= max(welcome.keepalive_interval_ms or 15_000, 100) / 1000:
                nonce += 1
                stream.send(worker_pb2.SessionRequest(ping=worker_pb2.Ping(nonce=nonce)))


def _unknown_kind(task: ClaimedTask):
    from ._runner import TaskFailure

    raise TaskFailure(f"no handler for kind {task.execution_kind!r}", "unknown_kind")
