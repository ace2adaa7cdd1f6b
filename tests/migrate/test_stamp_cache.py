"""The tenant track's stamp, cached beside the revisions so `tenantry tenants create` needs no
Alembic: the same SQL as Alembic renders, read back only while nothing it depends on changed."""

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

from service.models import TenantBase
from service.onboarding import TENANT_MODELS
from service.paths import ALEMBIC_INI
from tenancy.lifecycle.schema_builders.head_ddl import (
    HEAD_CACHE_PREFIX,
    CachedHeadDDL,
    HeadDDL,
    TenantModels,
    cached_head_script,
    stamp_sql,
)
from tenancy.lifecycle.schema_builders.stamp_cache import CACHE_PREFIX, cached_stamp_sql
from tenancy.migrate.tracks import load_tracks
from tenancy.testing.fleets import ADD_PRIORITY, LIVE_BACKFILL, add_revision
from tests.support.migrate import scratch_alembic

read_or_render = cached_stamp_sql.__wrapped__  # what a new process does: no in-memory copy


def alembic_stamp(ini: Path) -> str:
    script = ScriptDirectory.from_config(Config(ini))
    return stamp_sql(script, script.get_current_head() or "")


def cache_files(ini: Path) -> list[Path]:
    return sorted((ini.parent / "migrations" / "__pycache__").glob(f"{CACHE_PREFIX}*.sql"))


def test_the_cached_script_is_the_one_alembic_renders() -> None:
    tracks = load_tracks(ALEMBIC_INI)
    cached = CachedHeadDDL(ALEMBIC_INI, TENANT_MODELS).script()
    assert cached == HeadDDL(tracks, TenantBase.metadata).script()
    assert "INSERT INTO alembic_version" in cached and tracks.tenant_head in cached


def test_a_stamp_is_read_back_until_a_revision_changes(tmp_path: Path) -> None:
    ini = scratch_alembic(tmp_path, [ADD_PRIORITY])
    assert cache_files(ini) == []
    first = read_or_render(ini)
    assert first == alembic_stamp(ini) and "'0002'" in first
    [stored] = cache_files(ini)
    assert stored.read_text() == first

    stored.write_text("-- what the cache holds\n")  # a hit returns the file, not a new render
    assert read_or_render(ini) == "-- what the cache holds\n"

    head = ini.parent / "migrations" / "versions" / "0003_test.py"  # a new head: another digest
    scratch_alembic(tmp_path / "more", [ADD_PRIORITY, LIVE_BACKFILL])
    head.write_text((tmp_path / "more" / "migrations" / "versions" / "0003_test.py").read_text())
    second = read_or_render(ini)
    assert second == alembic_stamp(ini) and "'0003'" in second
    assert [path.read_text() for path in cache_files(ini)] == [second]  # the old one is gone

    head.write_text(head.read_text() + "\n# an edit, same head\n")
    stored = cache_files(ini)[0]
    assert read_or_render(ini) == second
    assert cache_files(ini) != [stored]  # edited bytes: rendered and stored again


def test_an_unwritable_cache_renders_every_time(tmp_path: Path) -> None:
    ini = scratch_alembic(tmp_path, [])
    (ini.parent / "migrations" / "__pycache__").write_text("not a folder")
    assert read_or_render(ini) == alembic_stamp(ini)
    assert read_or_render(ini) == alembic_stamp(ini)


def test_a_config_it_does_not_follow_is_not_cached(tmp_path: Path) -> None:
    ini = scratch_alembic(tmp_path, [ADD_PRIORITY])
    text = ini.read_text()
    ini.write_text(
        text.replace(
            "[alembic]\n", f"[alembic]\nversion_locations = {ini.parent}/migrations/versions\n", 1
        )
    )
    assert read_or_render(ini) == alembic_stamp(ini)
    assert cache_files(ini) == []


def test_the_head_script_is_read_back_until_a_models_source_or_revision_changes(
    tmp_path: Path,
) -> None:
    """`tenantry tenants create` reads the whole head script from disk, models included: an edit
    of the models' sources (or a new revision) names another file, so it is rendered again."""
    ini = scratch_alembic(tmp_path, [])
    source = tmp_path / "models_source.py"
    source.write_text("# the tenant models\n")
    loads: list[int] = []

    def load() -> MetaData:
        loads.append(1)
        return TenantBase.metadata

    models = TenantModels(load, (source,))
    render_or_read = cached_head_script.__wrapped__  # a new process: no in-memory copy
    first = render_or_read(ini, models)
    assert first == HeadDDL(load_tracks(ini), TenantBase.metadata).script() and len(loads) == 1
    [stored] = head_files(ini)
    stored.write_text("-- what the cache holds\n")
    assert render_or_read(ini, models) == "-- what the cache holds\n" and len(loads) == 1

    source.write_text("# the tenant models, edited\n")  # the negative control: a stale read
    assert render_or_read(ini, models) == first and len(loads) == 2
    assert [path.read_text() for path in head_files(ini)] == [first]  # the old file is gone

    add_revision(ini, ADD_PRIORITY)
    assert "'0002'" in render_or_read(ini, models) and len(loads) == 3


def head_files(ini: Path) -> list[Path]:
    return sorted((ini.parent / "migrations" / "__pycache__").glob(f"{HEAD_CACHE_PREFIX}*.sql"))
