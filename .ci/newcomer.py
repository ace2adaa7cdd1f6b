#!/usr/bin/env python3
"""A newcomer's first minutes, scripted (.ci/run runs it; ~1-2 minutes, so not part of pytest).

Fresh `git clone` of this repository into a temporary folder, no TENANTRY_* variable set, README
only: `make run` in the background, paste the `curl` it prints, run the CLI from another
directory (it must find the clone's embedded database and create nothing there), and open /docs
in headless Chromium with the network blocked: the operations must render. Only the standard
library, so it runs before any venv exists. Prints the time to the first 200 (for the record,
never checked against a number).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 900  # seconds for `make run` to print its curl: a cold package cache included
OFFLINE_FLAGS = (
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)


def fail(message: str) -> None:
    print(f"newcomer walkthrough FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    fail("no chromium: `apt-get install chromium` (.ci/run does)")
    raise AssertionError


def rendered_docs(port: int, profile: Path) -> str:
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *OFFLINE_FLAGS,
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"http://localhost:{port}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        fail(f"chromium exited {result.returncode}: {result.stderr[-500:]}")
    return result.stdout


def walk(root: Path) -> None:
    clone, elsewhere = root / "tenantry", root / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.pop("VIRTUAL_ENV", None)
    port = free_port()
    log = root / "make-run.log"
    started = time.monotonic()
    with log.open("w") as out:
        server = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, tenantry, PostgreSQL
        )
    try:
        first_200 = None
        while time.monotonic() - started < RUN_TIMEOUT:
            if server.poll() is not None:
                fail(f"make run exited {server.returncode}:\n{log.read_text()[-3000:]}")
            if healthz(port):
                first_200 = time.monotonic() - started
                break
            time.sleep(0.5)
        if first_200 is None:
            fail(f"no 200 from /healthz in {RUN_TIMEOUT} s:\n{log.read_text()[-3000:]}")
        printed = log.read_text()
        curl = re.search(r"^\s*(curl .*)$", printed, flags=re.MULTILINE)
        if curl is None:
            fail(f"make run printed no curl:\n{printed}")
        pasted = subprocess.run(
            ["bash", "-c", curl.group(1)], capture_output=True, text=True, timeout=60
        )
        if pasted.returncode != 0 or '"content":"hello"' not in pasted.stdout.replace(" ", ""):
            fail(f"the printed curl did not create a todo: {pasted.stdout} {pasted.stderr}")

        tenantry = str(clone / ".venv" / "bin" / "tenantry")
        listed = run([tenantry, "tenants", "list"], elsewhere, env)
        if listed.returncode != 0 or not re.search(r"^demo\s", listed.stdout, re.MULTILINE):
            fail(f"`tenantry tenants list` from another directory: {listed.stdout}{listed.stderr}")
        keys = run([tenantry, "keys", "list", "demo"], elsewhere, env)
        if keys.returncode != 0 or keys.stdout.count(" active") != 1:
            fail(f"the demo tenant should have one live key: {keys.stdout}{keys.stderr}")
        if any(elsewhere.iterdir()):
            fail(f"the CLI created files where it was run: {list(elsewhere.iterdir())}")

        dom = rendered_docs(port, root / "chromium-profile")
        if 'data-path="/todos"' not in dom:
            fail(f"/docs rendered no operations offline:\n{dom[-2000:]}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    venv_mb = sum(f.stat().st_size for f in (clone / ".venv").rglob("*") if f.is_file()) >> 20
    print(
        f"newcomer walkthrough passed: make run to the first 200 in {first_200:.0f} s "
        f"(fresh venv included), venv {venv_mb} MB"
    )


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="tenantry-newcomer-"))
    try:
        walk(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
