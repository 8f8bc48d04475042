"""Plain data the Client and the worker hand out (times are Unix milliseconds, 0 when unset).

Field names are the proto names, so each conversion is one loop over the dataclass's fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .v1 import common_pb2, execution_pb2, signal_pb2, stream_pb2

#: The input/result forms the SDK accepts: bytes as is, str as UTF-8, anything else as JSON.
Payload = Union[bytes, bytearray, memoryview, str, Any]

TERMINAL_STATES = frozenset({"completed", "failed", "cancelled", "expired", "skipped"})


def to_bytes(value: Payload) -> bytes:
    """bytes as is, str as UTF-8, anything else (dict, list, number...) as compact JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def state_name(value: int) -> str:
    """``PUBLIC_STATE_COMPLETED`` -> ``"completed"``."""
    return common_pb2.PublicState.Name(value)[len("PUBLIC_STATE_"):].lower()


def _enum_suffix(enum, value: int, prefix: str) -> str:
    try:
        return enum.Name(value)[len(prefix):].lower()
    except ValueError:
        return "unspecified"


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed execution is retried (mirrors flowfabric.v1.RetryPolicy)."""

    #: Retries after the first attempt; 0 means a failure is terminal. At most 1000.
    max_retries: int
    #: "fixed" or "exponential" (default).
    backoff: str = "exponential"
    #: First (or every, when fixed) retry delay, in milliseconds; None: the default (1000); 0 retries at once.
    initial_delay_ms: Optional[int] = None
    #: Upper bound of an exponential delay, in milliseconds; 0 means the default (60000).
    max_delay_ms: int = 0
    #: Exponential growth factor, >= 1; 0 means the default (2).
    multiplier: float = 0.0
    #: Jitter as a fraction of the delay in [0, 1].
    jitter: float = 0.0
    #: Failure categories that are retried; empty means every category.
    retryable_categories: Sequence[str] = ()

    def to_proto(self) -> common_pb2.RetryPolicy:
        kinds = {"fixed": common_pb2.BACKOFF_KIND_FIXED, "exponential": common_pb2.BACKOFF_KIND_EXPONENTIAL}
        if self.backoff not in kinds:
            raise ValueError(f"retry_policy.backoff: {self.backoff!r} is not 'fixed' or 'exponential'")
        policy = common_pb2.RetryPolicy(
            max_retries=self.max_retries, backoff=kinds[self.backoff], max_delay_ms=self.max_delay_ms,
            multiplier=self.multiplier, jitter=self.jitter, retryable_categories=list(self.retryable_categories))
        if self.initial_delay_ms is not None:
            policy.initial_delay_ms = self.initial_delay_ms
        return policy


@dataclass(frozen=True)
class ExecutionSpec:
    """An execution to create (mirrors flowfabric.v1.CreateExecutionRequest)."""

    #: Lane (queue) name.
    lane: str
    #: Free-form kind passed to the worker (e.g. "send-email").
    kind: str = ""
    #: Input payload: bytes as is, str as UTF-8, anything else as JSON.
    input: Payload = b""
    #: Priority in [-1000, 1000]; higher runs first.
    priority: int = 0
    #: Idempotency key, unique per namespace for 24 hours: a second create returns the same id.
    idempotency_key: str = ""
    #: Retry policy; None means no retries.
    retry_policy: Optional[RetryPolicy] = None
    #: Not eligible before this time, in Unix milliseconds.
    delay_until_ms: int = 0
    #: The execution expires if not terminal by this time, in Unix milliseconds.
    deadline_at_ms: int = 0
    #: Each attempt expires after running this long, in milliseconds.
    attempt_timeout_ms: int = 0
    #: Capabilities a worker must offer to receive this execution.
    required_capabilities: Sequence[str] = ()
    #: Producer tags.
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Namespace; empty means the client's.
    namespace: str = ""
    #: Times a lost lease may be reclaimed before the execution fails; 0 means the default (10).
    max_reclaims: int = 0
    #: "durable" (default), "summary" or "best_effort" (docs/streams.md).
    stream_mode: str = ""
    #: Best-effort mode: a frame stream expires this long after its last append, in ms.
    stream_ttl_ms: int = 0

    def to_proto(self, namespace: str, traceparent: str = "", tracestate: str = "") -> execution_pb2.CreateExecutionRequest:
        req = execution_pb2.CreateExecutionRequest(
            namespace=self.namespace or namespace, lane=self.lane, kind=self.kind, input=to_bytes(self.input),
            priority=self.priority, delay_until_ms=self.delay_until_ms, deadline_at_ms=self.deadline_at_ms,
            attempt_timeout_ms=self.attempt_timeout_ms, idempotency_key=self.idempotency_key,
            required_capabilities=list(self.required_capabilities), tags=dict(self.tags),
            max_reclaims=self.max_reclaims, stream_ttl_ms=self.stream_ttl_ms,
            traceparent=traceparent, tracestate=tracestate)
        if self.stream_mode:
            req.stream_mode = stream_pb2.StreamMode.Value(f"STREAM_MODE_{self.stream_mode.upper()}")
        if self.retry_policy is not None:
            req.retry_policy.CopyFrom(self.retry_policy.to_proto())
        return req


@dataclass(frozen=True)
class CreatedExecution:
    """A created (or, with an idempotency key already used, deduplicated) execution."""

    execution_id: str
    #: True when the idempotency key matched an existing execution.
    duplicate: bool
    #: State right after creation ("waiting", "delayed").
    state: str

    @classmethod
    def from_proto(cls, m) -> "CreatedExecution":
        return cls(m.execution_id, m.duplicate, state_name(m.state))


@dataclass(frozen=True)
class ExecutionResult:
    """An execution's outcome: ``result`` is set once ``state`` is "completed" with a result."""

    state: str
    result: Optional[bytes]
    failure_reason: str
    failure_category: str

    @classmethod
    def from_proto(cls, m) -> "ExecutionResult":
        return cls(state_name(m.state), m.result if m.HasField("result") else None, m.failure_reason,
                   m.failure_category)

    @property
    def done(self) -> bool:
        """True once the execution is terminal."""
        return self.state in TERMINAL_STATES

    def json(self) -> Any:
        """The result decoded as JSON."""
        return json.loads(self.result or b"null")


