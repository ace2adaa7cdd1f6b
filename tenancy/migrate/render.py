"""Render a tenant revision range as SQL once, to run in any number of tenant schemas.

Tenant revisions name no schema, so the SQL Alembic renders offline is the same for every
tenant: it runs under the tenant's transaction-scoped search_path.
"""

import io
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tenancy.migrate.tracks import step_function


def render_sql(
    script: ScriptDirectory,
    from_rev: str | None,
    to_rev: str,
    *,
    downgrade: bool = False,
    version_table_schema: str | None = None,
) -> str:
    """The SQL that moves a schema from from_rev (None: empty) to to_rev, version row included.

    Tenant SQL leaves the version table unqualified; the shared track names its schema.
    """
    steps = step_function(script, to_rev, downgrade=downgrade)
    return offline_sql(script, steps, from_rev, to_rev, version_table_schema)


def offline_sql(
    script: ScriptDirectory,
    steps: Callable[[Any, Any], Any],
    from_rev: str | None,
    to_rev: str,
    version_table_schema: str | None = None,
) -> str:
    """What an offline (`--sql`) Alembic run of `steps` prints: upgrades, downgrades or a stamp."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "script": script,
            "fn": steps,
            "starting_rev": from_rev,
            "destination_rev": to_rev,
            "transactional_ddl": False,
            "literal_binds": True,
            "version_table_schema": version_table_schema,
        },
    )
    with Operations.context(context):
        context.run_migrations()
    return buffer.getvalue()


@lru_cache(maxsize=64)
def cached_sql(script: ScriptDirectory, from_rev: str | None, to_rev: str) -> str:
    return render_sql(script, from_rev, to_rev)
