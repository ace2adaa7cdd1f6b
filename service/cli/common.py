"""What every command shares: the owner's engine (or one plain asyncpg connection as the owner),
and errors as one line on stderr.

Light to import: SQLAlchemy, asyncpg and the settings are imported when a command first needs
the database, so `tenantry --help` and usage errors never load them (tests/cli/test_cli_imports.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from service.cli.interrupts import INTERRUPTS, Interrupted
from tenancy.lifecycle.errors import LifecycleError
from tenancy.naming import InvalidSlug
from tenancy.one_line import first_line

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
EXPECTED_ERRORS = (InvalidSlug, LifecycleError, LookupError, OSError)


def fail(message: str) -> None:
    """One line on stderr, exit status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell, a header row first (the last column is not padded,
    so a free-text one such as a display name goes last)."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


def output_closed() -> None:
    """stdout's reader went away (`tenantry migrate --sql | head`): say so in one line, exit 1.

    stdout now points at /dev/null, so the flush at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    fail("output closed early (broken pipe)")


def begin_work() -> None:
    """The imports are done: the collector back on (see service.cli.entry), start-up's objects
    frozen so that no collection walks them again."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; expected errors become one line on stderr and exit 1; SIGINT and SIGTERM
    cancel it until a commit, and are held from then on (service.cli.interrupts)."""
    begin_work()
    INTERRUPTS.install()
    try:
        return _run_interruptible(main)
    except BrokenPipeError:
        output_closed()
        raise  # unreachable: output_closed() exits
    except EXPECTED_ERRORS as exc:
        fail(first_line(exc))
        raise  # unreachable: fail() exits


def _run_interruptible(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Whatever the work raised once a signal cut it short is reported as the interruption."""
    try:
        return asyncio.run(INTERRUPTS.guard(main()))
    except BaseException:
        if INTERRUPTS.received is None:
            raise
        raise Interrupted(INTERRUPTS.received) from None


def run_with_engine(operation: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """run() one operation on the owner's engine, disposed of afterwards."""

    async def main() -> T:
        async with owner_engine() as engine:
            return await operation(engine)

    return run(main)


def run_with_connection(operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """run() one operation on one plain asyncpg connection as the owner (the login and
    application_name of the owner's engine), closed afterwards: no SQLAlchemy when the database
    URL is configured."""

    async def main() -> T:
        from tenancy.dsn import owner_connection
        from tenancy.settings import get_settings

        conn = await owner_connection(get_settings())
        try:
            return await operation(conn)
        finally:
            await conn.close()

    return run(main)


@asynccontextmanager
async def owner_engine() -> AsyncIterator[AsyncEngine]:
    """The owner's engine; from just before each of its commits until the next transaction
    begins (or the command ends), SIGINT and SIGTERM are held (service.cli.interrupts)."""
    from sqlalchemy import event

    from tenancy.database import create_engine, database_url
    from tenancy.settings import get_settings

    settings = get_settings()
    engine = create_engine(await database_url(settings), settings)
    event.listen(engine.sync_engine, "commit", lambda _conn: INTERRUPTS.hold())
    event.listen(engine.sync_engine, "begin", lambda _conn: INTERRUPTS.release())
    try:
        yield engine
    finally:
        await engine.dispose()
