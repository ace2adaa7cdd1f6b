"""The CLI's import structure (issue 19): `tenantry --help`, every command's --help and usage
errors import no database library; a command that runs imports no FastAPI, no router.

Each command line runs in a fresh interpreter through the console script's entry point, and its
sys.modules is read when it exits (tests/support/cli_imports.py). The negative controls run the same
checks on a copy of `service/` with one deliberate import added, and see them fail.
"""

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from service.cli.main import app
from service.paths import PROJECT_ROOT
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.lifecycle.schema_builders.head_ddl import HEAD_CACHE_PREFIX
from tests.support.cli_imports import (
    DATABASE_LIBRARIES,
    WEB_LIBRARIES,
    WEB_MODULES,
    Run,
    command_closure,
    help_closures,
    offending,
)

FORBIDDEN_IN_COMMANDS = (*WEB_LIBRARIES, *WEB_MODULES)


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group of the CLI, hidden ones included, as argv prefixes."""
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path
        if hasattr(command, "commands"):  # a group (Typer's own click, not the click package)
            yield from command_paths(command, path)


PATHS = list(command_paths(typer.main.get_command(app)))
LIGHT_LINES = [
    ["--help"],
    [],  # no command: the help again
    ["no-such-command"],
    ["tenants", "create"],  # a missing argument
    ["tenants", "create", "--json"],
    ["migrate", "--concurrency", "0"],  # out of range
    ["limits", "set", "acme", "--per-second", "0"],  # refused in the command's body
    ["tenants", "drop", "acme"],  # refused without --yes, before any database work
    *([*path, "--help"] for path in PATHS),
    *([*path, "--no-such-option"] for path in PATHS),
]


def light_problems(runs: list[Run]) -> dict[str, list[str]]:
    return {
        " ".join(run.argv) or "(no arguments)": found
        for run in runs
        if (found := offending(run.modules, DATABASE_LIBRARIES + WEB_LIBRARIES))
    }


def test_every_help_and_usage_error_imports_no_database_library() -> None:
    assert {("tenants", "create"), ("migrate",), ("migrate", "status"), ("serve",)} <= set(PATHS)
    runs = help_closures(LIGHT_LINES)
    assert [run.argv for run in runs] == LIGHT_LINES
    assert runs[0].code == 0 and "tenants" in runs[0].output  # it really printed the help
    assert all(run.code == 2 for run in runs if run.argv[-1:] == ["--no-such-option"])
    assert light_problems(runs) == {}


COMMANDS_THAT_RUN = [
    "tenants create {new} --json",
    "tenants list --json",
    "tenants suspend {slug}",
    "keys list {slug}",
    "limits set {slug} --per-second 5",  # prints the limit in force (once, Starlette came too)
    "limits list",
    "migrate",
    "migrate status --json",
]


@pytest.mark.parametrize("line", COMMANDS_THAT_RUN)
def test_a_command_imports_no_fastapi_and_no_router(
    database: str, tenant: CreatedTenant, line: str
) -> None:
    new = "imports-" + secrets.token_hex(4)
    run = command_closure(line.format(new=new, slug=tenant.slug).split())
    assert run.code == 0, run.output
    assert run.gc_enabled  # off for the start-up only (service.cli.entry)
    assert "asyncpg" in run.modules  # it did its work, on the database (a no-op `migrate`
    # reaches it without SQLAlchemy: tenancy.migrate.noop)
    assert offending(run.modules, FORBIDDEN_IN_COMMANDS) == []


NOT_IN_A_WARM_CREATE = ("sqlalchemy", "alembic", "mako", *FORBIDDEN_IN_COMMANDS)
"""Issue 19: with its head script cached and no seed hook, `tenants create` goes over plain
asyncpg (tenancy.lifecycle.onboarding.create_tenant_on)."""


def warm_create(pythonpath: Path | None = None) -> Run:
    """`tenants create --json` once its head script is cached (the first create caches it)."""
    first = command_closure(
        ["tenants", "create", "imports-" + secrets.token_hex(4)], None, pythonpath
    )
    assert first.code == 0, first.output  # renders the script if it was not cached
    run = command_closure(
        ["tenants", "create", "imports-" + secrets.token_hex(4), "--json"], None, pythonpath
    )
    assert run.code == 0, run.output
    assert "asyncpg" in run.modules  # it did its work, on the database
    return run


def head_cache_files() -> list[Path]:
    return sorted((PROJECT_ROOT / "migrations" / "__pycache__").glob(f"{HEAD_CACHE_PREFIX}*"))


def test_creating_a_tenant_imports_no_sqlalchemy_nor_alembic_once_its_script_is_cached(
    database: str,
) -> None:
    run = warm_create()
    assert offending(run.modules, NOT_IN_A_WARM_CREATE) == []
    assert "service.models" not in run.modules  # the cached script stands for them


def test_a_cold_cache_builds_the_tables_from_the_models(database: str) -> None:
    for cached in head_cache_files():
        cached.unlink()
    run = command_closure(["tenants", "create", "imports-" + secrets.token_hex(4), "--json"])
    assert run.code == 0, run.output
    assert {"sqlalchemy", "service.models"} <= run.modules  # the tables came from the models
    assert offending(run.modules, FORBIDDEN_IN_COMMANDS) == []
    assert len(head_cache_files()) == 1  # and the next create reads them from the cache


def broken_copy(tmp_path: Path, module: str, line: str) -> Path:
    """The project's `service` package with `line` added at the end of one module."""
    shutil.copytree(
        PROJECT_ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    for shared in ("alembic.ini", "migrations"):  # service.paths finds them beside the copy
        (tmp_path / shared).symlink_to(PROJECT_ROOT / shared)
    target = tmp_path / Path(*module.split(".")).with_suffix(".py")
    target.write_text(target.read_text() + f"\n{line}\n")
    return tmp_path


@pytest.mark.negative_control
def test_negative_control_a_database_import_in_the_cli_start_up_is_caught(
    tmp_path: Path,
) -> None:
    copy = broken_copy(tmp_path, "service.cli.common", "import sqlalchemy.ext.asyncio  # noqa")
    runs = help_closures([["--help"], ["tenants", "create"]], pythonpath=copy)
    assert runs[0].code == 0 and "tenants" in runs[0].output
    problems = light_problems(runs)
    assert set(problems) == {"--help", "tenants create"}  # start-up imported it, for both
    assert "sqlalchemy" in problems["--help"]


@pytest.mark.negative_control
def test_negative_control_models_reached_through_a_router_are_caught(
    database: str, tmp_path: Path, new_slug: str
) -> None:
    # the shape issue 19 started from: the models module imports the router modules
    copy = broken_copy(tmp_path, "service.models", "import service.songs  # noqa")
    run = command_closure(["tenants", "create", new_slug, "--json"], pythonpath=copy)
    assert run.code == 0, run.output
    found = offending(run.modules, FORBIDDEN_IN_COMMANDS)
    assert "fastapi" in found and "service.songs" in found


@pytest.mark.negative_control
def test_negative_control_sqlalchemy_imported_by_onboarding_is_caught(
    database: str, tmp_path: Path
) -> None:
    copy = broken_copy(tmp_path, "service.onboarding", "import sqlalchemy.ext.asyncio  # noqa")
    run = warm_create(pythonpath=copy)
    assert "sqlalchemy" in offending(run.modules, NOT_IN_A_WARM_CREATE)
