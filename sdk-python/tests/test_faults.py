"""Faults against real gateways: a worker process SIGKILLed (its tasks are recovered by another
worker), a gateway restart (the worker re-adopts its leases and its queued completion goes out on
the new session), a gateway drain (the worker moves to another gateway with its leases)."""

from __future__ import annotations

import json
import os
import signal
import threading
import unittest

from harness import Events, Gateway, free_port, python_child, read_line, wait_until

import flowfabric as ff

#: A worker process whose handler holds every task until it is killed; prints one line per start.
HOLDING_WORKER = """
import json, sys, threading
import flowfabric as ff
w = ff.Worker(sys.argv[1], lanes=[sys.argv[2]], max_concurrent_tasks=3, worker_id="doomed", handle_signals=False)
def hold(task):
    print(json.dumps({"started": task.execution_id}), flush=True)
    task.cancelled.wait()
w.start(hold)
threading.Event().wait()
"""


#: A worker process under run() (SIGTERM/SIGINT handlers installed) whose handler holds its task
#: until told to stop; prints the abort kind it saw.
GRACEFUL_WORKER = """
import json, sys
import flowfabric as ff
w = ff.Worker(sys.argv[1], lanes=[sys.argv[2]], max_concurrent_tasks=2, worker_id="graceful", grace_s=0.5)
def hold(task):
    print(json.dumps({"started": task.execution_id}), flush=True)
    task.cancelled.wait()
    print(json.dumps({"aborted": task.abort_reason.kind}), flush=True)
w.run(hold)
print(json.dumps({"exited": True}), flush=True)
"""


