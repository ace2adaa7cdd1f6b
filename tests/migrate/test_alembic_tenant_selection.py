"""Plain `alembic -x tenant=...` (docs/migrations.md): a comma list migrates exactly the tenants
it names, and a list naming an unknown tenant is one ERROR line on stderr, a non-zero exit, no
traceback, and nothing migrated (not even the known tenants of the list). Real `alembic`
processes on a fleet whose three tenants are one revision behind a scratch head."""

import asyncio
import subprocess
from pathlib import Path

import pytest

from tenancy.testing.fleets import ADD_PRIORITY, PROJECT_HEAD, Fleet
from tests.support.migrate import revision_of, scratch_alembic
from tests.support.project import run_alembic


@pytest.fixture(scope="module")
def one_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alembic.ini of a copy of the project with one more tenant revision (0002)."""
    return scratch_alembic(tmp_path_factory.mktemp("one_step"), [ADD_PRIORITY])


async def alembic(fleet: Fleet, ini: Path, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run_alembic, *args, env=fleet.env(ini), config=ini)


async def revisions(fleet: Fleet) -> dict[str, str | None]:
    return {t.slug: await revision_of(fleet.engine, t.schema) for t in fleet.tenants}


async def test_x_tenant_with_a_comma_list_migrates_exactly_those_tenants(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("sel", 3)
    a, b, c = (t.slug for t in fleet.tenants)
    assert await revisions(fleet) == dict.fromkeys((a, b, c), PROJECT_HEAD)

    chosen = await alembic(fleet, one_step, "-x", f"tenant={a},{b}", "upgrade", "head")
    assert chosen.returncode == 0, chosen.stderr
    assert await revisions(fleet) == {a: "0002", b: "0002", c: PROJECT_HEAD}
    assert f"tenant {a} " in chosen.stdout and f"tenant {b} " in chosen.stdout
    assert f"tenant {c} " not in chosen.stdout

    everyone = await alembic(fleet, one_step, "upgrade", "head")  # the control: c could move
    assert everyone.returncode == 0, everyone.stderr
    assert await revisions(fleet) == dict.fromkeys((a, b, c), "0002")


async def test_an_unknown_tenant_in_the_list_is_one_error_line_and_migrates_nothing(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("unk", 2)
    known, other = (t.slug for t in fleet.tenants)

    result = await alembic(fleet, one_step, "-x", f"tenant={known},ghost", "upgrade", "head")
    shown = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode != 0, shown
    assert len(result.stderr.splitlines()) == 1, shown
    assert result.stderr.startswith("ERROR") and "unknown tenant(s): ghost" in result.stderr, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert await revisions(fleet) == dict.fromkeys((known, other), PROJECT_HEAD)

    named = await alembic(fleet, one_step, "-x", f"tenant={known}", "upgrade", "head")
    assert named.returncode == 0, named.stderr  # the control: without the ghost, it moves
    assert await revisions(fleet) == {known: "0002", other: PROJECT_HEAD}
