"""What migrations/env.py calls: the shared track first, then each tenant in its own transaction."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from sqlalchemy import Connection, MetaData, text

from tenancy.lifecycle.errors import UnknownTenant
from tenancy.live_tenants import live_tenants_query
from tenancy.migrate.lock import held_by
from tenancy.migrate.tracks import Tracks, load_tracks, run_track, upgrade_shared
from tenancy.naming import TENANT_SCHEMA_PREFIX, checked_schema, quote_schema
from tenancy.one_line import describe
from tenancy.search_path import enter_schema

AUTOGENERATE_SCHEMA = checked_schema(TENANT_SCHEMA_PREFIX + "autogen")
"""Scratch schema for autogenerate; 'autogen' is a reserved slug, so no tenant can own it."""

log = logging.getLogger("alembic.runtime.migration")
_ONCE_PER_RUN = ("Context impl ", "Will assume ")


class _FirstTimeOnly(logging.Filter):
    """Alembic says which dialect and DDL mode it uses each time a context is configured: once per
    tenant here. The first time is enough."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(_ONCE_PER_RUN):
            return True
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Any failure becomes an Alembic CommandError: `FAILED: <one line>` on stderr, exit 1."""
    from alembic.util import CommandError

    try:
        yield
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(describe(exc)) from exc


def selected_slugs(context: EnvironmentContext) -> list[str]:
    """Slugs from `-x tenant=a -x tenant=b` or `-x tenant=a,b`."""
    slugs: list[str] = []
    for value in context.get_x_argument(as_dictionary=False):
        key, _, slug_list = value.partition("=")
        if key == "tenant":
            slugs.extend(s for s in slug_list.split(",") if s)
    return slugs


def wants_autogenerate(config: Config) -> bool:
    command = getattr(config.cmd_opts, "cmd", None)
    name = getattr(command[0], "__name__", "") if command else ""
    return name == "check" or (name == "revision" and config.cmd_opts.autogenerate)


def tenant_schemas_of(connection: Connection, slugs: list[str]) -> list[tuple[str, str]]:
    """(slug, schema) of each live tenant, or of those named; unknown names are refused."""
    rows = connection.exec_driver_sql(*live_tenants_query(slugs)).all()
    missing = set(slugs) - {row.slug for row in rows}
    if missing:
        raise UnknownTenant(f"unknown tenant(s): {', '.join(sorted(missing))}")
    return [(row.slug, checked_schema(row.schema_name)) for row in rows]


def migrate_online(
    context: EnvironmentContext, connection: Connection, target_metadata: MetaData
) -> None:
    """The body of env.py's do_run_migrations; holds the same lock as `tenantry migrate`."""
    tracks = load_tracks(context.config.config_file_name)
    if wants_autogenerate(context.config):
        autogenerate_in_scratch(context, connection, target_metadata, tracks)
        return
    once = _FirstTimeOnly()
    log.addFilter(once)
    try:
        _migrate_tenants(context, connection, target_metadata, tracks)
    finally:
        log.removeFilter(once)


def _migrate_tenants(
    context: EnvironmentContext, connection: Connection, target_metadata: MetaData, tracks: Tracks
) -> None:
    with held_by(connection):
        with connection.begin():
            upgrade_shared(connection, tracks)
        with connection.begin():
            schemas = tenant_schemas_of(connection, selected_slugs(context))
        for slug, schema in schemas:
            log.info("tenant %s (schema %s)", slug, schema)
            with connection.begin():
                if not _schema_exists(connection, schema):
                    raise LookupError(
                        f"tenant {slug}: its schema {schema} does not exist (dropped outside "
                        f"Tenantry?); `tenantry tenants drop {slug} --yes` retires the tenant"
                    )
                enter_schema(connection, schema)
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    version_table_schema=schema,
                )
                with context.begin_transaction():
                    context.run_migrations()


def _schema_exists(connection: Connection, schema: str) -> bool:
    found = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).first()
    return found is not None


def autogenerate_in_scratch(
    context: EnvironmentContext, connection: Connection, target_metadata: MetaData, tracks: Tracks
) -> None:
    """Compare the models with a throwaway schema at head, so the revision names no tenant."""
    transaction = connection.begin()
    try:
        connection.exec_driver_sql(f"CREATE SCHEMA {quote_schema(AUTOGENERATE_SCHEMA)}")
        enter_schema(connection, AUTOGENERATE_SCHEMA)
        run_track(connection, tracks.tenant, AUTOGENERATE_SCHEMA)
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        transaction.rollback()
