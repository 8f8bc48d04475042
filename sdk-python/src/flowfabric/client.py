"""Producer and operator client: create executions, read their state, results and output frames."""

from __future__ import annotations

import random
import threading
import time
from typing import Iterator, List, Optional, Sequence

import grpc

from . import _tracing
from ._rpc import ChannelConfig, bind
from .errors import FlowFabricError, LocalReason
from .types import (
    CancelResult, CreatedExecution, DeliverSignalResult, ExecutionDescription, ExecutionResult, ExecutionSpec, Frame,
    ReadStreamResult, StreamEnd, WaitpointToken, state_name, to_bytes,
)
from .v1 import execution_pb2, signal_pb2, stream_pb2

#: Most executions in one CreateExecutions call (the gateway's limit).
CREATE_BATCH_MAX = 1000


class Client:
    """A FlowFabric client over one gRPC channel (thread-safe; share one per process). A call made
    while the channel is (re)connecting waits for it within ``call_timeout_s``.

    Every call raises :class:`FlowFabricError` carrying the gateway's ``reason`` and ``field``.

    >>> with Client("127.0.0.1:50051") as client:
    ...     created = client.create_execution("default", "greet", {"name": "Ada"})
    ...     print(client.wait_result(created.execution_id).json())
    """

    def __init__(self, address: str = "127.0.0.1:50051", *, namespace: str = "", auth_token: str = "",
                 tls=False, call_timeout_s: float = 30.0, channel_options=()):
        self.config = ChannelConfig(address, auth_token, tls, tuple(channel_options))
        self.namespace = namespace
        self.call_timeout_s = call_timeout_s
        self._channel = self.config.channel()
        self._closed = False
        self._calls = {name: bind(self._channel, name) for name in (
            "ExecutionService.CreateExecution", "ExecutionService.CreateExecutions",
            "ExecutionService.DescribeExecution", "ExecutionService.GetResult",
            "ExecutionService.CancelExecution", "ExecutionService.ResumeExecution", "SignalService.DeliverSignal",
            "StreamService.ReadStream", "StreamService.TailStream")}

    # -- executions ------------------------------------------------------------------------------
    def create_execution(self, lane: str, kind: str = "", input=b"", **spec) -> CreatedExecution:
        """Creates one execution; keyword arguments are :class:`ExecutionSpec` fields
        (``idempotency_key``, ``priority``, ``retry_policy``, ``tags``, ``delay_until_ms``...).
        An idempotency key already used returns the existing execution with ``duplicate=True``.
        The caller's active OpenTelemetry span (if any) becomes the execution's trace parent."""
        request = ExecutionSpec(lane, kind, input, **spec).to_proto(self.namespace)
        return CreatedExecution.from_proto(self._unary("ExecutionService.CreateExecution", request,
                                                       _tracing.metadata()))

    def create_executions(self, specs: Sequence[ExecutionSpec]) -> List[CreatedExecution]:
        """Creates many executions, at most 1000 per call (more are sent in chunks); results in
        order. Each chunk is validated whole before any of it is created."""
        tp, ts = _tracing.current_headers()
        out: List[CreatedExecution] = []
        for i in range(0, len(specs), CREATE_BATCH_MAX):
            request = execution_pb2.CreateExecutionsRequest(
                executions=[s.to_proto(self.namespace, tp, ts) for s in specs[i:i + CREATE_BATCH_MAX]])
            response = self._unary("ExecutionService.CreateExecutions", request)
            out.extend(CreatedExecution.from_proto(r) for r in response.results)
        return out

    def describe_execution(self, execution_id: str) -> ExecutionDescription:
        """The execution's record; NOT_FOUND for an unknown id."""
        response = self._unary("ExecutionService.DescribeExecution",
                               execution_pb2.DescribeExecutionRequest(execution_id=execution_id))
        return ExecutionDescription.from_proto(response.execution)

    def get_result(self, execution_id: str) -> ExecutionResult:
        """The execution's state and, once completed, its result (does not wait)."""
        return ExecutionResult.from_proto(self._unary("ExecutionService.GetResult",
                                                      execution_pb2.GetResultRequest(execution_id=execution_id)))

    def wait_result(self, execution_id: str, timeout_s: Optional[float] = 60.0, *, poll_initial_s: float = 0.01,
                    poll_max_s: float = 1.0) -> ExecutionResult:
        """Waits until the execution is terminal and returns its outcome.

        The gateway has no watch call yet, so this polls ``GetResult`` with exponential backoff
        (``poll_initial_s`` doubling to ``poll_max_s``); it will await a server push once one exists.
        Raises DEADLINE_EXCEEDED/TIMEOUT after ``timeout_s`` (None: forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = poll_initial_s
        while True:
            result = self.get_result(execution_id)
            if result.done:
                return result
            if deadline is not None and time.monotonic() + delay > deadline:
                raise FlowFabricError("DEADLINE_EXCEEDED", f"{execution_id} is still {result.state} after {timeout_s}s",
                                      LocalReason.TIMEOUT)
            time.sleep(delay)
            delay = min(delay * 2, poll_max_s)

    def cancel_execution(self, execution_id: str, reason: str = "") -> CancelResult:
        """Cancels a non-terminal execution as an operator; a worker running it is told at once."""
        return CancelResult.from_proto(self._unary(
            "ExecutionService.CancelExecution", execution_pb2.CancelExecutionRequest(execution_id=execution_id,
                                                                                     reason=reason)))

    def resume_execution(self, execution_id: str) -> str:
        """Resumes a suspended execution as an operator (no signal; resume reason "operator");
        returns its new state. FAILED_PRECONDITION / EXECUTION_NOT_SUSPENDED otherwise."""
        response = self._unary("ExecutionService.ResumeExecution",
                               execution_pb2.ResumeExecutionRequest(execution_id=execution_id))
        return state_name(response.state)

    # -- signals ---------------------------------------------------------------------------------
    def deliver_signal(self, execution_id: str, waitpoint: WaitpointToken, name: str, payload=b"", *,
                       source: str = "", idempotency_key: str = "") -> DeliverSignalResult:
        """Delivers a signal to a waitpoint (from ``task.suspend()``/``create_waitpoint()``); the
        token is checked first (a bad one: PERMISSION_DENIED / INVALID_TOKEN). An idempotency key
        already delivered to the waitpoint answers "duplicate" and changes nothing."""
        return DeliverSignalResult.from_proto(self._unary(
            "SignalService.DeliverSignal", signal_pb2.DeliverSignalRequest(
                execution_id=execution_id, waitpoint_id=waitpoint.waitpoint_id, token=waitpoint.token, name=name,
                payload=to_bytes(payload), source=source, idempotency_key=idempotency_key),
            _tracing.metadata()))

    # -- output frames ---------------------------------------------------------------------------
    def read_stream(self, execution_id: str, attempt_index: int = 0, *, after_entry_id: str = "",
                    to_entry_id: str = "", count: int = 0) -> ReadStreamResult:
        """At most ``count`` (default 100) frames of one attempt after ``after_entry_id``."""
        return ReadStreamResult.from_proto(self._unary("StreamService.ReadStream", stream_pb2.ReadStreamRequest(
            execution_id=execution_id, attempt_index=attempt_index, after_entry_id=after_entry_id,
            to_entry_id=to_entry_id, count=count)))

    def tail_stream(self, execution_id: str, attempt_index: int = 0, *, after_entry_id: str = "") -> "FrameTail":
        """Follows one attempt's frames live: ``for frame in client.tail_stream(id): ...``.
        Replays the frames after ``after_entry_id``, then each new one, and ends when the stream
        closes (``tail.end`` says why). Resumes by itself after a dropped connection or a gateway
        drain, from the last frame it handed out: none missed, none twice."""
        return FrameTail(self, execution_id, attempt_index, after_entry_id)

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Closes the channel; later calls raise CANCELLED/CLOSED. Idempotent."""
        if not self._closed:
            self._closed = True
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unary(self, name: str, request, metadata=()):
        if self._closed:
            raise FlowFabricError.local("CANCELLED", LocalReason.CLOSED, "the client is closed")
        try:
            # wait_for_ready: a channel still connecting (or reconnecting) waits within the deadline
            # instead of failing at once; nothing has been sent yet, so this never duplicates a call.
            return self._calls[name](request, timeout=self.call_timeout_s, metadata=self.config.metadata(metadata),
                                     wait_for_ready=True)
        except grpc.RpcError as err:
            raise FlowFabricError.from_rpc_error(err) from None


