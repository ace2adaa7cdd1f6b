"""Whatever a tenant's schema looks like, every CLI command answers in one line, never a traceback.

Four broken tenants sit beside a healthy one: a schema dropped by hand, a version table dropped,
a version row naming a revision nobody knows, and a drifted table (a column added by hand). Every
command runs against each as a real `tenantry` subprocess: stderr never holds a traceback and is
at most one `error: ...` line, and each exit status is the one an operator expects (0 for what
can be done, 1 for what cannot, with the reason). Then the operator settles each broken tenant
with the CLI alone (issue 13, item 5: `drop` archives a schema-less row, `purge` deletes it).
"""

import asyncio
import contextlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, select, text

from service.paths import ALEMBIC_INI
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_schema
from tenancy.registry import tenants
from tenancy.testing.fleets import Fleet
from tenancy.testing.replay_builders import replayed
from tests.support.common import run_tenantry
from tests.support.project import RUNTIME_ROLE

BREAKAGES: dict[str, str] = {
    "gone": "DROP SCHEMA {schema} CASCADE",
    "unversioned": "DROP TABLE {schema}.alembic_version",
    "unknown-rev": "UPDATE {schema}.alembic_version SET version_num = 'feedface'",
    "drifted": "ALTER TABLE {schema}.todos ADD COLUMN extra integer",
}


@dataclass
class Answer:
    command: str
    returncode: int
    stdout: str
    stderr: str


def tenantry(fleet: Fleet, *args: str, **env: str) -> Answer:
    result: subprocess.CompletedProcess = run_tenantry(*args, env=fleet.env(ALEMBIC_INI) | env)
    return Answer(" ".join(args), result.returncode, result.stdout, result.stderr)


def well_formed(answer: Answer, expected: int) -> None:
    """No traceback; the expected exit status; an error is one `error:` line on stderr, except
    for `migrate` and `migrate status --verify`, whose exit 1 comes with their report on stdout
    (a line per tenant that failed, is missing or drifted) and nothing on stderr."""
    where = f"`tenantry {answer.command}` -> {answer.returncode}\n{answer.stdout}{answer.stderr}"
    assert "Traceback" not in answer.stderr + answer.stdout, where
    lines = answer.stderr.strip().splitlines()
    assert len(lines) <= 1, where
    if answer.returncode != 0 and answer.command.startswith("migrate"):
        assert not lines and answer.stdout, where
    elif answer.returncode != 0:
        assert lines and lines[0].startswith("error: "), where
    assert answer.returncode == expected, where


async def broken_fleet(fleet: Fleet, tracks: Tracks) -> dict[str, CreatedTenant]:
    made = {
        name: await create_tenant(fleet.engine, replayed(tracks), name)
        for name in [*BREAKAGES, "healthy"]
    }
    async with fleet.engine.begin() as conn:
        for name, sql in BREAKAGES.items():
            await conn.execute(text(sql.format(schema=quote_schema(made[name].schema))))
    return made


EXIT = dict[str, int]
"""Expected exit status by tenant; absent: 0."""

PER_TENANT: list[tuple[Callable[[str, Path], list[str]], EXIT]] = [
    (lambda slug, _: ["tenants", "create", slug], dict.fromkeys(BREAKAGES, 1)),
    (lambda slug, _: ["tenants", "suspend", slug], {}),
    (lambda slug, _: ["tenants", "resume", slug], {}),
    (lambda slug, _: ["keys", "list", slug], {}),
    (lambda slug, _: ["limits", "set", slug, "--per-second", "5"], {}),
    (lambda slug, folder: ["tenants", "export", slug, str(folder / f"{slug}.dump")], {"gone": 1}),
    (
        lambda slug, _: ["migrate", "--tenant", slug],
        {"gone": 1, "unversioned": 1, "unknown-rev": 1},
    ),
    (lambda slug, _: ["tenants", "drop", slug, "--yes"], {}),
    (lambda slug, _: ["tenants", "restore", slug], {"gone": 1, "unversioned": 1, "unknown-rev": 1}),
]
"""Each broken tenant's commands, in order (the healthy tenant's are every other test's)."""
DROP, RESTORE = 7, 8


