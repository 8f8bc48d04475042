"""The SDK's one error type, :class:`FlowFabricError`, and the conversions into it.

``code`` is the gRPC status name (``"FAILED_PRECONDITION"``), ``reason`` the gateway's
``ErrorDetail.reason`` (``"STALE_LEASE"``, ``"PAYLOAD_TOO_LARGE"``...) or one of the SDK's own
:class:`LocalReason` values. docs/protocol.md, "Errors and reasons", lists them.
"""

from __future__ import annotations

from typing import Mapping, Optional

import grpc

from .v1 import common_pb2

#: gRPC status names indexed by status number (the one table mapping numbers to names).
GRPC_STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)

#: Gateway reasons after which a task's lease is definitely gone (protocol rule 8).
LEASE_GONE_REASONS = frozenset({"STALE_LEASE", "LEASE_EXPIRED", "EXECUTION_NOT_ACTIVE", "NOT_FOUND"})

#: Status codes an operation or a stream may be retried on (with backoff).
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED"})

#: Stream statuses no reconnect can fix: the worker stops instead of retrying forever.
FATAL_STREAM_CODES = frozenset({"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "UNIMPLEMENTED"})

DETAIL_TRAILER = "ff-error-detail-bin"
REASON_TRAILER = "ff-error-reason"
FIELD_TRAILER = "ff-error-field"


class LocalReason:
    """Reasons the SDK raises itself (the gateway's reasons arrive in ``reason`` unchanged)."""

    #: A terminal operation (complete, fail, cancel, delay) already consumed the task.
    TASK_CONSUMED = "TASK_CONSUMED"
    #: The task's lease is gone (lost, expired, cancelled by someone else); stop the task.
    LEASE_LOST = "LEASE_LOST"
    #: No session could be established.
    NOT_CONNECTED = "NOT_CONNECTED"
    #: The worker or client was closed.
    CLOSED = "CLOSED"
    #: The gateway answered with something the SDK did not expect.
    PROTOCOL_VIOLATION = "PROTOCOL_VIOLATION"
    #: No answer came in time.
    TIMEOUT = "TIMEOUT"


class FlowFabricError(Exception):
    """An error from the gateway or the SDK.

    Attributes:
        code: gRPC status name, e.g. ``"FAILED_PRECONDITION"``.
        reason: machine-readable reason, e.g. ``"STALE_LEASE"``; defaults to ``code``.
        field: path of the offending request field (``"hello.lanes"``), or ``None``.
        metadata: extra facts from the gateway (e.g. the committed outcome of a replay conflict).
    """

    def __init__(self, code: str, message: str, reason: str = "", field: str = "",
                 metadata: Optional[Mapping[str, str]] = None):
        super().__init__(message)
        self.code = code
        self.reason = reason or code
        self.field = field or None
        self.metadata = dict(metadata or {})
        self.message = message

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.code}/{self.reason}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"FlowFabricError({self.code!r}, {self.message!r}, reason={self.reason!r}, field={self.field!r})"

    @property
    def status(self) -> int:
        """The gRPC status number of ``code``."""
        return GRPC_STATUS_NAMES.index(self.code) if self.code in GRPC_STATUS_NAMES else 2

    @property
    def is_lease_gone(self) -> bool:
        """True when the task's lease is definitely gone (protocol rule 8's definitive errors)."""
        return self.reason in LEASE_GONE_REASONS or self.reason == LocalReason.LEASE_LOST

    @property
    def retryable(self) -> bool:
        """True for transient conditions (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED)."""
        return self.code in RETRYABLE_CODES

    @classmethod
    def local(cls, code: str, reason: str, message: str) -> "FlowFabricError":
        return cls(code, message, reason=reason)

    @classmethod
    def from_operation_error(cls, error) -> "FlowFabricError":
        """Converts a Session ``OperationError`` (the stream form of a unary error status)."""
        code = code_name(error.code)
        d = error.detail
        return cls(code, d.message or f"{code}: operation failed", d.reason, d.field, d.metadata)

    @classmethod
    def from_rpc_error(cls, error: BaseException) -> "FlowFabricError":
        """Converts a ``grpc.RpcError``: the ``ErrorDetail`` from the ``ff-error-detail-bin`` trailer,
        else from the ``ff-error-reason``/``ff-error-field`` trailers. Anything else becomes UNKNOWN."""
        if isinstance(error, FlowFabricError):
            return error
        if not isinstance(error, grpc.RpcError) or not hasattr(error, "code"):
            return cls("UNKNOWN", f"{type(error).__name__}: {error}")
        status = error.code()
        code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
        trailers = _trailers(error)
        detail = _decode_detail(trailers.get(DETAIL_TRAILER))
        message = (detail.message if detail else "") or (error.details() or "") or code
        reason = (detail.reason if detail else "") or _text(trailers.get(REASON_TRAILER))
        field = (detail.field if detail else "") or _unquote(_text(trailers.get(FIELD_TRAILER)))
        return cls(code, message, reason, field, detail.metadata if detail else None)


def code_name(status: int) -> str:
    """Maps a gRPC status number to its name (UNKNOWN when out of range)."""
    return GRPC_STATUS_NAMES[status] if 0 <= status < len(GRPC_STATUS_NAMES) else "UNKNOWN"


def _trailers(error) -> dict:
    try:
        return {k: v for k, v in (error.trailing_metadata() or ())}
    except Exception:  # a local error (e.g. channel closed) has no trailers
        return {}


def _text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else bytes(value).decode("ascii", "replace")


def _unquote(value: str) -> str:
    """Reverses the gateway's header-safe percent-encoding of field names."""
    if "%" not in value:
        return value
    from urllib.parse import unquote

    return unquote(value)


def _decode_detail(raw) -> Optional[common_pb2.ErrorDetail]:
    """The ``ff-error-detail-bin`` trailer: the serialized ErrorDetail (grpc decodes ``-bin``)."""
    if not raw:
        return None
    try:
        return common_pb2.ErrorDetail.FromString(bytes(raw))
    except Exception:  # noqa: BLE001 - malformed: fall back to the plain trailers
        return None