@dataclass(frozen=True)
class CancelResult:
    """Outcome of an operator cancel: ``cancelled`` is False when it was already terminal."""

    state: str
    cancelled: bool

    @classmethod
    def from_proto(cls, m) -> "CancelResult":
        return cls(state_name(m.state), m.cancelled)


@dataclass(frozen=True)
class ExecutionDescription:
    """An execution's record (mirrors flowfabric.v1.ExecutionInfo; see execution.proto)."""

    execution_id: str
    namespace: str
    lane: str
    kind: str
    priority: int
    state: str
    lifecycle_phase: str
    ownership_state: str
    eligibility_state: str
    blocking_reason: str
    terminal_outcome: str
    attempt_state: str
    attempt_index: int
    attempt_count: int
    retry_count: int
    reclaim_count: int
    lease_epoch: int
    lease_expires_at_ms: int
    worker_instance_id: str
    created_at_ms: int
    started_at_ms: int
    completed_at_ms: int
    delay_until_ms: int
    deadline_at_ms: int
    progress_percent: float
    progress_message: str
    failure_reason: str
    failure_category: str
    cancel_reason: str
    cancelled_by: str
    tags: Dict[str, str]
    required_capabilities: List[str]
    has_result: bool
    stream_mode: str

    @classmethod
    def from_proto(cls, info) -> "ExecutionDescription":
        values = {}
        for f in fields(cls):
            v = getattr(info, f.name)
            if f.name == "state":
                v = state_name(v)
            elif f.name == "stream_mode":
                v = _enum_suffix(stream_pb2.StreamMode, v, "STREAM_MODE_")
            elif f.name == "tags":
                v = dict(v)
            elif f.name == "required_capabilities":
                v = list(v)
            values[f.name] = v
        return cls(**values)


@dataclass(frozen=True)
class Frame:
    """One output frame of an attempt's stream; ``entry_id`` is its cursor."""

    entry_id: str
    seq: int
    frame_type: str
    payload: bytes
    correlation_id: str
    metadata: Dict[str, str]
    timestamp_ms: int
    summary_version: int
    durable: bool

    @classmethod
    def from_proto(cls, f) -> "Frame":
        return cls(f.entry_id, f.seq, f.frame_type, f.payload, f.correlation_id, dict(f.metadata), f.timestamp_ms,
                   f.summary_version, f.durable)

    def text(self) -> str:
        return self.payload.decode("utf-8")


