"""Alembic environment, in the shape of Alembic's async template.

Online: the shared registry schema first, then every tenant schema (or those named with
`-x tenant=SLUG`), each in its own transaction. Offline (`--sql`): the tenant revisions as SQL
that names no schema, to run under any tenant's search_path.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from service.models import TenantBase
from tenancy.database import database_url
from tenancy.migrate.alembic_env import migrate_online, one_line_errors
from tenancy.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = TenantBase.metadata


def run_migrations_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    migrate_online(context, connection, target_metadata)


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


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


with one_line_errors():
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
