"""Export one tenant with pg_dump and import it, under its old slug or a new one."""

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import ALEMBIC_INI
from tenancy.lifecycle import transfer
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.lifecycle.pgtools import PgToolMissing, find_pg_tool, server_major, tool_major
from tenancy.migrate.tracks import load_tracks
from tenancy.naming import quote_schema
from tenancy.testing.servers import client
from tests.support.common import known_to_running_apps
from tests.support.lifecycle import cli, footprint, one_error_line


async def todos_of(engine: AsyncEngine, schema: str) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT id, content FROM {quote_schema(schema)}.todos"))
        return sorted(tuple(row) for row in rows)


async def test_import_as_a_new_slug_copies_the_data_and_issues_a_new_key(
    api: str, engine: AsyncEngine, tenant: CreatedTenant, new_slug: str, tmp_path: Path
) -> None:
    async with client(api, tenant.slug, tenant.api_key) as own:
        for content in ("one", "two"):
            assert (await own.post("/todos", json={"content": content})).status_code == 201
    file = tmp_path / "tenant.dump"
    exported = await cli("tenants", "export", tenant.slug, str(file))
    assert exported.exit_code == 0, exported.output

    imported = await cli("tenants", "import", str(file), "--as", f"{new_slug}-copy", "--json")
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    copy = CreatedTenant(**record | {"schema": record.pop("schema_name")})
    assert await todos_of(engine, copy.schema) == await todos_of(engine, tenant.schema)
    await known_to_running_apps(str(engine.url), copy.slug)  # imported behind the api's back
    async with client(api, copy.slug, copy.api_key) as theirs:
        added = await theirs.post("/todos", json={"content": "three"})
        assert added.status_code == 201 and added.json()["id"] == 3  # identity carried over
    async with client(api, copy.slug, tenant.api_key) as wrong:
        assert (await wrong.get("/todos")).status_code == 401
    assert [c for _, c in await todos_of(engine, tenant.schema)] == ["one", "two"]
    assert not any(s.startswith("importing_") for s in (await footprint(engine)).schemas)


async def test_export_then_purge_then_import_brings_a_tenant_back_under_its_slug(
    engine: AsyncEngine, tenant: CreatedTenant, tmp_path: Path
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) VALUES ('saved')")
        )
    assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    file = tmp_path / "archived.dump"
    assert (await cli("tenants", "export", tenant.slug, str(file))).exit_code == 0
    assert (await cli("tenants", "purge", tenant.slug, "--yes")).exit_code == 0
    assert f"--as {tenant.slug}" in one_error_line(await cli("tenants", "import", str(file)))
    imported = await cli("tenants", "import", str(file), "--as", tenant.slug)
    assert imported.exit_code == 0, imported.output
    assert [c for _, c in await todos_of(engine, tenant.schema)] == ["saved"]


async def test_failed_imports_leave_nothing(
    engine: AsyncEngine, tenant: CreatedTenant, tmp_path: Path
) -> None:
    file = tmp_path / "tenant.dump"
    assert (await cli("tenants", "export", tenant.slug, str(file))).exit_code == 0
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"not an archive")
    before = await footprint(engine)
    assert "already exists" in one_error_line(await cli("tenants", "import", str(file)))
    refused = one_error_line(await cli("tenants", "import", str(garbage)))
    assert "is not a tenant export" in refused and "tar" not in refused
    assert "invalid slug" in one_error_line(await cli("tenants", "import", str(file), "--as", "X"))
    # an empty --as is a slug like any other (refused), not "the archive's own slug"
    assert "invalid slug" in one_error_line(await cli("tenants", "import", str(file), "--as", ""))
    assert await footprint(engine) == before


class InjectedFailure(Exception):
    pass


