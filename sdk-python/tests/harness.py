"""A real gateway for the SDK's tests: ``node --import tsx gateway/src/main.ts`` (npm start's entry)
in a child process, with an embedded redis-server/valkey-server in a temporary data folder (VALKEY_URL
unset), or attached to another gateway's server. Ports are free loopback ports; the addresses are
read from what main.ts prints. Nothing is mocked.

Environment: FLOWFABRIC_NODE (default ``node``) runs the gateway; FLOWFABRIC_GATEWAY_ROOT names the
checkout whose gateway runs (default: this repository, found from this file).
"""

from __future__ import annotations

import faulthandler
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
#: The checkout whose gateway the tests run (default: this one).
GATEWAY_ROOT = os.environ.get("FLOWFABRIC_GATEWAY_ROOT", ROOT)
MAIN = os.path.join(GATEWAY_ROOT, "gateway", "src", "main.ts")
NODE = os.environ.get("FLOWFABRIC_NODE", "node")
SRC = os.path.join(ROOT, "sdk-python", "src")

# `kill -USR1 <pid>` prints every thread's stack (a hung test run says where it hangs).
faulthandler.register(signal.SIGUSR1, all_threads=True)

#: Test timings: leases long enough that a loaded 2-core machine never lets a healthy one lapse
#: (tests that need expiry set their own), quick drains.
FAST = {
    "FLOWFABRIC_PARTITIONS": "4",
    "FLOWFABRIC_LEASE_TTL_MS": "10000",
    "FLOWFABRIC_HEARTBEAT_INTERVAL_MS": "1000",
    "FLOWFABRIC_DRAIN_GRACE_MS": "1000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """One gateway process. ``grpc_address``/``http_address``/``store_url`` come from its banner."""

    def __init__(self, env: Optional[Dict[str, str]] = None, data_dir: Optional[str] = None,
                 valkey_url: str = "", grpc_port: int = 0):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="ff-pytest-")
        self.env = {**os.environ, **FAST, **(env or {}), "VALKEY_URL": valkey_url,
                    "FLOWFABRIC_DATA_DIR": self.data_dir, "FLOWFABRIC_GRPC_PORT": str(grpc_port),
                    "FLOWFABRIC_HTTP_PORT": "0"}
        self.proc: Optional[subprocess.Popen] = None
        self._pump: Optional[threading.Thread] = None
        self.output: List[str] = []
        self.grpc_address = ""
        self.store_url = ""

    def start(self, timeout_s: float = 90.0) -> "Gateway":
        self.proc = subprocess.Popen([NODE, "--import", "tsx", MAIN], cwd=GATEWAY_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump():
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.output.append(line.rstrip("\n"))
                m = re.search(r"gRPC \(workers, gRPC clients\):\s+(\S+)", line)
                if m:
                    self.grpc_address = m.group(1)
                m = re.search(r"store:\s+(?:embedded \S+ at )?(redis\S*)", line)
                if m:
                    self.store_url = self._with_password(m.group(1))
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(timeout_s) or not self.grpc_address:
            self.kill()
            raise RuntimeError("gateway did not start:\n" + "\n".join(self.output[-40:]))
        return self

    def _with_password(self, url: str) -> str:
        """The banner hides the embedded server's password; it is kept in the data folder (0600)."""
        secret = os.path.join(self.data_dir, "embedded-password")
        if "[REDACTED]" in url and os.path.exists(secret):
            with open(secret, encoding="utf-8") as f:
                return url.replace("[REDACTED]", f.read().strip())
        return url

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (drain, then exit), SIGKILL after ``timeout_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._close_pipe()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self._pump is not None:
            self._pump.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def cleanup(self) -> None:
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class Events:
    """Collects a worker's ``on_event`` calls; ``wait_for`` blocks on a condition, never sleeps."""

    def __init__(self) -> None:
        self.items: List[tuple] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, fields: dict) -> None:
        with self._cond:
            self.items.append((name, fields))
            self._cond.notify_all()

    def wait_for(self, pred, what: str, timeout_s: float = 30.0):
        end = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for item in self.items:
                    if pred(*item):
                        return item
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; events: {self.items[-20:]}")
                self._cond.wait(left)

    def named(self, name: str) -> List[dict]:
        with self._cond:
            return [f for n, f in self.items if n == name]


def wait_until(fn, what: str, timeout_s: float = 30.0, interval_s: float = 0.02):
    """Polls a gateway read (there is no watch call yet) until ``fn()`` is truthy."""
    end = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)


def read_line(proc: subprocess.Popen, timeout_s: float = 60.0) -> str:
    """The child's next stdout line, or AssertionError after ``timeout_s`` (never blocks forever)."""
    box: List[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not box:
        raise AssertionError(f"no line from the child process within {timeout_s}s")
    return box[0]


def python_child(code: str, *args: str) -> subprocess.Popen:
    """A Python child process running ``code`` with the SDK importable (stdout piped; stderr passes through)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-u", "-c", code, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
