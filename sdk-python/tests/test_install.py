"""`pip install ./sdk-python` into a fresh virtualenv (offline: no build isolation, no index, Debian's
grpcio/protobuf/setuptools through --system-site-packages), then examples/python-worker/worker.py
from that install serves a real gateway and drains on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from harness import ROOT, Gateway

import flowfabric as ff

EXAMPLE = os.path.join(ROOT, "examples", "python-worker", "worker.py")


class InstallTest(unittest.TestCase):
    def test_pip_install_then_the_example_worker_serves_and_drains(self):
        tmp = tempfile.mkdtemp(prefix="ff-venv-")
        self.addCleanup(shutil.rmtree, tmp, True)
        venv = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        # Build from a copy: a build writes build/ and *.egg-info next to the sources.
        source = shutil.copytree(os.path.join(ROOT, "sdk-python"), os.path.join(tmp, "sdk-python"),
                                 ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
        pip = subprocess.run([python, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index", source],
                             capture_output=True, text=True)
        self.assertEqual(pip.returncode, 0, pip.stderr)
        where = subprocess.run([python, "-c", "import flowfabric; print(flowfabric.__file__)"], cwd=tmp,
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
        self.assertTrue(where.stdout.startswith(venv), where.stdout + where.stderr)

        gateway = Gateway().start()
        self.addCleanup(gateway.cleanup)
        worker = subprocess.Popen([python, EXAMPLE, gateway.grpc_address], cwd=tmp, stdin=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""})
        try:
            with ff.Client(gateway.grpc_address) as client:
                greet = client.create_execution("default", "greet", {"name": "Ada"})
                echo = client.create_execution("default", "anything", b"\x00\xffbytes")
                self.assertEqual(client.wait_result(greet.execution_id, 60).json(),
                                 {"greeting": "hello, Ada", "attempt": 0})
                self.assertEqual(client.wait_result(echo.execution_id, 60).result, b"\x00\xffbytes")
                self.assertEqual(client.describe_execution(greet.execution_id).progress_message, "greeting Ada")
            worker.send_signal(signal.SIGTERM)
            self.assertEqual(worker.wait(30), 0, worker.stderr.read())
        finally:
            worker.kill()
            worker.wait()
            worker.stderr.close()


if __name__ == "__main__":
    unittest.main()