async def test_every_command_answers_every_broken_tenant_in_one_line(
    fleet: Fleet, tracks: Tracks, tmp_path: Path
) -> None:
    await broken_fleet(fleet, tracks)

    async def run(*args: str, expected: int, **env: str) -> Answer:
        answer = await asyncio.to_thread(tenantry, fleet, *args, **env)
        well_formed(answer, expected)
        return answer

    for args in (["tenants", "list"], ["tenants", "list", "--json"], ["limits", "list"]):
        await run(*args, expected=0)
    runtime = make_url(fleet.url).set(username=RUNTIME_ROLE).render_as_string(hide_password=False)
    roles = await run(
        "roles",
        "setup",
        expected=0,
        TENANTRY_OWNER_DATABASE_URL=fleet.url,
        TENANTRY_DATABASE_URL=runtime,
    )
    assert "granted the registry and 4 tenant schema(s)" in roles.stdout  # not the gone one
    await run("migrate", "--sql", expected=0)
    migrated = await run("migrate", expected=1)
    assert "missing gone: schema tenant_gone is missing" in migrated.stdout
    assert "`tenantry tenants drop gone --yes`" in migrated.stdout
    assert "failed unknown-rev" in migrated.stdout and "failed unversioned" in migrated.stdout
    status = await run("migrate", "status", expected=0)
    assert "problem gone: schema tenant_gone is missing" in status.stdout
    verified = await run("migrate", "status", "--verify", expected=1)
    assert "drifted drifted: stamped 0001" in verified.stdout and "extra" in verified.stdout

    one_migrate_at_a_time = asyncio.Lock()  # a second concurrent run exits 1 by design

    async def walk(slug: str) -> list[Answer]:
        answers = []
        for command, exits in PER_TENANT:
            args = command(slug, tmp_path)
            async with one_migrate_at_a_time if args[0] == "migrate" else contextlib.nullcontext():
                answers.append(await run(*args, expected=exits.get(slug, 0)))
        return answers

    walked = dict(zip(BREAKAGES, await asyncio.gather(*map(walk, BREAKAGES)), strict=True))

    assert "was already gone" in walked["gone"][DROP].stdout
    assert "`tenantry tenants purge gone --yes`" in walked["gone"][DROP].stdout
    assert "no schema to restore" in walked["gone"][RESTORE].stderr
    assert "feedface" in walked["unknown-rev"][RESTORE].stderr
    assert "DuplicateTableError" in walked["unversioned"][RESTORE].stderr

    # The operator settles every broken tenant with the CLI: purge the archived ones (a live
    # schema is refused: it needs `drop` first) ...
    await run("tenants", "purge", "healthy", "--yes", expected=1)
    for slug in ["gone", "unversioned", "unknown-rev"]:
        await run("tenants", "purge", slug, "--yes", expected=0)
    # ... and a whole-fleet migrate succeeds again (the drifted tenant was restored at head).
    await run("migrate", expected=0)
    async with fleet.engine.connect() as conn:
        left = set(await conn.scalars(select(tenants.c.slug)))
    assert left == {"drifted", "healthy"}


async def test_purge_deletes_a_registered_tenant_whose_schema_is_gone(
    fleet: Fleet, tracks: Tracks
) -> None:
    """No archive first: there is no data to keep. Then migrate passes again."""
    gone = await create_tenant(fleet.engine, replayed(tracks), "gone")
    async with fleet.engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA {quote_schema(gone.schema)} CASCADE"))
    purged = await asyncio.to_thread(tenantry, fleet, "tenants", "purge", "gone", "--yes")
    well_formed(purged, 0)
    assert purged.stdout.strip() == (
        "purged tenant gone: tenant_gone was already gone; registry row deleted"
    )
    well_formed(await asyncio.to_thread(tenantry, fleet, "migrate"), 0)
