"""Ctrl-C (SIGINT) and SIGTERM on the command line: before a commit they leave nothing and say so
in one line; once it committed, the command still prints what it made (the key above all).

Every run is a real `tenantry` process. The moment just after the commit is reached without any
hook in the product: the test waits, from its own connection, for the committed row, while the
process cannot finish because its stdout is a pipe the test has filled, so the signal provably
arrives after the commit and before the result is out. The moment just before a commit is a
lock the test holds on the table of the last insert.
"""

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.keys import key_matches
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.registry import api_keys, resolve_tenant, tenants
from tests.cli.test_cli import TENANTRY, tenantry
from tests.support.lifecycle import eventually as until
from tests.support.lifecycle import footprint, wait_for_blocked

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
MESSAGE = {signal.SIGINT: "error: interrupted", signal.SIGTERM: "error: terminated (SIGTERM)"}


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class StalledOutput:
    """A `tenantry` process whose stdout is a full pipe: it runs until its first write, then
    waits there until the test reads (finish())."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self._read, write = os.pipe()
        self._filler = _fill(write)
        self.process = subprocess.Popen(
            [TENANTRY, *args],
            cwd=PROJECT_ROOT,
            env=env or os.environ.copy(),
            stdout=write,
            stderr=subprocess.PIPE,
        )
        os.close(write)

    async def finish(self) -> Finished:
        def drain() -> bytes:
            with os.fdopen(self._read, "rb") as pipe:
                return pipe.read()

        output = await asyncio.to_thread(drain)
        stderr = await asyncio.to_thread(self.process.stderr.read)  # type: ignore[union-attr]
        returncode = await asyncio.to_thread(self.process.wait)
        return Finished(returncode, output[self._filler :].decode(), stderr.decode())


def _fill(write: int) -> int:
    """Fill the pipe to its last byte; how many bytes that took."""
    os.set_blocking(write, False)
    filled = 0
    for size in (65536, 4096, 1):
        try:
            while True:
                filled += os.write(write, b"\0" * size)
        except BlockingIOError:
            pass
    os.set_blocking(write, True)
    return filled


async def eventually(found: Callable[[AsyncConnection], Awaitable[bool]], engine: AsyncEngine):
    for _ in range(6000):
        async with engine.connect() as conn:
            if await found(conn):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the command never committed")


def registered(slug: str) -> Callable[[AsyncConnection], Awaitable[bool]]:
    async def found(conn: AsyncConnection) -> bool:
        return bool(await conn.scalar(select(tenants.c.id).where(tenants.c.slug == slug)))

    return found


async def signalled_after_commit(
    engine: AsyncEngine, sig: signal.Signals, committed, *args: str
) -> Finished:
    run = StalledOutput(*args)
    await eventually(committed, engine)
    assert run.process.poll() is None, "the process must still be running when signalled"
    run.process.send_signal(sig)
    await delivered(run.process.pid, sig)  # handled (held) while the process is stalled
    return await run.finish()


def pending(pid: int, sig: signal.Signals) -> bool:
    """Whether `sig` waits, sent but not yet handed to the process (/proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    masks = [int(line.split()[1], 16) for line in status if line[:7] in ("SigPnd:", "ShdPnd:")]
    return any(mask & 1 << (sig - 1) for mask in masks)


async def delivered(pid: int, sig: signal.Signals) -> None:
    """Until the kernel has handed `sig` to the process: its handler has then run, the write it
    was blocked in being retried after it (PEP 475)."""

    async def handed_over() -> bool:
        return not await asyncio.to_thread(pending, pid, sig)

    await until(handed_over, within=60)  # the shared hang guard


async def assert_key_of(engine: AsyncEngine, slug: str, output: str) -> None:
    lines = output.splitlines()
    assert lines[0].startswith(f"created tenant {slug} ") or lines[0].startswith("new key ")
    key = lines[1].removeprefix("API key (shown once): ")
    async with engine.connect() as conn:
        resolved = await resolve_tenant(conn, slug)
    assert resolved is not None and key_matches(key, resolved.key_hashes)


async def test_a_signal_just_after_create_commits_still_prints_the_key(
    engine: AsyncEngine, new_slug: str
) -> None:
    for number, sig in enumerate((signal.SIGINT, signal.SIGTERM)):
        slug = f"{new_slug}-{number}"
        run = await signalled_after_commit(engine, sig, registered(slug), "tenants", "create", slug)
        assert (run.returncode, run.stderr) == (0, ""), run
        await assert_key_of(engine, slug, run.stdout)


async def test_ctrl_c_just_after_an_import_commits_still_prints_the_key(
    engine: AsyncEngine, tenant: CreatedTenant, new_slug: str, tmp_path: Path
) -> None:
    archive, copy = tmp_path / "tenant.dump", f"{new_slug}-copy"
    assert tenantry("tenants", "export", tenant.slug, str(archive)).returncode == 0
    run = await signalled_after_commit(
        engine, signal.SIGINT, registered(copy), "tenants", "import", str(archive), "--as", copy
    )
    assert (run.returncode, run.stderr) == (0, ""), run
    await assert_key_of(engine, copy, run.stdout)


async def test_ctrl_c_just_after_keys_create_commits_still_prints_the_key(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    async def second_key(conn: AsyncConnection) -> bool:
        count = select(func.count()).select_from(api_keys).join(tenants)
        return await conn.scalar(count.where(tenants.c.slug == tenant.slug)) == 2

    run = await signalled_after_commit(
        engine, signal.SIGINT, second_key, "keys", "create", tenant.slug
    )
    assert (run.returncode, run.stderr) == (0, ""), run
    await assert_key_of(engine, tenant.slug, run.stdout)


async def test_a_signal_before_the_commit_leaves_nothing_in_one_line(
    engine: AsyncEngine, new_slug: str
) -> None:
    """The control: the same signal a moment earlier (the create waits on its last insert)."""
    for number, sig in enumerate((signal.SIGINT, signal.SIGTERM)):
        before = await footprint(engine)
        async with engine.connect() as lock:
            await lock.execute(text("LOCK TABLE tenantry.api_keys IN EXCLUSIVE MODE"))
            run = StalledOutput("tenants", "create", f"{new_slug}-{number}")
            await wait_for_blocked(engine, 1)
            run.process.send_signal(sig)
            finished = await run.finish()
            await lock.rollback()
        assert finished.returncode == EXIT_STATUS[sig], finished
        assert (finished.stdout, finished.stderr) == ("", MESSAGE[sig] + "\n")
        assert await footprint(engine) == before


def test_a_signal_acted_on_before_the_commit_stops_it_there() -> None:
    """Review finding: a signal acted on after the last statement but before the task resumed
    (its cancellation lands at the next await, which may be the COMMIT itself). hold() runs just
    before COMMIT is sent and raises, so the transaction rolls back. Control: without a signal,
    hold() holds."""
    from service.cli.interrupts import Interrupted, Interrupts

    quiet = Interrupts()
    quiet.hold()
    assert quiet.holding
    stopped = Interrupts()
    stopped.received = signal.SIGINT
    try:
        stopped.hold()
    except Interrupted as exc:
        assert exc.exit_status == 130
    else:
        raise AssertionError("hold() let the commit go on after an interruption")
    assert not stopped.holding
