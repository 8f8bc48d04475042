#!/usr/bin/env python3
"""A complete FlowFabric worker in Python, on grpcio + protoc-generated message classes: the
protocol reference. (For real workers use the SDK: ``worker.py`` next to this file is the same
worker in ~20 lines on ``sdk-python``.)

No grpc plugin and no SDK logic: the one bidirectional stream is opened with
``channel.stream_stream("/flowfabric.v1.WorkerService/Session", ...)`` and only the generated
message classes are used — the ones committed in ``sdk-python/src/flowfabric/v1`` (regenerate with
``bash sdk-python/generate.sh``), imported without the SDK package. docs/protocol.md is the contract this file
follows; the rule numbers in comments (``rule 5``) refer to it.

Run (Debian's python3-grpcio/python3-protobuf live in the system python)::

    /usr/bin/python3 examples/python-worker/raw_worker.py --address 127.0.0.1:50051 \\
        --lanes default --worker-id py-worker --concurrency 8 --handler demo

stdout carries one JSON object per line for every notable event (``ready``, ``welcome``,
``task_started``, ``task_completed``, ``task_failed``, ``cancel_noticed``, ``lease_lost``,
``drain``, ``reconnecting``, ``stopped``, ...) so that tests and scripts can follow the worker;
human-readable logs go to stderr.

Threads: one connection manager (opens sessions, backoff, drain), one reader per stream
(dispatches gateway messages), one ticker per stream (heartbeats and idle pings), and a pool of
``--concurrency`` handler threads. Handlers block on their operations' answers, which are matched
by request_id; operations without an answer are re-sent on the next stream (rule 13).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
STUBS = os.path.join(HERE, "..", "..", "sdk-python", "src", "flowfabric", "v1")

try:
    import grpc
    import types

    # The generated modules import each other as ``flowfabric.v1.*``: register a bare package of
    # that name pointing at the stubs, so the SDK's own code is not imported.
    for _name, _path in (("flowfabric", os.path.dirname(STUBS)), ("flowfabric.v1", STUBS)):
        _pkg = types.ModuleType(_name)
        _pkg.__path__ = [_path]
        sys.modules.setdefault(_name, _pkg)
    from flowfabric.v1 import common_pb2, worker_pb2
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        f"raw_worker.py: cannot import {exc.name!r}: {exc}\n"
        "  The Debian packages python3-grpcio and python3-protobuf are for the system python: run\n"
        "  /usr/bin/python3 examples/python-worker/raw_worker.py ... (install: sudo apt-get install -y\n"
        "  python3-grpcio python3-protobuf protobuf-compiler), and generate the message classes\n"
        "  with bash sdk-python/generate.sh if sdk-python/src/flowfabric/v1 is missing.\n"
    )
    sys.exit(2)

SDK_NAME = "flowfabric-python-example/0.1"
SESSION_METHOD = "/flowfabric.v1.WorkerService/Session"

# gRPC status numbers used in OperationError.code (rule 8) and stream statuses.
CODE_UNAVAILABLE = 14
CODE_DEADLINE_EXCEEDED = 4
CODE_ABORTED = 10
CODE_INTERNAL = 13
RETRYABLE_OPERATION_CODES = {CODE_UNAVAILABLE, CODE_DEADLINE_EXCEEDED, CODE_ABORTED}
# Reasons after which a terminal operation frees the slot even though it failed (rule 8).
DEFINITIVE_REASONS = {"STALE_LEASE", "EXECUTION_NOT_ACTIVE", "NOT_FOUND", "LEASE_EXPIRED"}
# Stream statuses that no reconnect can fix: the worker exits instead of retrying forever.
FATAL_STREAM_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
}

# The channel settings docs/protocol.md ("Client channel settings") asks of every worker.
CHANNEL_OPTIONS = [
    # gRPC keepalive (rule 11): HTTP/2 PINGs every 10 s, dead after 5 s without an ack.
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # At least welcome.max_message_bytes (8 MiB by default; grpcio's own default is 4 MiB).
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Our own reconnect loop does the backoff (rule 13); grpc's default grows to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
]
# A terminal operation answered by the committed outcome an adoption reports (docs/protocol.md,
# "Reconnect and lease re-adoption"): operation -> (outcome that answers it, its response).
ADOPTION_ANSWERS = {
    "complete": ("success", lambda: worker_pb2.SessionResponse(complete=worker_pb2.CompleteTaskResponse(reconciled=True))),
    "fail": ("failed", lambda: worker_pb2.SessionResponse(
        fail=worker_pb2.FailTaskResponse(outcome=worker_pb2.FAIL_OUTCOME_FAILED, reconciled=True))),
    "cancel": ("cancelled", lambda: worker_pb2.SessionResponse(cancel=worker_pb2.CancelTaskResponse(reconciled=True))),
}

log = logging.getLogger("flowfabric.worker")
_emit_lock = threading.Lock()


def now_ms() -> int:
    return int(time.time() * 1000)


def emit(event: str, **fields) -> None:
    """One JSON line on stdout per notable event (machine-readable; tests wait on these)."""
    line = json.dumps({"event": event, "ts_ms": now_ms(), **fields}, separators=(",", ":"), default=str)
    with _emit_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# Errors and task state
# --------------------------------------------------------------------------------------------


class OperationFailed(Exception):
    """A task operation was answered with OperationError (or could not be delivered)."""

    def __init__(self, code: int, reason: str, message: str, field_name: str = "", metadata=None):
        super().__init__(f"{reason} (code {code}): {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field_name
        self.metadata = dict(metadata or {})

    @property
    def definitive(self) -> bool:
        return self.reason in DEFINITIVE_REASONS


class TaskFailure(Exception):
    """Raised by a handler to fail the current attempt; the retry policy matches `category`."""

    def __init__(self, reason: str, category: str = "transient"):
        super().__init__(reason)
        self.reason = reason
        self.category = category


class TaskStopped(Exception):
    """Raised by a handler when it stopped because the task was cancelled or its lease was lost."""


@dataclass
class TaskState:
    task: "worker_pb2.Task"
    # Set when the task must stop: cancel_requested, lease_lost, heartbeat non-renewal, failed
    # adoption, or a hard shutdown. Handlers poll it (ctx.cancelled).
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""
    # True once the lease is known to be gone: no further operations are sent for the task.
    lease_gone: bool = False
    # True when our own shutdown stopped the task: it is handed back with `delay`.
    handed_back: bool = False
    heartbeat_misses: int = 0

    @property
    def fence(self) -> "common_pb2.Fence":
        return self.task.fence

    @property
    def execution_id(self) -> str:
        return self.task.fence.execution_id


@dataclass
class PendingOp:
    request_id: str
    execution_id: str
    kind: str  # the SessionRequest oneof field: complete, fail, update_progress, ...
    message: object  # the request body message
    done: threading.Event = field(default_factory=threading.Event)
    response: Optional["worker_pb2.SessionResponse"] = None
    local_error: Optional[OperationFailed] = None

    def to_request(self) -> "worker_pb2.SessionRequest":
        req = worker_pb2.SessionRequest(request_id=self.request_id)
        getattr(req, self.kind).CopyFrom(self.message)
        return req


class TaskContext:
    """What a handler sees of its task."""

    def __init__(self, worker: "Worker", state: TaskState):
        self._worker = worker
        self._state = state
        task = state.task
        self.execution_id: str = task.fence.execution_id
        self.attempt_index: int = task.attempt_index
        self.retry_count: int = task.retry_count
        self.kind: str = task.kind
        self.lane: str = task.lane
        self.namespace: str = task.namespace
        self.input: bytes = task.input
        self.tags: Dict[str, str] = dict(task.tags)
        self.resumed: bool = task.resumed
        self.traceparent: str = task.traceparent
        self.deadline_at_ms: int = task.deadline_at_ms

    @property
    def cancelled(self) -> threading.Event:
        """Set when the task must stop (cancel_requested, lease lost, shutdown). Check it often."""
        return self._state.stop

    @property
    def stop_reason(self) -> str:
        return self._state.stop_reason

    def progress(self, percent: float, message: str = "") -> None:
        """Records progress (UpdateProgress) and waits for the gateway's answer.

        An EXECUTION_NOT_ACTIVE / STALE_LEASE / LEASE_EXPIRED answer means the task is no longer
        ours: the stop event is set so the handler winds down."""
        try:
            self._worker.operate(self._state, "update_progress", worker_pb2.UpdateProgressRequest(
                fence=self._state.fence, percent=float(percent), message=message[:1024]), timeout_s=30.0)
        except OperationFailed as err:
            log.warning("progress for %s not recorded: %s", self.execution_id, err)
            if err.definitive:
                self._worker.mark_lost(self._state, err.reason)

    # ---- HOOK(frames): streaming output frames ---------------------------------------------
    # Appending output frames (partial results / logs streamed while the task runs) is not in
    # the protocol yet. When it lands it will be one more Session operation carrying a fence and
    # a request_id, sent with `self._worker.operate(self._state, "<oneof field>", <request>)` —
    # exactly like progress() above. Nothing is stubbed here on purpose.
    # -------------------------------------------------------------------------------------------


Handler = Callable[[TaskContext], Optional[bytes]]


# --------------------------------------------------------------------------------------------
# Demo handlers
# --------------------------------------------------------------------------------------------


def echo_handler(ctx: TaskContext) -> Optional[bytes]:
    """result = input, byte-exact."""
    return ctx.input


def demo_handler(ctx: TaskContext) -> Optional[bytes]:
    """Behaviour driven by the input JSON object (anything else is echoed):

    - ``{"fail": true}``       fail the first attempt (category ``transient``, or ``"category"``),
                               complete the retry;
    - ``{"fail_attempts": N}`` fail attempts 0..N-1, complete attempt N;
    - ``{"fail_always": true}``fail every attempt;
    - ``{"sleep_ms": N}``      sleep in 20 ms steps while checking the cancel event, reporting
                               progress about every quarter, then complete;
    - otherwise complete at once.
    The result is a JSON object naming the worker, the attempt and echoing the input.
    """
    try:
        spec = json.loads(ctx.input.decode("utf-8")) if ctx.input else {}
    except (UnicodeDecodeError, ValueError):
        spec = None
    if not isinstance(spec, dict):
        return ctx.input

    category = str(spec.get("category", "transient"))
    fail_attempts = 1 if spec.get("fail") is True else int(spec.get("fail_attempts", 0))
    if spec.get("fail_always") is True or ctx.attempt_index < fail_attempts:
        raise TaskFailure(f"demo failure on attempt {ctx.attempt_index}", category)

    sleep_ms = int(spec.get("sleep_ms", 0))
    if sleep_ms > 0:
        deadline = time.monotonic() + sleep_ms / 1000.0
        quarter = max(sleep_ms / 4000.0, 0.25)
        next_progress = time.monotonic() + quarter
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if ctx.cancelled.wait(min(0.02, left)):
                emit("cancel_noticed", execution_id=ctx.execution_id, reason=ctx.stop_reason)
                raise TaskStopped(ctx.stop_reason)
            if time.monotonic() >= next_progress:
                done = 1.0 - max(left, 0) / (sleep_ms / 1000.0)
                ctx.progress(round(done * 100, 1), f"slept {int(done * sleep_ms)} of {sleep_ms} ms")
                next_progress += quarter
    return json.dumps({"attempt_index": ctx.attempt_index, "input": spec}, separators=(",", ":")).encode()


HANDLERS: Dict[str, Handler] = {"echo": echo_handler, "demo": demo_handler}


# --------------------------------------------------------------------------------------------
# One stream
# --------------------------------------------------------------------------------------------

_CLOSE = object()


class StreamSession:
    """One Session stream: its outgoing queue, reader thread and ticker thread."""

    def __init__(self, worker: "Worker", number: int):
        self.worker = worker
        self.number = number
        self.outgoing: "queue.Queue[object]" = queue.Queue()
        self.welcome: Optional[worker_pb2.Welcome] = None
        self.welcomed = threading.Event()
        self.ended = threading.Event()
        self.draining = threading.Event()
        self.end_code: Optional[grpc.StatusCode] = None
        self.end_details: str = ""
        self.call = None
        self.last_sent = time.monotonic()
        self.last_received = time.monotonic()
        self._closed = False
        self._lock = threading.Lock()
        self._ping_nonce = 0
        self.unacked_heartbeats = 0  # heartbeats sent since the last heartbeat_ack

    # ---- sending -------------------------------------------------------------------------------
    def _requests(self):
        while True:
            item = self.outgoing.get()
            if item is _CLOSE:
                return  # half-close
            yield item

    def send(self, req: "worker_pb2.SessionRequest") -> bool:
        with self._lock:
            if self._closed or self.ended.is_set():
                return False
            self.last_sent = time.monotonic()
            self.outgoing.put(req)
            return True

    def close(self) -> None:
        """Half-closes the request side; the gateway then ends the stream."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.outgoing.put(_CLOSE)

    def cancel(self) -> None:
        self.close()
        if self.call is not None:
            self.call.cancel()

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self, hello: "worker_pb2.Hello") -> None:
        self.send(worker_pb2.SessionRequest(hello=hello))  # rule 2: Hello first
        self.call = self.worker.session_rpc(self._requests(), metadata=self.worker.metadata)
        threading.Thread(target=self._read_loop, name=f"ff-reader-{self.number}", daemon=True).start()

    def _read_loop(self) -> None:
        try:
            for resp in self.call:
                self.last_received = time.monotonic()
                self.worker.on_response(self, resp)
            self.end_code, self.end_details = grpc.StatusCode.OK, "stream ended"
            code = self.call.code()
            if code is not None:
                self.end_code, self.end_details = code, self.call.details() or ""
        except grpc.RpcError as err:
            self.end_code = err.code()
            self.end_details = err.details() or ""
            detail = _error_detail(err)
            if detail is not None and detail.reason:
                field_note = f", field {detail.field}" if detail.field else ""
                self.end_details = f"{self.end_details} [reason {detail.reason}{field_note}]"
        except Exception as err:  # a bug in a callback must not wedge the worker
            log.exception("session %d reader crashed", self.number)
            self.end_code, self.end_details = grpc.StatusCode.INTERNAL, repr(err)
        finally:
            with self._lock:
                self._closed = True
            self.ended.set()
            self.welcomed.set()  # wake anyone still waiting for Welcome

    def ticker(self) -> None:
        """Heartbeats every heartbeat_interval_ms (rule 6); a Ping after keepalive_interval_ms
        without sending anything (rule 11)."""
        assert self.welcome is not None
        hb_s = max(self.welcome.heartbeat_interval_ms or 10000, 100) / 1000.0
        ka_s = max(self.welcome.keepalive_interval_ms or 15000, 100) / 1000.0
        next_hb = time.monotonic() + hb_s
        while not self.ended.wait(0.05):
            now = time.monotonic()
            if now >= next_hb:
                self.send(worker_pb2.SessionRequest(heartbeat=worker_pb2.Heartbeat(sent_at_ms=now_ms())))
                next_hb = now + hb_s
                self.unacked_heartbeats += 1
                if self.unacked_heartbeats == 4:  # 3 heartbeats in a row got no renewal round
                    log.warning("session %d unhealthy: 3 heartbeats without a heartbeat_ack; leases at risk",
                                self.number)
                    emit("unhealthy", session=self.number, unacked_heartbeats=3)
            elif now - self.last_sent >= ka_s:
                self._ping_nonce += 1
                self.send(worker_pb2.SessionRequest(ping=worker_pb2.Ping(nonce=self._ping_nonce)))


