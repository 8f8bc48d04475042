"""Worker options, validated and compiled once (both workers take the same keyword arguments)."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

from ._rpc import ChannelConfig

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

#: A callback for worker events: ``on_event(name, fields)`` (see :class:`WorkerOptions.on_event`).
EventHook = Callable[[str, dict], None]


@dataclass(frozen=True)
class WorkerOptions:
    """Options of :class:`flowfabric.Worker` and :class:`flowfabric.aio.AsyncWorker`."""

    #: Gateway gRPC target (``host:port``, or any gRPC target such as ``ipv4:h:p1,h:p2``).
    address: str = "127.0.0.1:50051"
    #: Lanes to take work from (1..64).
    lanes: Tuple[str, ...] = ("default",)
    #: Tasks run at once (1..10000): the thread pool size of the threaded worker.
    max_concurrent_tasks: int = 10
    #: Stable worker identity, 1..128 chars of [A-Za-z0-9._:-].
    worker_id: str = "python-worker"
    #: This process's identity; default ``<worker_id>-<host>-<pid>``.
    instance_id: str = ""
    #: Namespace served; empty means "default".
    namespace: str = ""
    #: Capabilities offered (a task is pushed only if its required capabilities are a subset).
    capabilities: Tuple[str, ...] = ()
    #: Bearer token for gateways that require auth.
    auth_token: str = ""
    #: TLS: True for the system roots, or ``grpc.ssl_channel_credentials(...)``.
    tls: Any = False
    #: Extra gRPC channel options.
    channel_options: Tuple[Tuple[str, Any], ...] = ()
    #: Opt in to message batching both ways (docs/protocol.md, "Batching"): fewer, larger messages.
    batching: bool = False
    #: On stop()/SIGTERM, how long running tasks may take to finish before they are handed back, in seconds.
    grace_s: float = 30.0
    #: How long to wait for a Welcome before retrying, in seconds.
    welcome_timeout_s: float = 10.0
    #: Give up after this many failed connection attempts in a row; 0 = retry forever (default).
    max_reconnect_attempts: int = 0
    #: Reconnect backoff: attempt n waits random(0, min(max, initial * 2^(n-1))) seconds.
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    #: How the task span joins the producer's trace: "child" or "link" (needs opentelemetry-api).
    trace_mode: str = "child"
    #: ``run()`` installs SIGTERM/SIGINT handlers that stop the worker gracefully (main thread only).
    handle_signals: bool = True
    #: Called with ``(event, fields)`` for welcome, drain, reconnecting, stream_ended, lease_lost,
    #: cancel_requested, settle_failed, handler_error, stopped. Must not block.
    on_event: Optional[EventHook] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        normalized = {
            "lanes": (self.lanes,) if isinstance(self.lanes, str) else tuple(self.lanes),
            "capabilities": tuple(self.capabilities),
            "channel_options": tuple(self.channel_options),
            "instance_id": self.instance_id or re.sub(
                r"[^A-Za-z0-9._:-]", "-", f"{self.worker_id}-{socket.gethostname()}-{os.getpid()}")[:128],
        }
        for name, value in normalized.items():
            object.__setattr__(self, name, value)  # frozen dataclass: normalized once, here
        for name in ("worker_id", "instance_id"):
            if not _ID.match(getattr(self, name)):
                raise ValueError(f"{name}: must be 1..128 characters of [A-Za-z0-9._:-]")
        if not 1 <= len(self.lanes) <= 64:
            raise ValueError("lanes: 1..64 lanes")
        if not 1 <= self.max_concurrent_tasks <= 10_000:
            raise ValueError("max_concurrent_tasks: must be in 1..10000")
        if self.trace_mode not in ("child", "link"):
            raise ValueError("trace_mode: 'child' or 'link'")

    @property
    def channel(self) -> ChannelConfig:
        return ChannelConfig(self.address, self.auth_token, self.tls, self.channel_options)
