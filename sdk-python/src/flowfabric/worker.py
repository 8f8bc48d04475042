"""The thread-based worker: one Session stream, handlers in a thread pool.

Threads: a connection manager (opens sessions, follows drains, reconnects with backoff), one
reader per stream (hands gateway messages to the engine), one ticker (heartbeats and idle pings),
and ``max_concurrent_tasks`` handler threads.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import grpc

from ._base import StreamBase, WorkerBase
from ._rpc import bind
from ._runner import TaskFailure, run_sync
from .task import ClaimedTask
from .v1 import worker_pb2

log = logging.getLogger("flowfabric.worker")

Handler = Callable[[ClaimedTask], object]


class _Stream(StreamBase):
    """One Session stream: an outbox feeding grpc's request iterator, and a reader thread."""

    def __init__(self, worker: "Worker", number: int):
        super().__init__(worker, number, threading.Event)
        self.outbox: "queue.SimpleQueue[Optional[worker_pb2.SessionRequest]]" = queue.SimpleQueue()

    def start(self, hello: worker_pb2.Hello) -> None:
        self.outbox.put(worker_pb2.SessionRequest(hello=hello))
        self._call = self.worker._session_rpc(self._requests(), metadata=self.worker.options.channel.metadata())
        threading.Thread(target=self._read, name=f"ff-reader-{self.number}", daemon=True).start()

    def send(self, request: worker_pb2.SessionRequest) -> None:
        if not self._closed:
            self.last_sent = time.monotonic()
            self.outbox.put(request)

    def close(self) -> None:
        """Half-closes the request side (the gateway then ends the stream)."""
        if not self._closed:
            self._closed = True
            self.outbox.put(None)

    def _requests(self):
        """grpc's request iterator (consumed by grpc's own thread)."""
        while True:
            request = self.outbox.get()
            if request is None:
                return
            yield self.gather(request, self.outbox.get_nowait, queue.Empty, self.outbox.put)

    def _read(self) -> None:
        try:
            for resp in self._call:
                self.received(resp)
            self.code = "OK"
        except grpc.RpcError as err:
            self.ended_with(err)
        except Exception as err:  # noqa: BLE001 - a bug must not wedge the worker: end this stream, reconnect
            log.exception("session reader crashed")
            self.code, self.details = "INTERNAL", repr(err)
        finally:
            self.close()  # ends grpc's request-iterator thread
            self.ended.set()
            self.welcomed.set()


class Worker(WorkerBase):
    """A FlowFabric worker running handlers in threads.

    >>> worker = Worker("127.0.0.1:50051", lanes=["default"], max_concurrent_tasks=8)
    >>> @worker.task("greet")
    ... def greet(task):
    ...     return {"hello": task.input_json()["name"]}
    >>> worker.run()   # blocks; SIGTERM/SIGINT drain it gracefully

    Keyword arguments are :class:`flowfabric.options.WorkerOptions` fields.
    """

    def __init__(self, address: str = "127.0.0.1:50051", **options):
        super().__init__(address, options)
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

    # -- running ---------------------------------------------------------------------------------
    def start(self, handler: Optional[Handler] = None, *, wait_welcome_s: Optional[float] = None) -> "Worker":
        """Connects and runs in background threads; returns at once, or once a session is
        welcomed with ``wait_welcome_s`` (raises NOT_CONNECTED if none was in time)."""
        self._set_handler(handler)
        for target, name in ((self._connection_loop, "ff-connection"), (self._ticker, "ff-ticker")):
            threading.Thread(target=target, name=name, daemon=True).start()
        if wait_welcome_s is not None and not self.wait_welcomed(wait_welcome_s):
            self.stop(0)
            raise self._not_welcomed()
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
        ``cancelled`` event is set and each is handed back with ``delay`` (same attempt, no retry
        consumed) once its handler returns; then the stream is half-closed. Idempotent; blocks."""
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
        if self._shutdown_leftovers():
            self._wait_idle(min(5.0, max(grace, 1.0)))
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.close()
            stream.ended.wait(2.0)
            stream.cancel()
        self._engine.close("the worker stopped")
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

    # -- internals -------------------------------------------------------------------------------
    def _new_task(self, pushed: worker_pb2.Task) -> ClaimedTask:
        return ClaimedTask(pushed, self._engine, lambda: self.client)

    def _start_task(self, task: ClaimedTask) -> None:
        handler = self._handler_for(task.execution_kind, _unknown_kind)
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
        while not self._closed.is_set():
            number += 1
            stream = _Stream(self, number)
            hello, held = self._engine.hello()
            stream.start(hello)
            stream.welcomed.wait(self.options.welcome_timeout_s)
            welcomed_at = None
            if stream.welcome is not None and not self._closed.is_set():
                welcomed_at = self._welcomed(stream, held)
                self._first_welcome.set()
                while not (stream.ended.is_set() or stream.draining.is_set() or self._closed.is_set()):
                    stream.ended.wait(0.1)
                if self._closed.is_set():
                    return
                if stream.draining.is_set() and not stream.ended.is_set():
                    self._emit("reconnecting", attempt=0, delay_s=0.0, code="DRAINING")
                    continue  # rule 12: a new session at once; operations move there once welcomed
            else:
                if not stream.ended.is_set():
                    stream.code, stream.details = "DEADLINE_EXCEEDED", "no Welcome in time"
                stream.cancel()
                if self._closed.is_set():
                    return
            attempt, delay = self._after_stream(stream, attempt, welcomed_at)
            if delay is None or self._closed.wait(delay):
                return

    def _ticker(self) -> None:
        while not self._closed.wait(0.05):
            stream = self._stream
            request = self._ticker_state.due(stream)
            if request is not None:
                stream.send(request)


def _unknown_kind(task: ClaimedTask):
    raise TaskFailure(f"no handler for kind {task.execution_kind!r}", "unknown_kind")
