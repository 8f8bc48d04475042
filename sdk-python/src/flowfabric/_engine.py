"""The worker protocol's state, shared by the threaded and the asyncio worker.

Transport-free: a worker's stream object hands every gateway message to :meth:`Engine.handle`
and gives the engine a ``send`` function; the engine keeps the tasks this process holds, the
operations waiting for an answer (by request id), and does what docs/protocol.md asks of each
message: acks pushes at once (rule 5), applies heartbeat acks, lease losses and cancels to their
task (rules 6, 7), re-adopts held leases from a Welcome and re-sends unanswered operations on the
new stream (rules 3, 13). Operations answer through ``concurrent.futures.Future`` objects, which
threads wait on and asyncio awaits (``asyncio.wrap_future``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Callable, Dict, List, Optional, Tuple

from ._version import SDK_NAME
from .errors import FlowFabricError, LocalReason
from .options import WorkerOptions
from .types import AppendFrameResult, FailResult, SettleResult, Signal, SuspendResult, WaitpointToken
from .v1 import signal_pb2, worker_pb2

log = logging.getLogger("flowfabric.worker")

Send = Callable[[worker_pb2.SessionRequest], None]

#: Every task operation: whether it ends the task, and how its answer becomes a Python value.
#: (A suspend ends the task unless the gateway answers ALREADY_SATISFIED: see KEEPS_LEASE.)
OPERATIONS: Dict[str, Tuple[bool, Callable]] = {
    "renew_lease": (False, lambda r: r.lease_expires_at_ms),
    "update_progress": (False, lambda r: None),
    "append_frame": (False, lambda r: AppendFrameResult(r.entry_id, r.frame_count, r.summary_version, r.duplicate)),
    "complete": (True, lambda r: SettleResult(r.reconciled)),
    "fail": (True, lambda r: FailResult(
        "retry_scheduled" if r.outcome == worker_pb2.FAIL_OUTCOME_RETRY_SCHEDULED else "failed",
        r.retry_at_ms, r.retry_count, r.reconciled)),
    "cancel": (True, lambda r: SettleResult(r.reconciled)),
    "delay": (True, lambda r: None),
    "suspend": (True, SuspendResult.from_proto),
    "create_waitpoint": (False, lambda r: WaitpointToken.from_proto(r.waitpoint)),
    "resume_signals": (False, lambda r: [Signal.from_proto(s) for s in r.signals]),
}

#: Answers after which a settling operation leaves the task running (it keeps its lease).
KEEPS_LEASE: Dict[str, Callable] = {
    "suspend": lambda r: r.outcome == signal_pb2.SUSPEND_OUTCOME_ALREADY_SATISFIED,
}


class PendingOp:
    __slots__ = ("request", "kind", "task", "future")

    def __init__(self, request: worker_pb2.SessionRequest, kind: str, task) -> None:
        self.request = request
        self.kind = kind
        self.task = task
        self.future: Future = Future()


class Engine:
    """Tasks held and operations pending for one worker process (thread-safe)."""

    def __init__(self, options: WorkerOptions, new_task: Callable, emit: Callable[..., None]):
        self.options = options
        self.lock = threading.RLock()
        self.tasks: Dict[str, object] = {}  # lease_id -> ClaimedTask, acked and not ended
        self.pending: Dict[str, PendingOp] = {}  # request_id -> operation without an answer
        self.send: Optional[Send] = None  # the welcomed stream's send
        self.stopping = False
        self.closed = False  # close(): nothing will be sent or answered any more
        self.welcome: Optional[worker_pb2.Welcome] = None
        self.unanswered_heartbeats = 0
        self._new_task = new_task
        self._emit = emit
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:16]
        self.idle = threading.Condition(self.lock)  # notified whenever a task ends

    # -- session lifecycle -----------------------------------------------------------------------
    def hello(self) -> Tuple[worker_pb2.Hello, list]:
        """The Hello for a new stream, and the tasks whose leases it asks to re-adopt (in order)."""
        o = self.options
        with self.lock:
            held = [t for t in self.tasks.values() if not t._lost_while_settling]
            credit = 1 if self.stopping else o.max_concurrent_tasks
        hello = worker_pb2.Hello(
            worker_id=o.worker_id, instance_id=o.instance_id, namespace=o.namespace, lanes=list(o.lanes),
            capabilities=list(o.capabilities), max_concurrent_tasks=credit, held_leases=[t._fence for t in held],
            sdk=SDK_NAME, batching=o.batching)
        return hello, held

    def welcomed(self, welcome: worker_pb2.Welcome, held: list, send: Send) -> dict:
        """Installs a welcomed stream: applies adoptions (a lease not adopted is gone), then
        re-sends every unanswered operation of a task still held on it (rule 13)."""
        adopted = lost = 0
        for i, task in enumerate(held):
            result = welcome.adoptions[i] if i < len(welcome.adoptions) else None
            if result is not None and result.adopted:
                adopted += 1
                with self.lock:
                    task._renewed(result.lease_expires_at_ms)
            else:
                lost += 1
                reason = result.error.reason if result is not None and result.error.reason else "NOT_ADOPTED"
                # Its queued appends and progress fail here; a queued complete/fail/cancel is re-sent
                # below and replay reconciliation answers it (reconciled, or the outcome that raced in):
                # the execution may have ended under this very lease before the stream broke.
                self.lose(task, "lease_lost", reason, fail_pending=True, keep_settle=True)
        with self.lock:
            self.welcome = welcome
            self.unanswered_heartbeats = 0
            self.send = send
            resend = [op.request for op in self.pending.values()]
            stopping = self.stopping
        for request in resend:
            send(request)
        if stopping:
            send(worker_pb2.SessionRequest(credit=worker_pb2.Credit(max_concurrent_tasks=0)))
        return {"session_id": welcome.session_id, "gateway_id": welcome.gateway_id, "held": len(held),
                "adopted": adopted, "not_adopted": lost, "resent": len(resend)}

    def detach(self, send: Send) -> None:
        """The stream behind ``send`` is gone: operations wait for the next one."""
        with self.lock:
            if self.send is send:
                self.send = None

    def begin_stop(self) -> None:
        """Stop taking work: credit 0 now, and no ack for anything pushed from here on."""
        with self.lock:
            self.stopping = True
            send = self.send
        if send is not None:
            send(worker_pb2.SessionRequest(credit=worker_pb2.Credit(max_concurrent_tasks=0)))

    def heartbeat(self) -> Optional[worker_pb2.SessionRequest]:
        """One heartbeat period: counts a missed renewal for tasks not renewed since the last one."""
        with self.lock:
            for task in self.tasks.values():
                task._tick()
            self.unanswered_heartbeats += 1
            if self.unanswered_heartbeats == 4:
                log.warning("3 heartbeats without a heartbeat_ack: leases at risk")
        return worker_pb2.SessionRequest(heartbeat=worker_pb2.Heartbeat(sent_at_ms=int(time.time() * 1000)))

    # -- gateway messages ------------------------------------------------------------------------
    def handle(self, resp: worker_pb2.SessionResponse, stream) -> List[object]:
        """Applies one gateway message; returns the tasks to start. ``stream`` has ``send(request)``
        and ``drained(drain)``; a Welcome never gets here."""
        body = resp.WhichOneof("body")
        if body == "batch":
            started: List[object] = []
            for r in resp.batch.responses:
                started.extend(self.handle(r, stream))
            return started
        if body == "tasks":
            return self._pushed(resp.tasks.tasks, stream)
        if body == "heartbeat_ack":
            self._heartbeat_ack(resp.heartbeat_ack)
        elif body == "lease_lost":
            ll = resp.lease_lost
            task = self._find(ll.execution_id, ll.lease_id)
            self._emit("lease_lost", execution_id=ll.execution_id, reason=ll.reason)
            if task is not None:
                self.lose(task, "lease_lost", ll.reason or "LEASE_LOST")
        elif body == "cancel_requested":
            cr = resp.cancel_requested
            task = self._find(cr.execution_id, cr.lease_id)
            self._emit("cancel_requested", execution_id=cr.execution_id, reason=cr.reason, cancelled_by=cr.cancelled_by)
            if task is not None:
                self.lose(task, "cancelled", cr.reason or f"cancelled by {cr.cancelled_by or 'someone'}")
        elif body == "drain":
            stream.drained(resp.drain)
        elif body == "ping":
            stream.send(worker_pb2.SessionRequest(pong=worker_pb2.Pong(nonce=resp.ping.nonce)))
        elif body == "pong" or body is None:
            pass
        elif resp.request_id:
            with self.lock:
                op = self.pending.pop(resp.request_id, None)
            if op is not None:
                self._answer(op, resp, body)
        else:
            log.warning("unexpected message from the gateway: %s", body)
        return []

    def _pushed(self, pushed, stream) -> List[object]:
        with self.lock:
            if self.stopping:
                # Not acked: the gateway requeues it when the session ends (rule 5).
                return []
            tasks = [self._new_task(t) for t in pushed]
            for task in tasks:
                self.tasks[task.lease_id] = task
        stream.send(worker_pb2.SessionRequest(ack=worker_pb2.TaskAck(lease_ids=[t.lease_id for t in tasks])))
        return tasks

    def _heartbeat_ack(self, ack: worker_pb2.HeartbeatAck) -> None:
        with self.lock:
            self.unanswered_heartbeats = 0
        for status in ack.leases:
            task = self._find(status.execution_id, status.lease_id)
            if task is None:
                continue  # not ours, or about an older lease of an execution pushed again
            if status.renewed:
                with self.lock:
                    task._renewed(status.lease_expires_at_ms)
            else:
                self._emit("lease_lost", execution_id=status.execution_id, reason=status.reason or "NOT_RENEWED")
                self.lose(task, "lease_lost", status.reason or "NOT_RENEWED")

    def _find(self, execution_id: str, lease_id: str):
        with self.lock:
            if lease_id:
                return self.tasks.get(lease_id)
            for task in self.tasks.values():
                if task.execution_id == execution_id:
                    return task
        return None

    # -- operations ------------------------------------------------------------------------------
    def submit(self, task, kind: str, body) -> Future:
        """Sends one task operation; the future resolves with its converted answer or a
        :class:`FlowFabricError`. Without a stream it waits in the pending table (re-sent once welcomed)."""
        terminal = OPERATIONS[kind][0]
        with self.lock:
            error = task._check_running()
            if error is None and self.closed:
                error = FlowFabricError.local("CANCELLED", LocalReason.CLOSED, "the worker is closed")
            if error is not None:
                future: Future = Future()
                future.set_exception(error)
                return future
            if terminal:
                task._state = "settling"
            request = worker_pb2.SessionRequest(request_id=f"{self._id_prefix}-{next(self._ids)}", **{kind: body})
            op = PendingOp(request, kind, task)
            self.pending[request.request_id] = op
            send = self.send
        if send is not None:
            send(request)
        return op.future

    def _answer(self, op: PendingOp, resp: worker_pb2.SessionResponse, body: str) -> None:
        terminal, convert = OPERATIONS[op.kind]
        task = op.task
        if body == "error":
            error = FlowFabricError.from_operation_error(resp.error)
            with self.lock:
                if error.is_lease_gone:
                    task._abort("lease_lost", error.reason)
                    self._end(task, "consumed" if terminal else "lost")
                elif terminal and task._lost_while_settling:
                    self._end(task, "lost")
                elif terminal:
                    task._state = "running"  # refused (e.g. PAYLOAD_TOO_LARGE): the handler may settle otherwise
            op.future.set_exception(error)
            return
        if body != op.kind:
            op.future.set_exception(FlowFabricError.local("INTERNAL", LocalReason.PROTOCOL_VIOLATION,
                                                          f"{op.kind} answered with {body}"))
            return
        answer = getattr(resp, body)
        value = convert(answer)
        if terminal:
            with self.lock:
                keeps = KEEPS_LEASE.get(op.kind)
                if keeps is not None and keeps(answer) and not task._lost_while_settling:
                    task._state = "running"
                else:
                    self._end(task, "consumed")
        op.future.set_result(value)

    def lose(self, task, kind: str, message: str, fail_pending: bool = False, keep_settle: bool = False) -> None:
        """The lease is gone or the execution was cancelled: abort the task's signal; a running
        task ends now, a settling one when its answer arrives. ``fail_pending`` fails the task's
        unanswered operations locally (all, or with ``keep_settle`` all but its terminal one)."""
        failed: List[PendingOp] = []
        with self.lock:
            task._abort(kind, message)
            if task._state == "running":
                self._end(task, "lost")
            elif task._state == "settling":
                task._lost_while_settling = True
                if fail_pending and not keep_settle:
                    self._end(task, "lost")
            if fail_pending:
                failed = [op for op in self.pending.values()
                          if op.task is task and not (keep_settle and OPERATIONS[op.kind][0])]
                for op in failed:
                    del self.pending[op.request.request_id]
        error = FlowFabricError.local("FAILED_PRECONDITION", LocalReason.LEASE_LOST,
                                      f"the lease of {task.execution_id} is gone ({kind}: {message})")
        for op in failed:
            op.future.set_exception(error)

    def _end(self, task, state: str) -> None:
        task._state = state
        if self.tasks.get(task.lease_id) is task:
            del self.tasks[task.lease_id]
        self.idle.notify_all()

    def held_count(self) -> int:
        with self.lock:
            return len(self.tasks)

    def close(self, reason: str) -> None:
        """The worker stopped for good: pending and later operations fail with CLOSED."""
        with self.lock:
            self.closed = True
            ops = list(self.pending.values())
            self.pending.clear()
        for op in ops:
            op.future.set_exception(FlowFabricError.local("CANCELLED", LocalReason.CLOSED, reason))
