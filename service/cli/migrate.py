"""`tenantry migrate`: the shared schema, then every tenant schema."""

import asyncio

import typer
from alembic import command
from alembic.config import Config

from service.cli.common import EXPECTED_ERRORS, fail, first_line
from service.paths import ALEMBIC_INI
from tenancy.database import database_url
from tenancy.settings import get_settings

app = typer.Typer(help="Migrate the shared schema and every tenant schema.")


def migrate_all() -> None:
    """Shared schema first, then every tenant, each in its own transaction (plain Alembic)."""
    asyncio.run(database_url(get_settings()))  # starts the embedded server if that is the default
    command.upgrade(Config(ALEMBIC_INI), "head")


@app.callback(invoke_without_command=True)
def migrate() -> None:
    """Bring the shared schema and every tenant schema to head."""
    try:
        migrate_all()
    except EXPECTED_ERRORS as exc:
        fail(first_line(exc))
