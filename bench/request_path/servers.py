"""Real uvicorn in processes of their own, one worker each, on loopback ports.

One worker on purpose: on this 2-core machine the load generator and PostgreSQL need the other
core; more workers would only measure who wins the CPU. Servers that are not under load sit
idle, so several variants can run side by side and be measured in turn.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import psutil

from service.paths import PROJECT_ROOT


@dataclass(frozen=True)
class ServerSpec:
    factory: str
    """An app factory for `uvicorn --factory`, e.g. "bench.request_path.apps:tenantry"."""
    env: dict[str, str]
    """Its TENANTRY_* settings."""
    command: tuple[str, ...] = ()
    """A whole command line instead of the factory under uvicorn; "{port}" is replaced by the
    port (e.g. `tenantry serve --port {port}`, the server as shipped)."""
    cwd: str | None = None
    """Where the command runs (the project root unless set)."""


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: str

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as reply:
            return json.load(reply)

    def wait_until_up(self, timeout: float = 180) -> None:  # a hang guard: a busy machine is slow
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                with open(self.log_path) as log:
                    raise RuntimeError(f"{self.name} exited at start-up:\n{log.read()[-2000:]}")
            try:
                self.get_json("/healthz")
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer /healthz within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(name: str, spec: ServerSpec, log_path: str) -> Server:
    port = _free_port()
    command = [part.replace("{port}", str(port)) for part in spec.command] or [
        sys.executable, "-m", "uvicorn", "--factory", spec.factory,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=spec.cwd or PROJECT_ROOT,
            env={**os.environ, **spec.env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return Server(name, port, process, log_path)


@contextmanager
def running_servers(specs: dict[str, ServerSpec]) -> Iterator[dict[str, Server]]:
    """Start every server at once, wait until all answer, stop them all on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as logs, ExitStack() as stack:
        servers: dict[str, Server] = {}
        for name, spec in specs.items():
            servers[name] = _start(name, spec, os.path.join(logs, f"{name}.log"))
            stack.callback(servers[name].stop)
        for server in servers.values():
            server.wait_until_up()
        yield servers
