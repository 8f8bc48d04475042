"""Suspend, waitpoints and signals through the SDK against a real gateway: a handler suspends, a
producer delivers a signal with the waitpoint's token, the same attempt resumes and reads the
signal; a pending waitpoint's buffered signal satisfies a suspend at once; a bad token is refused."""

from __future__ import annotations

import threading
import unittest

from harness import Gateway, wait_until

import flowfabric as ff


class SignalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.gateway = Gateway().start()
        cls.client = ff.Client(cls.gateway.grpc_address)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.gateway.cleanup()

    def start_worker(self, lane: str, handler) -> ff.Worker:
        worker = ff.Worker(self.gateway.grpc_address, lanes=[lane], handle_signals=False)
        worker.start(handler, wait_welcome_s=30)
        self.addCleanup(worker.stop, 5)
        return worker

    def test_suspend_then_a_signal_resumes_the_same_attempt(self):
        lane = "approvals"
        waitpoints = {}
        seen = []

        def handler(task: ff.ClaimedTask):
            if not task.resumed:
                result = task.suspend("approved", timeout_s=60, reason_code="approval")
                self.assertEqual(result.outcome, "suspended")
                waitpoints[task.execution_id] = result.waitpoint
                return None  # the lease is released; nothing more is sent
            signals = task.resume_signals()
            seen.append((task.attempt_index, task.resume_reason, [(s.name, s.json()) for s in signals]))
            return {"approved_by": signals[0].json()["by"]}

        self.start_worker(lane, handler)
        created = self.client.create_execution(lane, "approve")
        wait_until(lambda: created.execution_id in waitpoints, "the suspension")
        wait_until(lambda: self.client.describe_execution(created.execution_id).state == "suspended", "state suspended")
        delivered = self.client.deliver_signal(created.execution_id, waitpoints[created.execution_id], "approved",
                                               {"by": "ada"}, source="test", idempotency_key="approve-1")
        self.assertEqual(delivered.effect, "triggered_resume")
        self.assertEqual(self.client.wait_result(created.execution_id, 30).json(), {"approved_by": "ada"})
        self.assertEqual(seen, [(0, "signal", [("approved", {"by": "ada"})])])
        d = self.client.describe_execution(created.execution_id)
        self.assertEqual((d.attempt_count, d.retry_count), (1, 0))

    def test_a_buffered_signal_satisfies_the_suspend_at_once(self):
        lane = "buffered"
        ready = threading.Event()
        signalled = threading.Event()
        box = {}

        def handler(task: ff.ClaimedTask):
            box["waitpoint"] = task.create_waitpoint("early")
            ready.set()
            signalled.wait(30)
            result = task.suspend("go")
            return {"outcome": result.outcome, "state": task.state}

        self.start_worker(lane, handler)
        created = self.client.create_execution(lane, "early")
        self.assertTrue(ready.wait(30))
        effect = self.client.deliver_signal(created.execution_id, box["waitpoint"], "go").effect
        signalled.set()
        self.assertEqual(effect, "accepted")
        self.assertEqual(self.client.wait_result(created.execution_id, 30).json(),
                         {"outcome": "already_satisfied", "state": "running"})

    def test_a_bad_token_is_refused(self):
        lane = "tokens"
        box = {}
        release = threading.Event()

        def handler(task: ff.ClaimedTask):
            box["waitpoint"] = task.create_waitpoint()
            release.wait(30)
            return "done"

        self.start_worker(lane, handler)
        created = self.client.create_execution(lane, "t")
        wait_until(lambda: "waitpoint" in box, "the waitpoint")
        forged = ff.WaitpointToken(box["waitpoint"].waitpoint_id, "", box["waitpoint"].token[:-2] + "xx", 0)
        with self.assertRaises(ff.FlowFabricError) as refused:
            self.client.deliver_signal(created.execution_id, forged, "x")
        release.set()
        self.assertEqual(refused.exception.code, "PERMISSION_DENIED")


if __name__ == "__main__":
    unittest.main()
