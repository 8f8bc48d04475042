"""FlowFabric Python SDK.

- :class:`Worker` runs handlers in threads over one Session stream (``flowfabric.aio.AsyncWorker``
  is the asyncio one, on ``grpc.aio``);
- :class:`ClaimedTask` is what a handler gets: input, complete/fail/cancel/delay, progress,
  frames, a ``cancelled`` event, ``is_lease_healthy()``;
- :class:`Client` creates executions and reads their state, results and frames;
- :class:`FlowFabricError` is the one error type.

The generated message classes are ``flowfabric.v1.*_pb2`` (from proto/, never edited).
"""

from ._runner import TaskFailure
from ._version import __version__
from .client import Client, FrameTail
from .errors import FlowFabricError, LocalReason
from .options import WorkerOptions
from .task import AsyncClaimedTask, ClaimedTask
from .types import (
    AbortReason, AppendFrameResult, CancelResult, CreatedExecution, DeliverSignalResult, ExecutionDescription,
    ExecutionResult, ExecutionSpec, FailResult, Frame, ReadStreamResult, RetryPolicy, SettleResult, Signal, StreamEnd,
    SuspendResult, WaitpointToken,
)
from .worker import Worker

__all__ = [
    "AbortReason", "AppendFrameResult", "AsyncClaimedTask", "CancelResult", "ClaimedTask", "Client",
    "CreatedExecution", "DeliverSignalResult", "ExecutionDescription", "ExecutionResult", "ExecutionSpec", "FailResult", "FlowFabricError",
    "Frame", "FrameTail", "LocalReason", "ReadStreamResult", "RetryPolicy", "SettleResult", "Signal", "StreamEnd", "SuspendResult",
    "TaskFailure", "WaitpointToken", "Worker", "WorkerOptions", "__version__",
]
