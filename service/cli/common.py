"""What every command shares: the owner's engine, and errors as one line on stderr."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.database import create_engine, database_url
from tenancy.naming import InvalidSlug
from tenancy.provisioning import TenantExists, UnknownKey, UnknownTenant
from tenancy.settings import get_settings

T = TypeVar("T")
EXPECTED_ERRORS = (InvalidSlug, TenantExists, UnknownTenant, UnknownKey, LookupError, OSError)


def fail(message: str) -> None:
    """One line on stderr, exit status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; expected errors become one line on stderr and exit 1."""
    try:
        return asyncio.run(main())
    except EXPECTED_ERRORS as exc:
        fail(first_line(exc))
        raise  # unreachable: fail() exits


@asynccontextmanager
async def owner_engine() -> AsyncIterator[AsyncEngine]:
    settings = get_settings()
    engine = create_engine(await database_url(settings), settings)
    try:
        yield engine
    finally:
        await engine.dispose()