class FrameTail:
    """An iterator over one attempt's frames (see :meth:`Client.tail_stream`); ``end`` is set once
    the stream closed. ``cancel()`` stops it from another thread."""

    def __init__(self, client: Client, execution_id: str, attempt_index: int, after_entry_id: str):
        self._client = client
        self.execution_id = execution_id
        self.attempt_index = attempt_index
        #: The last entry id handed out: the cursor a resumed tail continues from.
        self.cursor = after_entry_id
        #: Why and when the stream closed, once it did.
        self.end: Optional[StreamEnd] = None
        self._call = None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()
        call = self._call
        if call is not None:
            call.cancel()

    def __iter__(self) -> Iterator[Frame]:
        attempt = 0
        while self.end is None and not self._cancelled.is_set():
            request = stream_pb2.TailStreamRequest(execution_id=self.execution_id, attempt_index=self.attempt_index,
                                                   after_entry_id=self.cursor)
            try:
                self._call = self._client._calls["StreamService.TailStream"](
                    request, metadata=self._client.config.metadata(), wait_for_ready=True)
                for message in self._call:
                    attempt = 0
                    for f in message.frames:
                        frame = Frame.from_proto(f)
                        self.cursor = frame.entry_id
                        yield frame
                    if message.HasField("closed"):
                        self.end = StreamEnd.from_proto(message.closed)
                        if self.end.entry_id:
                            self.cursor = self.end.entry_id
                return
            except grpc.RpcError as err:
                if self._cancelled.is_set():
                    return
                error = FlowFabricError.from_rpc_error(err)
                if not error.retryable:  # NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED (max_tails)...
                    raise error from None
                attempt += 1
                if self._cancelled.wait(random.uniform(0, min(5.0, 0.1 * 2 ** (attempt - 1)))):
                    return
            finally:
                self._call = None
