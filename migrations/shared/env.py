"""Alembic environment of the shared registry track (`alembic -n shared ...`).

Plain `alembic upgrade head` already runs this track first; this env is for authoring and
running shared revisions on their own.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from tenancy.database import database_url
from tenancy.migrate.alembic_env import one_line_errors
from tenancy.naming import REGISTRY_SCHEMA
from tenancy.registry import registry_metadata
from tenancy.settings import get_settings

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        target_metadata=registry_metadata,
        version_table_schema=REGISTRY_SCHEMA,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # Committed on its own: a transaction left open here would make Alembic's
    # begin_transaction() below join it without committing, and every change would be lost.
    with connection.begin():
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {REGISTRY_SCHEMA}")
    context.configure(
        connection=connection,
        target_metadata=registry_metadata,
        version_table_schema=REGISTRY_SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == REGISTRY_SCHEMA,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    connectable = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        url=await database_url(get_settings()),
    )
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()


with one_line_errors():
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        asyncio.run(run_async_migrations())