def _error_detail(err: grpc.RpcError) -> "Optional[common_pb2.ErrorDetail]":
    """The ErrorDetail of a stream's end (rule 16): the `ff-error-detail-bin` trailer, decoded with
    the generated class alone; else the reason from the ASCII `ff-error-reason` trailer."""
    try:
        trailers = list(err.trailing_metadata() or ())
    except Exception:
        return None
    for k, v in trailers:
        if k == "ff-error-detail-bin" and isinstance(v, bytes):
            try:
                return common_pb2.ErrorDetail.FromString(v)
            except Exception:
                break
    for k, v in trailers:
        if k == "ff-error-reason":
            text = v if isinstance(v, str) else v.decode("ascii", "replace")
            return common_pb2.ErrorDetail(reason=urllib.parse.unquote(text))
    return None


# --------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, args: argparse.Namespace, handler: Handler):
        self.args = args
        self.handler = handler
        default_instance = re.sub(r"[^A-Za-z0-9._:-]", "-", f"{args.worker_id}-{socket.gethostname()}-{os.getpid()}")
        self.instance_id = (args.instance_id or default_instance)[:128]
        self.metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
        self.channel = grpc.insecure_channel(args.address, options=CHANNEL_OPTIONS)
        self.session_rpc = self.channel.stream_stream(
            SESSION_METHOD,
            request_serializer=worker_pb2.SessionRequest.SerializeToString,
            response_deserializer=worker_pb2.SessionResponse.FromString,
        )
        self.pool = ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="ff-task")
        self.lock = threading.RLock()
        self.tasks: Dict[str, TaskState] = {}  # execution_id -> state, acked and not finished
        self.pending: Dict[str, PendingOp] = {}  # request_id -> operation awaiting its answer
        self.current: Optional[StreamSession] = None  # the welcomed stream operations go to
        self.session_number = 0
        self.stopping = threading.Event()  # SIGTERM/SIGINT: take no new work
        self.hard_stop = threading.Event()  # grace over: stop everything
        self.fatal: Optional[str] = None
        self.max_payload_bytes = 0
        self.tasks_idle = threading.Condition(self.lock)
        self.signals: List[str] = []  # appended by the signal handler, read by run()

    # ---- operations -----------------------------------------------------------------------------
    def new_request_id(self) -> str:
        return uuid.uuid4().hex  # 32 bytes, unique (rule 8: non-empty, unique, <= 64 bytes)

    def operate(self, state: TaskState, kind: str, message, timeout_s: Optional[float] = None):
        """Sends one task operation and waits for the answer with the same request_id.

        Returns the response body message; raises OperationFailed for an OperationError, a lost
        lease, a shutdown, or a timeout. An operation that has no answer when its stream dies is
        re-sent on the next stream (rule 13)."""
        op = PendingOp(self.new_request_id(), state.execution_id, kind, message)
        with self.lock:
            if state.lease_gone:
                raise OperationFailed(9, "LEASE_LOST_LOCALLY", f"lease gone ({state.stop_reason})")
            self.pending[op.request_id] = op
            session = self.current
        if session is not None:
            session.send(op.to_request())  # if the stream just died, the resend covers it
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not op.done.wait(0.1):
            if self.hard_stop.is_set():
                self._drop_op(op)
                raise OperationFailed(CODE_UNAVAILABLE, "SHUTDOWN", "worker stopped before the answer came")
            if deadline is not None and time.monotonic() > deadline:
                self._drop_op(op)
                raise OperationFailed(CODE_DEADLINE_EXCEEDED, "TIMEOUT", f"no answer to {kind} in {timeout_s}s")
        if op.local_error is not None:
            raise op.local_error
        resp = op.response
        assert resp is not None
        if resp.WhichOneof("body") == "error":
            d = resp.error.detail
            raise OperationFailed(resp.error.code, d.reason or "UNKNOWN", d.message, d.field, d.metadata)
        return getattr(resp, resp.WhichOneof("body"))

    def _drop_op(self, op: PendingOp) -> None:
        with self.lock:
            self.pending.pop(op.request_id, None)

    def mark_lost(self, state: TaskState, reason: str) -> None:
        """The lease is gone: stop the task; its waiting operations fail locally."""
        with self.lock:
            first = not state.lease_gone
            state.lease_gone = True
            state.stop_reason = state.stop_reason or reason
            state.stop.set()
            for op in list(self.pending.values()):
                if op.execution_id == state.execution_id:
                    op.local_error = OperationFailed(9, reason, "lease gone before the answer came")
                    self.pending.pop(op.request_id, None)
                    op.done.set()
        if first:
            log.info("task %s stopped: %s", state.execution_id, reason)

    def answer_from_adoption(self, state: TaskState, error: "common_pb2.ErrorDetail") -> None:
        """A lease not adopted because its execution ended under that very lease: its own terminal
        operation committed before the stream broke. Answer the queued one from the outcome the
        adoption reports, as replay reconciliation would (docs/protocol.md, re-adoption)."""
        if error.reason != "EXECUTION_NOT_ACTIVE" or error.metadata.get("epoch") != str(state.fence.lease_epoch):
            return
        outcome = error.metadata.get("outcome", "")
        with self.lock:
            for op in list(self.pending.values()):
                answer = ADOPTION_ANSWERS.get(op.kind)
                if op.execution_id != state.execution_id or answer is None:
                    continue
                self.pending.pop(op.request_id, None)
                if answer[0] == outcome:
                    op.response = answer[1]()
                else:
                    op.local_error = OperationFailed(9, "EXECUTION_NOT_ACTIVE", f"another outcome committed: {outcome}",
                                                     metadata=error.metadata)
                op.done.set()
        emit("adoption_outcome", execution_id=state.execution_id, outcome=outcome)

    def finish_terminal(self, state: TaskState, kind: str, message) -> Optional[object]:
        """complete/fail/cancel with retries on transient errors; a definitive error also frees
        the slot (rule 8). Returns the response body or None."""
        attempt = 0
        while True:
            try:
                return self.operate(state, kind, message, timeout_s=120.0)
            except OperationFailed as err:
                if err.code in RETRYABLE_OPERATION_CODES and attempt < 5 and not self.hard_stop.is_set():
                    attempt += 1
                    time.sleep(random.uniform(0, min(0.1 * 2 ** attempt, 5.0)))
                    continue
                log.warning("%s of %s not recorded: %s", kind, state.execution_id, err)
                emit("operation_error", execution_id=state.execution_id, operation=kind, reason=err.reason,
                     code=err.code, message=err.message, metadata=err.metadata)
                return None

    # ---- running a task ---------------------------------------------------------------------------
    def run_task(self, state: TaskState) -> None:
        ctx = TaskContext(self, state)
        emit("task_started", execution_id=ctx.execution_id, attempt_index=ctx.attempt_index, kind=ctx.kind,
             resumed=ctx.resumed)
        try:
            try:
                result = self.handler(ctx)
            except TaskStopped:
                result = None
            if state.stop.is_set():
                if state.handed_back and not state.lease_gone:
                    # Our own shutdown ran out of grace: hand the task back with a delay until now
                    # (same attempt, no retry consumed) instead of leaving the lease to expire.
                    self.finish_terminal(state, "delay", worker_pb2.DelayTaskRequest(
                        fence=state.fence, delay_until_ms=now_ms()))
                # Otherwise cancel_requested / lease_lost: the lease is revoked, nothing to report.
                emit("task_stopped", execution_id=ctx.execution_id, reason=state.stop_reason)
                return
            if result is not None and not isinstance(result, (bytes, bytearray)):
                raise TypeError(f"handler returned {type(result).__name__}, expected bytes or None")
            if result is not None and self.max_payload_bytes and len(result) > self.max_payload_bytes:
                raise TaskFailure(f"result of {len(result)} bytes exceeds max_payload_bytes "
                                  f"{self.max_payload_bytes}", "payload_too_large")
            req = worker_pb2.CompleteTaskRequest(fence=state.fence)
            if result is not None:
                req.result = bytes(result)
            resp = self.finish_terminal(state, "complete", req)
            if resp is not None:
                emit("task_completed", execution_id=ctx.execution_id, attempt_index=ctx.attempt_index,
                     reconciled=resp.reconciled)
        except TaskFailure as failure:
            self._report_failure(state, ctx, failure.reason, failure.category)
        except Exception as exc:  # a handler bug is a failure of the attempt
            log.exception("handler raised for %s", ctx.execution_id)
            self._report_failure(state, ctx, f"{type(exc).__name__}: {exc}", "handler_error")
        finally:
            with self.lock:
                if self.tasks.get(state.execution_id) is state:
                    del self.tasks[state.execution_id]
                self.tasks_idle.notify_all()

    def _report_failure(self, state: TaskState, ctx: TaskContext, reason: str, category: str) -> None:
        if state.lease_gone:
            emit("task_stopped", execution_id=ctx.execution_id, reason=state.stop_reason)
            return
        resp = self.finish_terminal(state, "fail", worker_pb2.FailTaskRequest(
            fence=state.fence, reason=reason[:4096], category=category[:64]))
        if resp is not None:
            emit("task_failed", execution_id=ctx.execution_id, attempt_index=ctx.attempt_index, category=category,
                 outcome=worker_pb2.FailOutcome.Name(resp.outcome), retry_count=resp.retry_count,
                 reconciled=resp.reconciled)

    # ---- gateway messages ---------------------------------------------------------------------------
    def on_response(self, session: StreamSession, resp: "worker_pb2.SessionResponse") -> None:
        body = resp.WhichOneof("body")
        if body == "welcome":
            session.welcome = resp.welcome
            session.welcomed.set()
        elif body == "tasks":
            self.on_tasks(session, resp.tasks.tasks)
        elif body == "heartbeat_ack":
            session.unacked_heartbeats = 0
            self.on_heartbeat_ack(resp.heartbeat_ack)
        elif body == "lease_lost":
            ll = resp.lease_lost
            emit("lease_lost", execution_id=ll.execution_id, lease_id=ll.lease_id, reason=ll.reason)
            with self.lock:
                state = self.tasks.get(ll.execution_id)
            if state is not None and (not ll.lease_id or ll.lease_id == state.fence.lease_id):
                self.mark_lost(state, ll.reason or "LEASE_LOST")
        elif body == "cancel_requested":
            cr = resp.cancel_requested
            emit("cancel_requested", execution_id=cr.execution_id, lease_id=cr.lease_id, reason=cr.reason,
                 cancelled_by=cr.cancelled_by)
            with self.lock:
                state = self.tasks.get(cr.execution_id)
            # rule 7: match the lease, not only the execution (it may be back under a newer lease).
            if state is not None and (not cr.lease_id or cr.lease_id == state.fence.lease_id):
                # rule 7: the lease is already revoked; the handler sees ctx.cancelled.
                self.mark_lost(state, f"cancelled by {cr.cancelled_by or 'someone'}: {cr.reason}".strip())
        elif body == "drain":
            emit("drain", session=session.number, reason=resp.drain.reason, grace_ms=resp.drain.grace_ms)
            session.draining.set()
        elif body == "ping":
            session.send(worker_pb2.SessionRequest(pong=worker_pb2.Pong(nonce=resp.ping.nonce)))
        elif body == "pong":
            pass  # last_received was updated; that is all a pong is for
        elif resp.request_id:
            with self.lock:
                op = self.pending.pop(resp.request_id, None)
            if op is None:
                log.debug("answer for unknown request %s (%s), ignored", resp.request_id, body)
                return
            op.response = resp
            op.done.set()
        else:
            log.warning("unexpected message from the gateway: %s", body)

    def on_tasks(self, session: StreamSession, tasks) -> None:
        if self.stopping.is_set():
            # Shutting down: do not ack; unacknowledged tasks are requeued at once when the
            # session ends (rule 5).
            log.info("ignoring %d pushed task(s) while stopping", len(tasks))
            return
        states = []
        with self.lock:
            for t in tasks:
                state = TaskState(task=t)
                self.tasks[t.fence.execution_id] = state
                states.append(state)
        # rule 5: ack at once, before running anything.
        session.send(worker_pb2.SessionRequest(ack=worker_pb2.TaskAck(lease_ids=[t.fence.lease_id for t in tasks])))
        for state in states:
            self.pool.submit(self.run_task, state)

    def on_heartbeat_ack(self, ack: "worker_pb2.HeartbeatAck") -> None:
        for status in ack.leases:
            with self.lock:
                state = self.tasks.get(status.execution_id)
            if state is None or (status.lease_id and status.lease_id != state.fence.lease_id):
                continue  # not ours, or about an older lease of an execution pushed to us again
            if status.renewed:
                state.heartbeat_misses = 0
            else:
                state.heartbeat_misses += 1
                emit("lease_lost", execution_id=status.execution_id, reason=status.reason or "NOT_RENEWED")
                self.mark_lost(state, status.reason or "NOT_RENEWED")  # rule 6

    # ---- connection management -----------------------------------------------------------------------
    def hello(self) -> "worker_pb2.Hello":
        with self.lock:
            held = [s.fence for s in self.tasks.values() if not s.lease_gone]
        credit = 0 if self.stopping.is_set() else self.args.concurrency
        return worker_pb2.Hello(
            worker_id=self.args.worker_id, instance_id=self.instance_id, namespace=self.args.namespace,
            lanes=self.args.lanes, capabilities=self.args.capabilities,
            max_concurrent_tasks=max(credit, 1), held_leases=held, sdk=SDK_NAME)

    def open_session(self) -> StreamSession:
        """Opens a stream, sends Hello, waits for Welcome and installs the stream as current.
        Raises grpc-ish errors via the returned session's end_code when it fails."""
        self.session_number += 1
        session = StreamSession(self, self.session_number)
        hello = self.hello()
        held = list(hello.held_leases)
        session.start(hello)
        if not session.welcomed.wait(self.args.welcome_timeout_ms / 1000.0) or session.welcome is None:
            if not session.ended.is_set():
                session.end_code, session.end_details = grpc.StatusCode.DEADLINE_EXCEEDED, "no Welcome in time"
            session.cancel()
            return session
        w = session.welcome
        self.max_payload_bytes = w.max_payload_bytes
        # rule 3: one adoption per held lease, in order. A lease not adopted is gone.
        adopted = 0
        for fence, result in zip(held, w.adoptions):
            with self.lock:
                state = self.tasks.get(fence.execution_id)
            if state is None:
                continue
            if result.adopted:
                adopted += 1
            else:
                self.answer_from_adoption(state, result.error)
                self.mark_lost(state, (result.error.reason or "NOT_ADOPTED"))
        if len(w.adoptions) < len(held):
            for fence in held[len(w.adoptions):]:
                state = self.tasks.get(fence.execution_id)
                if state is not None:
                    self.mark_lost(state, "NOT_ADOPTED")
        with self.lock:
            old, self.current = self.current, session
            resend = [op for op in self.pending.values()]
        emit("welcome", session=session.number, session_id=w.session_id, gateway_id=w.gateway_id,
             heartbeat_interval_ms=w.heartbeat_interval_ms, lease_ttl_ms=w.lease_ttl_ms,
             held=len(held), adopted=adopted, resent=len(resend))
        # rule 13: operations that had no answer are re-sent (terminal ones reconcile, rule 9).
        for op in resend:
            session.send(op.to_request())
        if self.stopping.is_set():
            session.send(worker_pb2.SessionRequest(credit=worker_pb2.Credit(max_concurrent_tasks=0)))
        threading.Thread(target=session.ticker, name=f"ff-ticker-{session.number}", daemon=True).start()
        if old is not None and old is not session:
            old.close()  # the drained stream: the gateway ends it after its grace
        return session

    def connection_loop(self) -> None:
        attempt = 0
        while not self.hard_stop.is_set():
            if self.stopping.is_set() and not self.has_tasks():
                return
            session = self.open_session()
            if session.welcome is not None:
                welcomed_at = time.monotonic()
                # Wait until the stream ends, the gateway drains it, or we are done.
                while not (session.ended.is_set() or session.draining.is_set() or self.hard_stop.is_set()):
                    if self.stopping.is_set() and not self.has_tasks():
                        return
                    session.ended.wait(0.1)
                if self.hard_stop.is_set():
                    return
                if session.draining.is_set() and not session.ended.is_set():
                    # rule 12: open the next session right away; ops move there once welcomed.
                    emit("reconnecting", reason="drain", delay_ms=0)
                    continue
                emit("stream_ended", session=session.number, code=_code_name(session.end_code),
                     details=session.end_details)
                if session.end_code in FATAL_STREAM_CODES:
                    self._give_up(f"the gateway ended the session: {_code_name(session.end_code)}: "
                                  f"{session.end_details}")
                    return
                if time.monotonic() - welcomed_at > 10.0:
                    attempt = 0  # a session that lived a while resets the backoff
            else:
                code, details = session.end_code, session.end_details
                if code in FATAL_STREAM_CODES:
                    self._give_up(f"the gateway refused the session: {_code_name(code)}: {details}")
                    return
                hint = (" (is a FlowFabric gateway listening there? `npm start` runs one)"
                        if code == grpc.StatusCode.UNAVAILABLE and self.current is None else "")
                log.warning("cannot open a session at %s: %s: %s%s", self.args.address, _code_name(code), details, hint)
            with self.lock:
                if self.current is session:
                    self.current = None
            attempt += 1
            if self.args.max_reconnect_attempts and attempt > self.args.max_reconnect_attempts:
                self._give_up(f"gave up after {attempt - 1} reconnect attempt(s); is a FlowFabric gateway "
                              f"listening on {self.args.address}? (start one with `npm start`)")
                return
            # rule 13: exponential (100 ms doubling to 5 s) with full jitter.
            cap = min(self.args.backoff_max_ms, self.args.backoff_initial_ms * 2 ** min(attempt - 1, 30))
            delay_ms = random.uniform(0, cap)
            emit("reconnecting", attempt=attempt, delay_ms=int(delay_ms), code=_code_name(session.end_code),
                 details=session.end_details)
            if self.hard_stop.wait(delay_ms / 1000.0):
                return

    def _give_up(self, message: str) -> None:
        self.fatal = message
        log.error("%s", message)
        self.hard_stop.set()

    def has_tasks(self) -> bool:
        with self.lock:
            return bool(self.tasks)

    # ---- shutdown ------------------------------------------------------------------------------------
    def on_signal(self, signum: int) -> None:
        """Signal handler: only records the signal; the main loop acts on it (no locks here)."""
        self.signals.append(signal.Signals(signum).name)

    def begin_stop(self, signame: str) -> None:
        emit("stopping", signal=signame, running=len(self.tasks), grace_ms=self.args.grace_ms)
        self.stopping.set()
        session = self.current
        if session is not None:
            # Stop taking work: credit 0 pauses pushes (rule 10).
            session.send(worker_pb2.SessionRequest(credit=worker_pb2.Credit(max_concurrent_tasks=0)))

    def run(self) -> int:
        emit("ready", worker_id=self.args.worker_id, instance_id=self.instance_id, address=self.args.address,
             lanes=self.args.lanes, concurrency=self.args.concurrency, handler=self.args.handler, pid=os.getpid())
        conn = threading.Thread(target=self.connection_loop, name="ff-connection", daemon=True)
        conn.start()
        # Main thread: wait for a stop request (signals arrive here) or a fatal error.
        while not self.signals and not self.hard_stop.is_set():
            time.sleep(0.05)
        if not self.hard_stop.is_set():
            self.begin_stop(self.signals[0])
            # Drain: finish running tasks within the grace; a second signal cuts it short.
            grace_end = time.monotonic() + self.args.grace_ms / 1000.0
            with self.lock:
                while (self.tasks and time.monotonic() < grace_end and len(self.signals) < 2
                       and not self.hard_stop.is_set()):
                    self.tasks_idle.wait(0.05)
                leftover = list(self.tasks.values())
                if leftover:
                    log.warning("grace over with %d task(s) running: handing them back", len(leftover))
                    for state in leftover:
                        state.handed_back = True
                        state.stop_reason = state.stop_reason or "worker shutdown"
                        state.stop.set()  # handlers see ctx.cancelled; run_task sends `delay`
                    end = time.monotonic() + 3.0
                    while self.tasks and time.monotonic() < end and not self.hard_stop.is_set():
                        self.tasks_idle.wait(0.05)
            self.hard_stop.set()
        session = self.current
        if session is not None:
            session.close()  # half-close: the gateway ends the stream; unacked pushes are requeued
            session.ended.wait(2.0)
            session.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.channel.close()
        conn.join(timeout=2.0)
        emit("stopped", fatal=self.fatal or "")
        return 1 if self.fatal else 0


