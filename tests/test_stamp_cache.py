"""The tenant track's stamp, cached beside the revisions so `tenantry tenants create` needs no
Alembic: the same SQL as Alembic renders, read back only while nothing it depends on changed."""

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from service.models import TenantBase
from service.onboarding import TENANT_MODELS
from service.paths import ALEMBIC_INI
from tenancy.lifecycle.schema_builders.head_ddl import CachedHeadDDL, HeadDDL, stamp_sql
from tenancy.lifecycle.schema_builders.stamp_cache import CACHE_PREFIX, cached_stamp_sql
from tenancy.migrate.tracks import load_tracks
from tests.migrate_support import ADD_PRIORITY, LIVE_BACKFILL, scratch_alembic

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
