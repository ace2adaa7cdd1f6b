"""The two Alembic version tracks and running one of them inside one schema.

The tenant track is the default `[alembic]` section of alembic.ini (so `alembic revision` writes
tenant revisions); the shared registry track is the `[shared]` section.
"""

from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from tenancy.naming import REGISTRY_SCHEMA, tenant_search_path
from tenancy.session import SET_TENANT_SEARCH_PATH

SHARED_SECTION = "shared"


@dataclass(frozen=True)
class Tracks:
    tenant: ScriptDirectory
    shared: ScriptDirectory

    @property
    def tenant_head(self) -> str:
        return _single_head(self.tenant)

    @property
    def shared_head(self) -> str:
        return _single_head(self.shared)


def load_tracks(alembic_ini: Path) -> Tracks:
    return Tracks(
        tenant=ScriptDirectory.from_config(Config(alembic_ini)),
        shared=ScriptDirectory.from_config(Config(alembic_ini, ini_section=SHARED_SECTION)),
    )


def _single_head(script: ScriptDirectory) -> str:
    head = script.get_current_head()
    if head is None:
        raise RuntimeError(f"no revisions in {script.dir}")
    return head


def step_function(script: ScriptDirectory, target: str, *, downgrade: bool = False):
    """The `fn` Alembic's commands hand to a migration context, for one target revision."""

    def steps(rev, _context):
        if downgrade:
            return script._downgrade_revs(target, rev)
        return script._upgrade_revs(target, rev)

    return steps


def run_track(
    connection: Connection,
    script: ScriptDirectory,
    version_schema: str,
    target: str = "head",
    *,
    downgrade: bool = False,
) -> None:
    """Run one track to `target` inside the caller's transaction, versioned in version_schema."""
    context = MigrationContext.configure(
        connection,
        opts={
            "script": script,
            "fn": step_function(script, target, downgrade=downgrade),
            "version_table_schema": version_schema,
            "transactional_ddl": True,
        },
    )
    with Operations.context(context):
        context.run_migrations()


def upgrade_shared(connection: Connection, tracks: Tracks) -> None:
    """Bring the registry schema to head in the caller's transaction."""
    connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {REGISTRY_SCHEMA}")
    run_track(connection, tracks.shared, REGISTRY_SCHEMA)


def enter_schema(connection: Connection, schema: str) -> None:
    """Make schema the search_path (then the extensions schema) until the transaction ends."""
    connection.execute(SET_TENANT_SEARCH_PATH, {"schema": tenant_search_path(schema)})
