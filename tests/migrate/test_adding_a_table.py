"""docs/adding-a-table.md, executed: in a copy of the project, against a throwaway database with
tenants, its files are written and its commands run; every tenant ends up with the new table."""

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.testing.replay_builders import replayed
from tests.support.project import run_alembic

WALKTHROUGH = PROJECT_ROOT / "docs" / "adding-a-table.md"
COPIED = ("tenancy", "service", "migrations", "alembic.ini", "pyproject.toml")
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", flags=re.DOTALL)


def copy_project(target: Path) -> None:
    for name in COPIED:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)


def run_walkthrough(project: Path, env: dict[str, str]) -> list[str]:
    """Write `file=` blocks, extend `append=` targets, run `sh` blocks; returns the commands."""
    commands = []
    for language, info, body in BLOCK.findall(WALKTHROUGH.read_text()):
        action, _, target = info.strip().partition("=")
        if action == "file":
            (project / target).write_text(body)
        elif action == "append":  # at the end, after two blank lines (ruff format drops them
            with (project / target).open("a") as module:  # from the doc's own code block)
                module.write("\n\n" + body)
        elif language == "sh":
            for line in filter(None, (ln.split("#")[0].strip() for ln in body.splitlines())):
                result = subprocess.run(
                    ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True
                )
                assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
                commands.append(line)
    return commands


async def tables_in(engine: AsyncEngine, schema: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        )
        return {row[0] for row in rows}


async def test_the_adding_a_table_walkthrough_works(fresh, tracks: Tracks, tmp_path: Path) -> None:
    env, engine = fresh
    assert (await asyncio.to_thread(run_alembic, "upgrade", "head", env=env)).returncode == 0
    tenants = [await create_tenant(engine, replayed(tracks), slug) for slug in ("north", "south")]
    project = tmp_path / "project"
    copy_project(project)
    before = set((PROJECT_ROOT / "migrations" / "versions").iterdir())
    walk_env = {
        **env,
        "PYTHONPATH": str(project),  # `tenantry` and `alembic` import the copy, not this tree
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    }

    commands = await asyncio.to_thread(run_walkthrough, project, walk_env)

    assert [c.split()[0] for c in commands] == ["alembic", "ruff", "tenantry"]
    assert set((PROJECT_ROOT / "migrations" / "versions").iterdir()) == before
    copied = load_tracks(project / "alembic.ini")
    revision = copied.tenant.get_revision(copied.tenant_head)
    assert revision.down_revision == tracks.tenant_head
    source = await asyncio.to_thread(Path(revision.path).read_text)
    assert 'op.create_table(\n        "notes"' in source
    assert "tenant_" not in source and "schema=" not in source
    ruff = str(Path(sys.executable).parent / "ruff")
    for check in (["check"], ["format", "--check"]):  # as `make test` runs it, on what was made
        linted = await asyncio.to_thread(
            subprocess.run,
            [ruff, *check, revision.path, "service/models.py"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr
    for tenant in tenants:
        assert "notes" in await tables_in(engine, tenant.schema)
        async with engine.connect() as conn:
            version = await conn.scalar(
                text(f'SELECT version_num FROM "{tenant.schema}".alembic_version')
            )
        assert version == copied.tenant_head
    newcomer = await create_tenant(engine, replayed(copied), "latecomer")
    assert "notes" in await tables_in(engine, newcomer.schema)
