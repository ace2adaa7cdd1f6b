"""An import streams the archive's rows from pg_restore: nothing of them on local disk, a bound
on how much they may expand to, and SIGTERM handled as Ctrl-C (temporary files gone, nothing
imported). Real `tenantry` processes against the real database."""

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.naming import quote_schema, tenant_schema
from tests.cli.test_cli import TENANTRY, tenantry
from tests.support.lifecycle import footprint, wait_for_blocked

MARKER = "row-of-the-archive"


async def exported_with_rows(engine: AsyncEngine, tenant: CreatedTenant, file: Path) -> None:
    """The tenant with 500 rows of about 100 bytes each, exported to `file`."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) "
                f"SELECT '{MARKER}-' || repeat('x', 80) || g FROM generate_series(1, 500) g"
            )
        )
    assert tenantry("tenants", "export", tenant.slug, str(file)).returncode == 0


def importing(file: Path, slug: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TENANTRY, "tenants", "import", str(file), "--as", slug],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def rows_of(engine: AsyncEngine, slug: str) -> int:
    async with engine.connect() as conn:
        schema = quote_schema(tenant_schema(slug))
        return await conn.scalar(text(f"SELECT count(*) FROM {schema}.todos"))


async def test_sigterm_mid_import_removes_its_files_and_imports_nothing(
    engine: AsyncEngine, tenant: CreatedTenant, new_slug: str, tmp_path: Path
) -> None:
    archive, scratch = tmp_path / "tenant.dump", tmp_path / "tmp"
    scratch.mkdir()
    await exported_with_rows(engine, tenant, archive)
    before = await footprint(engine)
    async with engine.connect() as lock:  # the import's last insert (its key) waits on it
        await lock.execute(text("LOCK TABLE tenantry.api_keys IN EXCLUSIVE MODE"))
        run = importing(archive, f"{new_slug}-copy", TMPDIR=str(scratch))
        await wait_for_blocked(engine, 1)  # every row is loaded by now
        (folder,) = scratch.iterdir()
        assert folder.name.startswith("tenantry-import-")
        assert folder.stat().st_mode & 0o777 == 0o700
        files = list(folder.iterdir())
        assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        assert not any(MARKER in f.read_text() for f in files)  # the rows never touch the disk
        run.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(run.communicate)
        await lock.rollback()
    assert (run.returncode, out, err) == (143, "", "error: terminated (SIGTERM)\n")
    assert list(scratch.iterdir()) == []
    assert await footprint(engine) == before

    control = importing(archive, f"{new_slug}-copy", TMPDIR=str(scratch))  # no signal
    out, err = await asyncio.to_thread(control.communicate)
    assert control.returncode == 0, err
    assert list(scratch.iterdir()) == []
    assert await rows_of(engine, f"{new_slug}-copy") == 500


async def test_an_archive_expanding_beyond_the_bound_is_refused_and_imports_nothing(
    engine: AsyncEngine, tenant: CreatedTenant, new_slug: str, tmp_path: Path
) -> None:
    archive = tmp_path / "tenant.dump"
    await exported_with_rows(engine, tenant, archive)  # about 50 kB of rows, compressed to less
    assert archive.stat().st_size < 40_000  # 8 kB with pg_dump 15's gzip, 23 kB with 18's
    before = await footprint(engine)
    refused = importing(archive, f"{new_slug}-copy", TENANTRY_IMPORT_MAX_BYTES="40000")
    out, err = await asyncio.to_thread(refused.communicate)
    assert (refused.returncode, out) == (1, "")
    assert err == (
        "error: refused: the archive's data expands to more than 40000 bytes "
        "(TENANTRY_IMPORT_MAX_BYTES); raise it to import this archive\n"
    )
    assert await footprint(engine) == before

    allowed = importing(archive, f"{new_slug}-copy", TENANTRY_IMPORT_MAX_BYTES="200000")
    out, err = await asyncio.to_thread(allowed.communicate)
    assert allowed.returncode == 0, err
    assert await rows_of(engine, f"{new_slug}-copy") == 500


async def test_an_archive_whose_data_is_cut_short_is_refused_and_imports_nothing(
    engine: AsyncEngine, tenant: CreatedTenant, new_slug: str, tmp_path: Path
) -> None:
    """pg_restore's output is read as it comes: a stream it cannot finish never passes for the
    whole of the data (its exit status is checked before the commit)."""
    archive, damaged = tmp_path / "tenant.dump", tmp_path / "damaged.dump"
    await exported_with_rows(engine, tenant, archive)
    whole = archive.read_bytes()
    damaged.write_bytes(whole[: len(whole) // 2])  # inside the rows' data, whatever the codec
    assert tenantry("tenants", "import", str(archive), "--as", f"{new_slug}-a").returncode == 0
    before = await footprint(engine)
    result = tenantry("tenants", "import", str(damaged), "--as", f"{new_slug}-b")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert await footprint(engine) == before
