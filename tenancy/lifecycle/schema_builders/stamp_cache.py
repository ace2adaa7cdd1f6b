"""The tenant track's `stamp head` SQL, cached on disk beside the revisions it was rendered from.

Rendering it needs Alembic and the whole revision graph; the SQL only changes when the revisions,
the alembic.ini or Alembic do, so it is kept in `<script_location>/__pycache__/
tenantry-stamp-<digest>.sql`, keyed by exactly those (tenancy.migrate.revision_cache): a stale
file is never read, and a config that module does not follow means rendering every time.
"""

from functools import lru_cache
from pathlib import Path

from tenancy.migrate.revision_cache import TENANT_SECTION, derived

CACHE_PREFIX = "tenantry-stamp-"


def stamp_sql_on_disk(alembic_ini: Path) -> str:
    """The tenant track's offline `stamp head` from an empty schema, as HeadDDL renders it:
    read back from the file of the revisions as they are now, else rendered and stored."""
    return derived(
        alembic_ini, (TENANT_SECTION,), CACHE_PREFIX, ".sql", lambda: _render(alembic_ini)
    )


cached_stamp_sql = lru_cache(maxsize=8)(stamp_sql_on_disk)
"""The same, kept for the life of the process."""


def _render(alembic_ini: Path) -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tenancy.lifecycle.schema_builders.head_ddl import stamp_sql

    script = ScriptDirectory.from_config(Config(alembic_ini))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError(f"no revisions in {script.dir}")
    return stamp_sql(script, head)