def _code_name(code) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="FlowFabric example worker (Python, grpcio, protoc --python_out message classes).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--address", default="127.0.0.1:50051", help="gateway gRPC address host:port")
    p.add_argument("--lanes", default="default", help="comma-separated lanes to take work from")
    p.add_argument("--worker-id", default="py-worker", help="stable worker identity")
    p.add_argument("--instance-id", default="", help="process identity; default <worker-id>-<host>-<pid>")
    p.add_argument("--namespace", default="", help="namespace; empty means default")
    p.add_argument("--capabilities", default="", help="comma-separated capabilities offered")
    p.add_argument("--concurrency", type=int, default=8, help="max concurrent tasks (1..10000)")
    p.add_argument("--handler", choices=sorted(HANDLERS), default="echo",
                   help="echo: result = input; demo: behaviour from the input JSON (see demo_handler)")
    p.add_argument("--token", default=os.environ.get("FLOWFABRIC_TOKEN", ""),
                   help="bearer token sent as authorization metadata (env FLOWFABRIC_TOKEN)")
    p.add_argument("--grace-ms", type=int, default=10000, help="time running tasks get to finish on SIGTERM")
    p.add_argument("--welcome-timeout-ms", type=int, default=10000, help="how long to wait for Welcome")
    p.add_argument("--backoff-initial-ms", type=int, default=100, help="first reconnect backoff cap")
    p.add_argument("--backoff-max-ms", type=int, default=5000, help="largest reconnect backoff cap")
    p.add_argument("--max-reconnect-attempts", type=int, default=0,
                   help="give up (exit 1) after this many failed attempts in a row; 0 = retry forever")
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="stderr log level")
    args = p.parse_args(argv)
    args.lanes = [s for s in (x.strip() for x in args.lanes.split(",")) if s]
    args.capabilities = [s for s in (x.strip() for x in args.capabilities.split(",")) if s]
    if not args.lanes:
        p.error("--lanes needs at least one lane")
    if not 1 <= args.concurrency <= 10000:
        p.error("--concurrency must be in 1..10000")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    worker = Worker(args, HANDLERS[args.handler])
    signal.signal(signal.SIGTERM, lambda signum, _frame: worker.on_signal(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: worker.on_signal(signum))
    return worker.run()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # A handler that ignores ctx.cancelled must not keep the process alive past the grace.
    os._exit(code)
