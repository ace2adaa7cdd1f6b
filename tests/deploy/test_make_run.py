"""What `make run` runs, `tenantry serve --demo`, as a real process: a taken port is one line
before any key is printed; the demo tenant keeps exactly one live key, the one just printed, and
the printed curl works as pasted."""

import asyncio
import os
import re
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.lifecycle.api_keys import list_keys
from tenancy.lifecycle.status import suspend_tenant
from tests.support.common import TENANTRY

READY_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_taken_port_is_one_line_and_prints_no_key() -> None:
    """The port suggested instead is free: the next one is held too, so it is not simply +1."""
    with socket.socket() as holder, socket.socket() as neighbour:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        held = {port}
        with suppress(OSError):  # the next port may be someone else's already
            neighbour.bind(("127.0.0.1", port + 1))
            neighbour.listen()
            held.add(port + 1)
        result = subprocess.run(
            [TENANTRY, "serve", "--demo", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        prefix = (
            f"error: port {port} on 127.0.0.1 is already in use (another `make run` or server?): "
            "stop it, or pick another port: make run PORT="
        )
        assert line.startswith(prefix), line
        suggested = int(line.removeprefix(prefix))
        assert suggested not in held and port < suggested <= port + 20
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", suggested))  # free indeed


@asynccontextmanager
async def serving_demo(env: dict[str, str], port: int) -> AsyncIterator[str]:
    """`tenantry serve --demo` until its curl is printed and the port answers; yields stdout."""
    proc = await asyncio.create_subprocess_exec(
        TENANTRY,
        "serve",
        "--demo",
        "--port",
        str(port),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    printed = ""
    try:
        async with asyncio.timeout(READY_SECONDS):
            while "curl" not in printed:
                line = (await proc.stdout.readline()).decode()
                assert line, f"exited early: {printed}"
                printed += line
            while True:  # the curl is printed before uvicorn listens
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                break
        yield printed
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


async def paste(curl: str) -> tuple[int, str]:
    """Runs the printed curl in a shell, as a user would paste it, with -w for the status."""
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        curl + " -o /dev/null -w '%{http_code}'",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await proc.communicate()
    return proc.returncode or 0, stdout.decode()


def printed_key_and_curl(stdout: str) -> tuple[str, str]:
    key = re.search(r"API key \(the only live one\): (\S+)", stdout)
    curl = re.search(r"^\s*(curl .*)$", stdout, flags=re.MULTILINE)
    assert key and curl, stdout
    return key.group(1), curl.group(1)


async def test_the_demo_tenant_has_one_live_key_and_the_curl_works(
    fresh: tuple[dict[str, str], AsyncEngine],
) -> None:
    env, engine = fresh
    port = free_port()
    async with serving_demo(env, port) as first:
        first_key, first_curl = printed_key_and_curl(first)
        assert await paste(first_curl) == (0, "201")
    async with serving_demo(env, port) as second:
        second_key, second_curl = printed_key_and_curl(second)
        assert second_key != first_key
        assert await paste(second_curl) == (0, "201")
        assert await paste(first_curl) == (0, "401")  # the earlier key was revoked
    async with engine.connect() as conn:
        keys = await list_keys(conn, "demo")
    assert [row.active for row in keys].count(True) == 1
    assert second_key.startswith(f"tnt_{next(row.key_id for row in keys if row.active)}_")


async def test_a_suspended_demo_tenant_is_resumed_and_says_so(
    fresh: tuple[dict[str, str], AsyncEngine],
) -> None:
    env, engine = fresh
    port = free_port()
    async with serving_demo(env, port) as first:
        assert "suspended" not in first
    await suspend_tenant(engine, "demo")
    async with serving_demo(env, port) as second:
        assert "Tenant 'demo' was suspended: resumed it" in second, second
        _, curl = printed_key_and_curl(second)
        assert await paste(curl) == (0, "201")
