"""Both tracks' heads, cached beside the revisions (tenancy.migrate.revision_cache), so that a
`tenantry migrate` with nothing to do can tell so without Alembic (tenancy.migrate.noop).

Written by whoever loads the tracks through `load_tracks_remembering_heads` (the full
`tenantry migrate`), and only when no revision changed while they loaded.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tenancy.migrate.revision_cache import (
    SHARED_SECTION,
    TENANT_SECTION,
    cache_file,
    read_cached,
    store,
)

if TYPE_CHECKING:
    from tenancy.migrate.tracks import Tracks

HEADS_PREFIX = "tenantry-heads-"
_SECTIONS = (TENANT_SECTION, SHARED_SECTION)


@dataclass(frozen=True, slots=True)
class Heads:
    tenant: str
    shared: str


def cached_heads(alembic_ini: Path) -> Heads | None:
    """The heads of the revisions on disk now, when a run has cached them for exactly these."""
    text = read_cached(_heads_file(alembic_ini))
    if text is None:
        return None
    try:
        found = json.loads(text)
        return Heads(str(found["tenant"]), str(found["shared"]))
    except (ValueError, KeyError, TypeError):
        return None  # not ours, or cut short: loaded with Alembic, and written again


def load_tracks_remembering_heads(alembic_ini: Path) -> "Tracks":
    """load_tracks(), with their heads cached for the next run's cached_heads()."""
    from tenancy.migrate.tracks import load_tracks

    before = _heads_file(alembic_ini)
    tracks = load_tracks(alembic_ini)
    if before is not None and _heads_file(alembic_ini) == before:
        heads = {"tenant": tracks.tenant_head, "shared": tracks.shared_head}
        store(before, json.dumps(heads), HEADS_PREFIX)
    return tracks


def _heads_file(alembic_ini: Path) -> Path | None:
    return cache_file(alembic_ini, _SECTIONS, HEADS_PREFIX, ".json")