class FaultTest(unittest.TestCase):
    def gateway(self, **kwargs) -> Gateway:
        g = Gateway(**kwargs).start()
        self.addCleanup(g.cleanup)
        return g

    def worker(self, address: str, lane: str, handler, **options) -> ff.Worker:
        w = ff.Worker(address, lanes=[lane], handle_signals=False, **options)
        w.start(handler, wait_welcome_s=60)
        self.addCleanup(w.stop, 5)
        return w

    def test_a_sigkilled_worker_process_loses_nothing(self):
        """Its 3 acked tasks come back when their leases expire, its unpushed work goes to the next worker."""
        g = self.gateway(env={"FLOWFABRIC_LEASE_TTL_MS": "3000", "FLOWFABRIC_HEARTBEAT_INTERVAL_MS": "300"})
        client = ff.Client(g.grpc_address)
        self.addCleanup(client.close)
        lane = "doomed"
        created = client.create_executions([ff.ExecutionSpec(lane, "job", {"n": n}) for n in range(6)])
        child = python_child(HOLDING_WORKER, g.grpc_address, lane)
        try:
            started = [json.loads(read_line(child))["started"] for _ in range(3)]
            self.assertEqual(len(set(started)), 3)
            os.kill(child.pid, signal.SIGKILL)
            self.assertEqual(child.wait(30), -signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()

        self.worker(g.grpc_address, lane, lambda task: {"n": task.input_json()["n"], "attempt": task.attempt_index})
        ids = [c.execution_id for c in created]
        results = {i: client.wait_result(i, 60) for i in ids}
        self.assertEqual({r.state for r in results.values()}, {"completed"})
        for i in ids:
            d = client.describe_execution(i)
            killed = i in started
            self.assertEqual((d.attempt_count, d.reclaim_count), (2, 1) if killed else (1, 0), i)
            self.assertEqual(results[i].json()["attempt"], 1 if killed else 0)

    def test_sigterm_hands_running_tasks_back_within_the_grace(self):
        """SIGTERM: no new work, the handler past the grace sees kind "shutdown", the task goes back
        with delay (same attempt, no retry consumed) and the process exits 0; the next worker resumes it."""
        g = self.gateway()
        client = ff.Client(g.grpc_address)
        self.addCleanup(client.close)
        lane = "graceful"
        child = python_child(GRACEFUL_WORKER, g.grpc_address, lane)
        try:
            held = client.create_execution(lane, "job")
            self.assertEqual(json.loads(read_line(child)), {"started": held.execution_id})
            child.send_signal(signal.SIGTERM)
            self.assertEqual(json.loads(read_line(child)), {"aborted": "shutdown"})
            self.assertEqual(json.loads(read_line(child)), {"exited": True})
            self.assertEqual(child.wait(30), 0)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        seen = {}

        def resume(task):
            seen.update(resumed=task.resumed, attempt=task.attempt_index)
            return "resumed"

        self.worker(g.grpc_address, lane, resume)
        self.assertEqual(client.wait_result(held.execution_id, 30).result, b"resumed")
        self.assertEqual(seen, {"resumed": True, "attempt": 0})
        d = client.describe_execution(held.execution_id)
        self.assertEqual((d.attempt_count, d.retry_count, d.reclaim_count), (1, 0, 0))

    def test_gateway_restart_keeps_leases_and_delivers_queued_completions(self):
        """The gateway (and its embedded server) stops while two tasks run; they finish while it is
        down; the restarted gateway re-adopts both leases and takes the queued completions."""
        port = free_port()
        env = {"FLOWFABRIC_LEASE_TTL_MS": "30000", "FLOWFABRIC_HEARTBEAT_INTERVAL_MS": "500"}
        first = Gateway(env=env, grpc_port=port).start()
        self.addCleanup(first.cleanup)
        address = first.grpc_address
        client = ff.Client(address)
        self.addCleanup(client.close)
        events = Events()
        release = threading.Event()
        running = []

        def handler(task: ff.ClaimedTask):
            running.append(task.execution_id)
            release.wait(120)
            return {"done": task.execution_id, "attempt": task.attempt_index}

        self.worker(address, "restart", handler, on_event=events)
        created = [client.create_execution("restart", "job", {"n": n}) for n in range(2)]
        wait_until(lambda: len(running) == 2, "both tasks to run")

        self.assertEqual(first.stop(), 0)  # drains, stops the embedded server (AOF)
        events.wait_for(lambda n, f: n == "reconnecting" and f.get("attempt", 0) > 0, "a failed reconnect")
        release.set()  # the handlers finish while no gateway runs: their completions wait
        second = Gateway(env=env, grpc_port=port, data_dir=first.data_dir).start()
        self.addCleanup(second.stop)
        _, welcome = events.wait_for(lambda n, f: n == "welcome" and f["held"] == 2, "a welcome re-adopting 2 leases", 90)
        self.assertEqual((welcome["adopted"], welcome["not_adopted"]), (2, 0))
        self.assertGreaterEqual(welcome["resent"], 1)
        for c in created:
            r = client.wait_result(c.execution_id, 60)
            self.assertEqual(r.json(), {"done": c.execution_id, "attempt": 0})
            d = client.describe_execution(c.execution_id)
            self.assertEqual((d.attempt_count, d.reclaim_count), (1, 0))

    def test_lease_health_follows_heartbeat_renewals(self):
        """A gateway that stops answering (SIGSTOP) turns is_lease_healthy() false after 3 heartbeat
        periods without a renewal; once it answers again (SIGCONT) the next renewal makes it true."""
        g = self.gateway(env={"FLOWFABRIC_LEASE_TTL_MS": "30000", "FLOWFABRIC_HEARTBEAT_INTERVAL_MS": "300"})
        client = ff.Client(g.grpc_address)
        self.addCleanup(client.close)
        box = {}
        release = threading.Event()

        def handler(task: ff.ClaimedTask):
            box["task"] = task
            release.wait(120)
            return "healthy again" if task.is_lease_healthy() else "unhealthy"

        self.worker(g.grpc_address, "health", handler)
        created = client.create_execution("health", "job")
        wait_until(lambda: "task" in box, "the task to run")
        task = box["task"]
        wait_until(task.is_lease_healthy, "a healthy lease")
        os.kill(g.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: not task.is_lease_healthy(), "3 heartbeat periods without a renewal", 30)
            self.assertGreaterEqual(task.consecutive_renewal_failures(), 3)
        finally:
            os.kill(g.proc.pid, signal.SIGCONT)
        wait_until(task.is_lease_healthy, "a renewal after the gateway resumed", 30)
        release.set()
        self.assertEqual(client.wait_result(created.execution_id, 30).result, b"healthy again")

    def test_drain_moves_the_worker_and_its_leases_to_another_gateway(self):
        """Gateway B drains (SIGTERM) while a task runs; the worker opens a session on gateway A
        (the other address of its target), re-adopts the lease and completes the task there."""
        env = {"FLOWFABRIC_LEASE_TTL_MS": "30000", "FLOWFABRIC_HEARTBEAT_INTERVAL_MS": "500",
               "FLOWFABRIC_DRAIN_GRACE_MS": "2000"}
        a = self.gateway(env=env)
        b = self.gateway(env=env, valkey_url=a.store_url)
        client = ff.Client(a.grpc_address)
        self.addCleanup(client.close)
        events = Events()
        release = threading.Event()
        running = threading.Event()

        def handler(task: ff.ClaimedTask):
            running.set()
            release.wait(120)
            return "moved"

        target = f"ipv4:{b.grpc_address},{a.grpc_address}"  # pick_first: B while it serves, then A
        self.worker(target, "drain", handler, on_event=events)
        first_welcome = events.named("welcome")[0]
        created = client.create_execution("drain", "job")
        self.assertTrue(running.wait(30))

        threading.Thread(target=b.stop, daemon=True).start()
        events.wait_for(lambda n, f: n == "drain", "the drain")
        _, moved = events.wait_for(lambda n, f: n == "welcome" and f["held"] == 1 and f["adopted"] == 1,
                                   "a welcome on the other gateway re-adopting the lease", 60)
        self.assertNotEqual(moved["gateway_id"], first_welcome["gateway_id"])
        release.set()
        self.assertEqual(client.wait_result(created.execution_id, 30).result, b"moved")
        d = client.describe_execution(created.execution_id)
        self.assertEqual((d.attempt_count, d.reclaim_count), (1, 0))


if __name__ == "__main__":
    unittest.main()
