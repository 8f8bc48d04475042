"""Bearer tokens (docs/security.md) through the SDK's ``auth_token``: a producer token and a worker
token of one namespace run an execution; a worker without a token is refused at once (the SDK
stops instead of retrying forever); another namespace is refused to the producer."""

from __future__ import annotations

import secrets
import unittest

from harness import Gateway

import flowfabric as ff


class AuthTest(unittest.TestCase):
    def test_tokens_open_one_namespace_and_nothing_else(self):
        producer, worker_token = secrets.token_hex(16), secrets.token_hex(16)
        g = Gateway(env={"FLOWFABRIC_AUTH_TOKENS":
                         f"api:{producer}:producer,operator:billing; workers:{worker_token}:worker:billing"}).start()
        self.addCleanup(g.cleanup)
        client = ff.Client(g.grpc_address, auth_token=producer, namespace="billing")
        self.addCleanup(client.close)
        worker = ff.Worker(g.grpc_address, lanes=["invoices"], namespace="billing", auth_token=worker_token,
                           handle_signals=False)
        worker.start(lambda task: {"ns": task.namespace}, wait_welcome_s=30)
        self.addCleanup(worker.stop, 5)
        created = client.create_execution("invoices", "bill")
        self.assertEqual(client.wait_result(created.execution_id, 30).json(), {"ns": "billing"})

        anonymous = ff.Worker(g.grpc_address, lanes=["invoices"], namespace="billing", handle_signals=False)
        with self.assertRaises(ff.FlowFabricError) as refused:
            anonymous.start(lambda task: None, wait_welcome_s=30)
        self.assertEqual(refused.exception.code, "UNAUTHENTICATED")
        self.assertIn("bearer token", str(refused.exception))

        with self.assertRaises(ff.FlowFabricError) as other:
            client.create_execution("invoices", "bill", namespace="payroll")
        self.assertEqual(other.exception.code, "PERMISSION_DENIED")


if __name__ == "__main__":
    unittest.main()