async def test_an_import_failing_at_its_last_step_leaves_no_tenant_and_no_staging_schema(
    engine: AsyncEngine, tenant: CreatedTenant, new_slug: str, tmp_path: Path, monkeypatch
) -> None:
    file = tmp_path / "tenant.dump"
    assert (await cli("tenants", "export", tenant.slug, str(file))).exit_code == 0

    async def fail(_conn, _adoption) -> None:
        raise InjectedFailure("after every import step")

    monkeypatch.setattr(transfer, "IMPORT_STEPS", (*transfer.IMPORT_STEPS, fail))
    before = await footprint(engine)
    with pytest.raises(InjectedFailure):
        await transfer.import_tenant(engine, load_tracks(ALEMBIC_INI), file, f"{new_slug}-x")
    assert await footprint(engine) == before


async def test_tools_must_match_the_servers_major_version(engine: AsyncEngine) -> None:
    """The export tests prove the chosen tools work; here: what is chosen, and the refusal."""
    async with engine.connect() as conn:
        major = await server_major(conn)
    found = find_pg_tool("pg_dump", major)
    assert tool_major(found) == major
    with pytest.raises(PgToolMissing) as missing:
        find_pg_tool("pg_dump", 99)
    message = str(missing.value)
    assert message.startswith("no pg_dump for PostgreSQL 99 on this machine (found ")
    assert f"{major} at {found}" in message and "\n" not in message
    with pytest.raises(PgToolMissing, match=r"^no pg_restore for PostgreSQL 15 on this machine:"):
        find_pg_tool("pg_restore", 15, search=[])


async def test_export_writes_a_new_private_file_and_refuses_to_overwrite_without_force(
    tenant: CreatedTenant, tmp_path: Path
) -> None:
    file = tmp_path / "tenant.dump"
    assert (await cli("tenants", "export", tenant.slug, str(file))).exit_code == 0
    assert file.stat().st_mode & 0o777 == 0o600
    first = file.read_bytes()
    file.write_bytes(b"keep me")
    assert "exists: pass --force" in one_error_line(
        await cli("tenants", "export", tenant.slug, str(file))
    )
    assert file.read_bytes() == b"keep me"
    assert (await cli("tenants", "export", tenant.slug, str(file), "--force")).exit_code == 0
    assert file.read_bytes()[:5] == first[:5] == b"PGDMP"
    assert file.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["tenant.dump"]  # no partial file left


async def test_export_never_follows_a_symbolic_link(tenant: CreatedTenant, tmp_path: Path) -> None:
    """A link planted where the export goes (to a file the operator can write) is refused, and
    with --force replaced by the export itself: the file it points to is never written."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "tenant.dump"
    link.symlink_to(victim)
    assert "exists: pass --force" in one_error_line(
        await cli("tenants", "export", tenant.slug, str(link))
    )
    dangling = tmp_path / "dangling.dump"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    assert "exists" in one_error_line(await cli("tenants", "export", tenant.slug, str(dangling)))
    assert not (tmp_path / "created-through-the-link").exists()
    assert (await cli("tenants", "export", tenant.slug, str(link), "--force")).exit_code == 0
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes()[:5] == b"PGDMP"


async def test_an_export_that_fails_leaves_no_file(engine: AsyncEngine, tmp_path: Path) -> None:
    file = tmp_path / "missing.dump"
    assert "unknown tenant" in one_error_line(await cli("tenants", "export", "no-such", str(file)))
    assert os.listdir(tmp_path) == []


async def test_an_export_into_a_missing_or_unusable_directory_names_the_users_path(
    tenant: CreatedTenant, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.dump"
    line = one_error_line(await cli("tenants", "export", tenant.slug, str(missing)))
    assert line == f"error: cannot write {missing}: directory {missing.parent} does not exist"
    (tmp_path / "plain-file").write_bytes(b"")
    under_a_file = tmp_path / "plain-file" / "x.dump"
    line = one_error_line(await cli("tenants", "export", tenant.slug, str(under_a_file)))
    assert line == f"error: cannot write {under_a_file}: {under_a_file.parent} is not a directory"
    assert os.listdir(tmp_path) == ["plain-file"]