@dataclass(frozen=True)
class StreamEnd:
    """Why a frame stream closed ("completed", "failed", "retry_scheduled", "cancelled", "expired",
    "lease_lost"), when, and the close entry's id (empty when there is none)."""

    reason: str
    closed_at_ms: int
    entry_id: str

    @classmethod
    def from_proto(cls, c) -> "StreamEnd":
        return cls(_enum_suffix(stream_pb2.StreamCloseReason, c.reason, "STREAM_CLOSE_REASON_"), c.closed_at_ms,
                   c.entry_id)


@dataclass(frozen=True)
class ReadStreamResult:
    """A range of frames: page on with ``after_entry_id=next_cursor`` while ``more``."""

    frames: List[Frame]
    next_cursor: str
    more: bool
    #: Set once the stream is closed.
    closed: Optional[StreamEnd]
    mode: str
    frame_count: int
    summary: bytes
    summary_version: int

    @classmethod
    def from_proto(cls, r) -> "ReadStreamResult":
        return cls([Frame.from_proto(f) for f in r.frames], r.next_cursor, r.more,
                   StreamEnd.from_proto(r.closed) if r.HasField("closed") else None,
                   _enum_suffix(stream_pb2.StreamMode, r.mode, "STREAM_MODE_"), r.frame_count, r.summary,
                   r.summary_version)


@dataclass(frozen=True)
class SettleResult:
    """Result of ``complete`` and ``cancel``: ``reconciled`` is True when the gateway found the same
    outcome already committed (a replay after a lost answer)."""

    reconciled: bool


@dataclass(frozen=True)
class FailResult:
    """Result of ``fail``: "retry_scheduled" (at ``retry_at_ms``) or "failed"."""

    outcome: str
    retry_at_ms: int
    retry_count: int
    reconciled: bool


@dataclass(frozen=True)
class AppendFrameResult:
    """Result of ``append_frame``: the frame's cursor and count (``duplicate``: a re-send not stored again)."""

    entry_id: str
    frame_count: int
    summary_version: int
    duplicate: bool


@dataclass(frozen=True)
class AbortReason:
    """Why a task's ``cancelled`` event was set: kind "cancelled" (someone cancelled the execution),
    "lease_lost" (expired, revoked, not adopted) or "shutdown" (this worker is stopping)."""

    kind: str
    message: str


@dataclass(frozen=True)
class WaitpointToken:
    """A waitpoint and the token that lets anyone signal it (a secret: hand it only to the party
    that should resume the execution). ``expires_at_ms`` 0 means no expiry."""

    waitpoint_id: str
    waitpoint_key: str
    token: str
    expires_at_ms: int

    @classmethod
    def from_proto(cls, w) -> "WaitpointToken":
        return cls(w.waitpoint_id, w.waitpoint_key, w.token, w.expires_at_ms)


@dataclass(frozen=True)
class SuspendResult:
    """Result of ``suspend``: outcome "suspended" (the lease is released: return from the handler)
    or "already_satisfied" (buffered signals met the condition: the task keeps running)."""

    outcome: str
    #: The waitpoint the suspension created, with its token; None when already satisfied.
    waitpoint: Optional[WaitpointToken]
    reconciled: bool

    @classmethod
    def from_proto(cls, r) -> "SuspendResult":
        return cls(_enum_suffix(signal_pb2.SuspendOutcome, r.outcome, "SUSPEND_OUTCOME_"),
                   WaitpointToken.from_proto(r.waitpoint) if r.HasField("waitpoint") else None, r.reconciled)


@dataclass(frozen=True)
class Signal:
    """A delivered signal."""

    signal_id: str
    waitpoint_id: str
    name: str
    payload: bytes
    source: str
    accepted_at_ms: int

    @classmethod
    def from_proto(cls, s) -> "Signal":
        return cls(s.signal_id, s.waitpoint_id, s.name, s.payload, s.source, s.accepted_at_ms)

    def json(self) -> Any:
        return json.loads(self.payload or b"null")


@dataclass(frozen=True)
class DeliverSignalResult:
    """What a delivered signal did: "accepted", "triggered_resume" or "duplicate"."""

    effect: str
    signal_id: str

    @classmethod
    def from_proto(cls, r) -> "DeliverSignalResult":
        return cls(_enum_suffix(signal_pb2.SignalEffect, r.effect, "SIGNAL_EFFECT_"), r.signal_id)
