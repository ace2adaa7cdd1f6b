"""`tenantry migrate`: the shared schema, then every tenant schema."""

import asyncio
import contextlib
import time

import typer
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError

from service.cli.common import EXPECTED_ERRORS, fail, first_line, owner_engine
from service.paths import ALEMBIC_INI
from tenancy.database import database_url
from tenancy.observability.migrate_runs import record_migrate_run
from tenancy.settings import get_settings

app = typer.Typer(help="Migrate the shared schema and every tenant schema.")


def migrate_all() -> None:
    """Shared schema first, then every tenant, each in its own transaction (plain Alembic)."""
    asyncio.run(database_url(get_settings()))  # starts the embedded server if that is the default
    command.upgrade(Config(ALEMBIC_INI), "head")


def record_run(started: float, failed: bool) -> None:
    """Best effort, for /metrics: a registry that is unreachable or predates the migrate_runs
    table records nothing, and the run's own outcome stands."""

    async def main() -> None:
        async with owner_engine() as engine, engine.begin() as conn:
            await record_migrate_run(conn, time.monotonic() - started, failed)

    with contextlib.suppress(OSError, SQLAlchemyError):
        asyncio.run(main())


@app.callback(invoke_without_command=True)
def migrate() -> None:
    """Bring the shared schema and every tenant schema to head."""
    started, failed = time.monotonic(), True
    try:
        migrate_all()
        failed = False
    except EXPECTED_ERRORS as exc:
        fail(first_line(exc))
    finally:
        record_run(started, failed)
