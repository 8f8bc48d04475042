"""The asyncio worker, on ``grpc.aio``: the same protocol engine as :class:`flowfabric.Worker`,
with ``async def`` handlers running as asyncio tasks in the caller's event loop.

>>> async def main():
...     worker = AsyncWorker("127.0.0.1:50051", lanes=["default"], max_concurrent_tasks=100)
...     @worker.task("greet")
...     async def greet(task):
...         return {"hello": task.input_json()["name"]}
...     await worker.run()   # until stop() or SIGTERM/SIGINT
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Awaitable, Callable, Optional, Set

import grpc
import grpc.aio

from ._base import StreamBase, WorkerBase
from ._rpc import bind
from ._runner import TaskFailure, run_async
from .task import AsyncClaimedTask
from .v1 import worker_pb2

log = logging.getLogger("flowfabric.worker")

AsyncHandler = Callable[[AsyncClaimedTask], Awaitable[object]]


class _AioStream(StreamBase):
    """One Session stream on grpc.aio: a writer task draining an outbox, a reader task."""

    def __init__(self, worker: "AsyncWorker", number: int):
        super().__init__(worker, number, asyncio.Event)
        self.outbox: "asyncio.Queue[Optional[worker_pb2.SessionRequest]]" = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._tasks: list = []

    def start(self, hello: worker_pb2.Hello) -> None:
        self._call = self.worker._session_rpc(metadata=self.worker.options.channel.metadata())
        self.send(worker_pb2.SessionRequest(hello=hello))
        self._tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._read())]

    def send(self, request: worker_pb2.SessionRequest) -> None:
        """Thread-safe: operations may be submitted from any thread."""
        if self._closed:
            return
        self.last_sent = time.monotonic()
        if threading.get_ident() == self.worker._loop_thread:
            self.outbox.put_nowait(request)
        else:
            self._loop.call_soon_threadsafe(self.outbox.put_nowait, request)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.outbox.put_nowait(None)

    async def _write(self) -> None:
        try:
            while True:
                request = await self.outbox.get()
                if request is None:
                    await self._call.done_writing()
                    return
                await self._call.write(self.gather(request, self.outbox.get_nowait, asyncio.QueueEmpty,
                                                   self.outbox.put_nowait))
        except (grpc.RpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
            return  # the reader sees the stream's end and reports it

    async def _read(self) -> None:
        try:
            while True:
                resp = await self._call.read()
                if resp is grpc.aio.EOF:
                    break
                self.received(resp)
            self.code = "OK"
        except grpc.RpcError as err:
            self.ended_with(err)
        except asyncio.CancelledError:
            self.code, self.details = "CANCELLED", "stream cancelled"
        except Exception as err:  # noqa: BLE001 - a bug must not wedge the worker
            log.exception("session reader crashed")
            self.code, self.details = "INTERNAL", repr(err)
        finally:
            self.close()  # ends the writer task
            self.ended.set()
            self.welcomed.set()


class AsyncWorker(WorkerBase):
    """A FlowFabric worker for ``async def`` handlers (each gets an :class:`AsyncClaimedTask`).
    Keyword arguments are :class:`flowfabric.options.WorkerOptions` fields; ``max_concurrent_tasks``
    bounds the handlers running at once (the gateway never pushes more)."""

    def __init__(self, address: str = "127.0.0.1:50051", **options):
        super().__init__(address, options)
        self._channel = None
        self._session_rpc = None
        self._stream: Optional[_AioStream] = None
        self._running: Set[asyncio.Task] = set()
        self._background: list = []
        self._closed = asyncio.Event()
        self._first_welcome = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stopping: Optional[asyncio.Future] = None
        self._loop_thread = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    async def start(self, handler: Optional[AsyncHandler] = None, *,
                    wait_welcome_s: Optional[float] = None) -> "AsyncWorker":
        """Connects and runs in background tasks of the running loop; with ``wait_welcome_s``,
        returns once welcomed (raises NOT_CONNECTED if not in time)."""
        self._set_handler(handler)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._channel = self.options.channel.aio_channel()
        self._session_rpc = bind(self._channel, "WorkerService.Session")
        self._background = [asyncio.create_task(self._connection_loop()), asyncio.create_task(self._ticker())]
        if wait_welcome_s is not None:
            await _first_of(wait_welcome_s, self._first_welcome, self._closed)
            if not self._first_welcome.is_set():
                await self.stop(0)
                raise self._not_welcomed()
        return self

    async def run(self, handler: Optional[AsyncHandler] = None) -> None:
        """Runs until :meth:`stop`, SIGTERM/SIGINT (with ``handle_signals``) or a fatal error, then
        drains gracefully. Raises the fatal :class:`FlowFabricError`, if any."""
        await self.start(handler)
        loop = asyncio.get_running_loop()
        installed = []
        if self.options.handle_signals and threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(s, self._stop_requested.set)
                installed.append(s)
        try:
            await _first_of(None, self._stop_requested, self._closed)
            await self.stop()
        finally:
            for s in installed:
                loop.remove_signal_handler(s)
        if self.fatal is not None:
            raise self.fatal

    async def stop(self, grace_s: Optional[float] = None) -> None:
        """Graceful shutdown, as :meth:`flowfabric.Worker.stop`. Idempotent."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace_s))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace_s: Optional[float]) -> None:
        grace = self.options.grace_s if grace_s is None else grace_s
        self._emit("stopping", running=self._engine.held_count(), grace_s=grace)
        self._engine.begin_stop()
        await self._wait_idle(grace)
        if self._shutdown_leftovers():
            await self._wait_idle(min(5.0, max(grace, 1.0)))
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.close()
            try:
                await asyncio.wait_for(stream.ended.wait(), 2.0)
            except asyncio.TimeoutError:
                stream.cancel()
        for t in [*self._running, *self._background]:
            t.cancel()
        await asyncio.gather(*self._running, *self._background, return_exceptions=True)
        self._engine.close("the worker stopped")
        if self._channel is not None:
            await self._channel.close()
        if self._client is not None:
            self._client.close()
        self._emit("stopped", fatal=str(self.fatal or ""))

    async def __aenter__(self) -> "AsyncWorker":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- internals -------------------------------------------------------------------------------
    def _new_task(self, pushed: worker_pb2.Task) -> AsyncClaimedTask:
        return AsyncClaimedTask(pushed, self._engine, lambda: self.client, self._loop)

    def _start_task(self, task: AsyncClaimedTask) -> None:
        handler = self._handler_for(task.execution_kind, _unknown_kind)
        t = asyncio.create_task(run_async(task, handler, self.options.worker_id, self.options.trace_mode, self._emit))
        self._running.add(t)
        t.add_done_callback(self._running.discard)

    async def _wait_idle(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while self._engine.held_count() and time.monotonic() < end:
            await asyncio.sleep(0.02)

    async def _connection_loop(self) -> None:
        attempt, number = 0, 0
        while not self._closed.is_set():
            number += 1
            stream = _AioStream(self, number)
            hello, held = self._engine.hello()
            stream.start(hello)
            await _first_of(self.options.welcome_timeout_s, stream.welcomed)
            welcomed_at = None
            if stream.welcome is not None and not self._closed.is_set():
                welcomed_at = self._welcomed(stream, held)
                self._first_welcome.set()
                await _first_of(None, stream.ended, stream.draining, self._closed)
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
            if delay is None or await _first_of(delay, self._closed):
                return

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            stream = self._stream
            request = self._ticker_state.due(stream)
            if request is not None:
                stream.send(request)


async def _first_of(timeout_s: Optional[float], *events: asyncio.Event) -> bool:
    """Waits until one of ``events`` is set or ``timeout_s`` passes; True when one is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return any(e.is_set() for e in events)


async def _unknown_kind(task: AsyncClaimedTask):
    raise TaskFailure(f"no handler for kind {task.execution_kind!r}", "unknown_kind")
