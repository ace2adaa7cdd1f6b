"""The two Alembic version tracks and running one of them inside one schema.

The tenant track is the default `[alembic]` section of alembic.ini (so `alembic revision` writes
tenant revisions); the shared registry track is the `[shared]` section.

Alembic is imported by the functions that use it, not with this module: onboarding names Tracks
without needing Alembic when the head script is cached (tenancy.lifecycle.schema_builders.head_ddl).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from tenancy.migrate.revision_cache import SHARED_SECTION
from tenancy.naming import REGISTRY_SCHEMA

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection


Fingerprint = tuple[tuple[str, int, int], ...]
"""(path, mtime in ns, size) of every revision file of a track, sorted."""


@dataclass(frozen=True)
class Tracks:
    """Both tracks, read from disk once: their revisions are what this process can build.

    `load_tracks` reads every revision when it is called (Alembic would otherwise read them on
    first use), so the head a process stamps is the head of the revisions it loaded together with
    its models at start-up, never one a later deploy put on disk (`disk_head` tells that apart).
    """

    tenant: ScriptDirectory
    shared: ScriptDirectory
    source: Path | None = field(default=None, compare=False)
    """The alembic.ini they were read from (None: assembled by hand, never compared to disk)."""
    fingerprint: Fingerprint = field(default=(), compare=False)
    """The tenant track's revision files as they were when loaded."""

    @property
    def tenant_head(self) -> str:
        return _single_head(self.tenant)

    @property
    def shared_head(self) -> str:
        return _single_head(self.shared)

    def disk_head(self) -> str | None:
        """The tenant head on disk now, when it is not the one loaded; None when it still is.

        Cheap when nothing changed (one stat per revision file); reads the revisions again only
        when a file was added, removed or rewritten since the load.
        """
        if self.source is None:
            return None
        files = revision_files(self.tenant)
        if files == self.fingerprint:
            return None
        head = _head_on_disk(self.source, files)
        return None if head == self.tenant_head else head

    def knows_on_disk(self, revision: str) -> bool:
        """Whether the tenant revisions on disk now (not this process's) include `revision`."""
        if self.source is None:
            return False
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(Config(self.source))
        try:
            return script.get_revision(revision) is not None
        except Exception:  # alembic's CommandError / RevisionError: not a revision it knows
            return False


def load_tracks(alembic_ini: Path) -> Tracks:
    """Both tracks with every revision read now (see Tracks); the fingerprint is taken first, so
    a file written while they load shows as a change."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    tenant = ScriptDirectory.from_config(Config(alembic_ini))
    fingerprint = revision_files(tenant)
    shared = ScriptDirectory.from_config(Config(alembic_ini, ini_section=SHARED_SECTION))
    for script in (tenant, shared):
        script.revision_map.heads  # noqa: B018 - loads every revision now, not on first use
    return Tracks(tenant, shared, Path(alembic_ini), fingerprint)


@lru_cache(maxsize=8)
def _head_on_disk(source: Path, files: Fingerprint) -> str:
    """The tenant head of the revisions on disk, read once per state of their files."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return _single_head(ScriptDirectory.from_config(Config(source)))


def revision_files(script: ScriptDirectory) -> Fingerprint:
    """Every revision file of a track with its modification time and size."""
    found: list[tuple[str, int, int]] = []
    for location in script._version_locations:
        if not location.is_dir():
            continue
        pattern = "**/*.py" if script.recursive_version_locations else "*.py"
        for path in location.glob(pattern):
            with contextlib.suppress(FileNotFoundError):  # removed while we look
                stat = path.stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


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
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

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
