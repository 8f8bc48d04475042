"""The SDK against one real gateway (npm start's entry, embedded redis-server): executions with
mixed outcomes, retries, idempotency, cancels reaching handlers, frames, errors, the asyncio worker."""

from __future__ import annotations

import asyncio
import threading
import time
import unittest

from harness import Events, Gateway, wait_until

import flowfabric as ff
from flowfabric.aio import AsyncWorker

TERMINAL = ("completed", "failed", "cancelled", "expired", "skipped")


class WorkerTest(unittest.TestCase):
    gateway: Gateway
    client: ff.Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.gateway = Gateway().start()
        cls.client = ff.Client(cls.gateway.grpc_address)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.gateway.cleanup()

    def start_worker(self, lane: str, handler=None, **options) -> ff.Worker:
        worker = ff.Worker(self.gateway.grpc_address, lanes=[lane], handle_signals=False, **options)
        if handler is not None:
            worker.start(handler, wait_welcome_s=30)
        self.addCleanup(worker.stop, 5)
        return worker

    def wait_terminal(self, ids, timeout_s: float = 120.0):
        """Final descriptions by id (polls: there is no watch call yet)."""
        final, pending = {}, list(ids)
        end = time.monotonic() + timeout_s
        while pending:
            still = []
            for i in pending:
                d = self.client.describe_execution(i)
                (final.__setitem__(i, d) if d.state in TERMINAL else still.append(i))
            pending = still
            if pending:
                self.assertLess(time.monotonic(), end, f"{len(pending)} executions not terminal, e.g. {pending[0]}")
                time.sleep(0.05)
        return final

    def test_500_executions_with_mixed_outcomes(self):
        """complete (bytes, str, JSON, no result), fail terminal, fail-then-retry, handler error,
        worker cancel, delay-and-resume: every execution ends as its input asked."""
        lane = "mixed"
        plans = ["bytes", "json", "none", "fail", "retry", "raise", "cancel", "delay", "text"]
        specs = []
        for i in range(500):
            plan = plans[i % len(plans)]
            policy = ff.RetryPolicy(max_retries=2, backoff="fixed", initial_delay_ms=50,
                                    retryable_categories=["transient"]) if plan in ("retry", "fail") else None
            specs.append(ff.ExecutionSpec(lane, "mixed", {"i": i, "plan": plan}, retry_policy=policy,
                                          tags={"plan": plan}))

        def handler(task: ff.ClaimedTask):
            spec = task.input_json()
            plan, i = spec["plan"], spec["i"]
            if plan == "bytes":
                return bytes([i % 256, 0, 255])
            if plan == "json":
                return {"i": i, "attempt": task.attempt_index}
            if plan == "text":
                return f"text-{i}"
            if plan == "none":
                return None
            if plan == "fail":
                raise ff.TaskFailure(f"permanent {i}", "validation")  # not retryable under the policy
            if plan == "retry":
                if task.attempt_index == 0:
                    raise ff.TaskFailure(f"transient {i}", "transient")
                return {"retried": i, "attempt": task.attempt_index}
            if plan == "raise":
                raise RuntimeError(f"boom {i}")
            if plan == "cancel":
                task.cancel(f"not needed {i}")
                return None
            if plan == "delay":
                if not task.resumed:
                    task.delay(delay_s=0.05)
                    return None
                return {"resumed": i}
            raise AssertionError(plan)

        self.start_worker(lane, handler, max_concurrent_tasks=16)
        created = self.client.create_executions(specs)
        self.assertEqual(len(created), 500)
        final = self.wait_terminal([c.execution_id for c in created])

        counts = {}
        for spec, c in zip(specs, created):
            d = final[c.execution_id]
            plan, i = spec.input["plan"], spec.input["i"]
            counts[d.state] = counts.get(d.state, 0) + 1
            with self.subTest(plan=plan, i=i):
                if plan in ("bytes", "json", "none", "text", "retry", "delay"):
                    self.assertEqual(d.state, "completed")
                    result = self.client.get_result(c.execution_id).result
                    expected = {
                        "bytes": bytes([i % 256, 0, 255]), "json": b'{"i":%d,"attempt":0}' % i, "none": None,
                        "text": f"text-{i}".encode(), "retry": b'{"retried":%d,"attempt":1}' % i,
                        "delay": b'{"resumed":%d}' % i,
                    }[plan]
                    self.assertEqual(result, expected)
                    self.assertEqual(d.attempt_count, 2 if plan == "retry" else 1)
                    self.assertEqual(d.retry_count, 1 if plan == "retry" else 0)
                elif plan in ("fail", "raise"):
                    self.assertEqual(d.state, "failed")
                    self.assertEqual(d.failure_category, "validation" if plan == "fail" else "error")
                    self.assertIn(f"permanent {i}" if plan == "fail" else f"boom {i}", d.failure_reason)
                else:
                    self.assertEqual(d.state, "cancelled")
                    self.assertEqual(d.cancel_reason, f"not needed {i}")
        self.assertEqual(sum(counts.values()), 500)

    def test_idempotency_key_returns_the_same_execution(self):
        first = self.client.create_execution("idem", "k", b"x", idempotency_key="order-42")
        again = self.client.create_execution("idem", "k", b"x", idempotency_key="order-42")
        self.assertEqual((again.execution_id, again.duplicate, first.duplicate), (first.execution_id, True, False))

    def test_operator_cancel_reaches_the_running_handler(self):
        lane = "cancel"
        seen = {}
        started = threading.Event()

        def handler(task: ff.ClaimedTask):
            started.set()
            if not task.cancelled.wait(30):
                raise AssertionError("never cancelled")
            seen["reason"] = task.abort_reason
            seen["healthy"] = task.is_lease_healthy()
            try:
                task.update_progress(99)
            except ff.FlowFabricError as err:
                seen["after"] = err.reason

        self.start_worker(lane, handler)
        created = self.client.create_execution(lane, "wait", b"")
        self.assertTrue(started.wait(30))
        result = self.client.cancel_execution(created.execution_id, "user pressed stop")
        self.assertEqual((result.state, result.cancelled), ("cancelled", True))
        wait_until(lambda: "after" in seen, "the handler to notice the cancel")
        self.assertEqual(seen["reason"], ff.AbortReason("cancelled", "user pressed stop"))
        self.assertFalse(seen["healthy"])
        self.assertEqual(seen["after"], ff.LocalReason.LEASE_LOST)
        d = self.client.describe_execution(created.execution_id)
        self.assertEqual((d.state, d.cancel_reason, d.cancelled_by), ("cancelled", "user pressed stop", "operator"))

    def test_frames_stream_live_to_a_tail_and_read_back_in_order(self):
        lane = "frames"
        release = threading.Event()

        def handler(task: ff.ClaimedTask):
            futures = [task.append_frame("token", f"t{n}", wait=False) for n in range(200)]
            last = task.append_frame("usage", {"tokens": 200}, {"model": "m-1"}, correlation_id="gen-1")
            self.assertEqual([f.result().frame_count for f in futures], list(range(1, 201)))
            release.wait(30)
            return last.entry_id

        self.start_worker(lane, handler)
        created = self.client.create_execution(lane, "stream", b"")
        tail = self.client.tail_stream(created.execution_id, 0)
        frames = []
        for frame in tail:
            frames.append(frame)
            if len(frames) == 201:
                release.set()
        self.assertEqual(tail.end.reason, "completed")
        self.assertEqual([f.text() for f in frames[:200]], [f"t{n}" for n in range(200)])
        self.assertEqual([f.seq for f in frames], list(range(1, 202)))
        usage = frames[200]
        self.assertEqual((usage.frame_type, usage.payload, usage.metadata, usage.correlation_id),
                         ("usage", b'{"tokens":200}', {"model": "m-1"}, "gen-1"))
        result = self.client.wait_result(created.execution_id, 30)
        self.assertEqual(result.result.decode(), usage.entry_id)
        # Read back in pages: the same frames, then the close.
        page1 = self.client.read_stream(created.execution_id, 0, count=150)
        page2 = self.client.read_stream(created.execution_id, 0, after_entry_id=page1.next_cursor, count=150)
        self.assertTrue(page1.more)
        self.assertEqual([f.entry_id for f in page1.frames + page2.frames], [f.entry_id for f in frames])
        self.assertEqual(page2.closed.reason, "completed")

    def test_errors_carry_reason_and_field(self):
        with self.assertRaises(ff.FlowFabricError) as bad:
            self.client.create_execution("no spaces allowed", "k")
        self.assertEqual((bad.exception.code, bad.exception.field), ("INVALID_ARGUMENT", "lane"))
        with self.assertRaises(ff.FlowFabricError) as missing:
            self.client.describe_execution("1:01a238d6-1229-7000-a116-befdd80b309b")
        self.assertEqual(missing.exception.code, "NOT_FOUND")

    def test_a_kind_without_handler_fails_with_category_unknown_kind(self):
        lane = "kinds"
        worker = self.start_worker(lane)

        @worker.task("known")
        def known(task):
            return "ok"

        worker.start(wait_welcome_s=30)
        a = self.client.create_execution(lane, "known")
        b = self.client.create_execution(lane, "unknown")
        final = self.wait_terminal([a.execution_id, b.execution_id], 30)
        self.assertEqual(final[a.execution_id].state, "completed")
        self.assertEqual((final[b.execution_id].state, final[b.execution_id].failure_category), ("failed", "unknown_kind"))

    def test_a_result_that_cannot_be_stored_fails_the_task(self):
        """Too large for the gateway (PAYLOAD_TOO_LARGE), or not encodable as JSON: the task fails
        with the reason instead of hanging on to its lease."""
        lane = "refused"

        def handler(task):
            return b"x" * (5 * 1024 * 1024) if task.execution_kind == "big" else object()

        self.start_worker(lane, handler)
        big = self.client.create_execution(lane, "big")
        odd = self.client.create_execution(lane, "odd")
        final = self.wait_terminal([big.execution_id, odd.execution_id], 60)
        self.assertEqual(final[big.execution_id].state, "failed")
        self.assertIn("complete.result", final[big.execution_id].failure_reason)
        self.assertEqual(final[odd.execution_id].state, "failed")
        self.assertIn("not JSON serializable", final[odd.execution_id].failure_reason)

    def test_batching_opt_in_runs_executions(self):
        lane = "batched"
        events = Events()
        self.start_worker(lane, lambda task: task.input, max_concurrent_tasks=50, batching=True, on_event=events)
        created = self.client.create_executions([ff.ExecutionSpec(lane, "b", f"x{i}") for i in range(200)])
        final = self.wait_terminal([c.execution_id for c in created])
        self.assertEqual({d.state for d in final.values()}, {"completed"})
        self.assertEqual(self.client.get_result(created[7].execution_id).result, b"x7")

    def test_asyncio_worker(self):
        """AsyncWorker on grpc.aio: async handlers complete, fail and retry, append frames, see a cancel."""
        lane = "aio"
        noticed = {}

        async def main():
            worker = AsyncWorker(self.gateway.grpc_address, lanes=[lane], max_concurrent_tasks=50, handle_signals=False)

            @worker.task("work")
            async def work(task: ff.AsyncClaimedTask):
                n = task.input_json()["n"]
                await task.append_frame("log", f"n={n}")
                await task.update_progress(50)
                if n % 10 == 3 and task.attempt_index == 0:
                    raise ff.TaskFailure("transient", "transient")
                await asyncio.sleep(0.001)
                return {"n": n, "attempt": task.attempt_index}

            @worker.task("wait")
            async def wait(task: ff.AsyncClaimedTask):
                noticed["reason"] = await task.wait_cancelled()

            await worker.start(wait_welcome_s=30)
            try:
                policy = ff.RetryPolicy(max_retries=1, backoff="fixed", initial_delay_ms=20)
                created = await asyncio.to_thread(self.client.create_executions, [
                    ff.ExecutionSpec(lane, "work", {"n": n}, retry_policy=policy) for n in range(100)])
                waiter = await asyncio.to_thread(self.client.create_execution, lane, "wait")
                await asyncio.to_thread(wait_until, lambda: self.client.describe_execution(
                    waiter.execution_id).state == "active", "the waiter to run")
                await asyncio.to_thread(self.client.cancel_execution, waiter.execution_id, "aio cancel")
                final = await asyncio.to_thread(self.wait_terminal, [c.execution_id for c in created])
                await asyncio.to_thread(wait_until, lambda: "reason" in noticed, "the async handler to see the cancel")
                return created, final
            finally:
                await worker.stop(5)

        created, final = asyncio.run(main())
        for n, c in enumerate(created):
            d = final[c.execution_id]
            self.assertEqual(d.state, "completed", n)
            retried = n % 10 == 3
            self.assertEqual(d.attempt_count, 2 if retried else 1)
            self.assertEqual(self.client.get_result(c.execution_id).json(), {"n": n, "attempt": 1 if retried else 0})
        frames = self.client.read_stream(created[5].execution_id, 0).frames
        self.assertEqual([f.text() for f in frames], ["n=5"])
        self.assertEqual(noticed["reason"], ff.AbortReason("cancelled", "aio cancel"))


if __name__ == "__main__":
    unittest.main()
