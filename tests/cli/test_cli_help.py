"""`tenantry --help` and every command's help read as plain text: real metavars (no `{slug}`,
`<bool>`, `<list[str]>`), help on every argument and option, a --version, and `db shell` opens
psql on the database."""

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer

from service.cli.main import app
from service.paths import PROJECT_ROOT
from tests.support.common import TENANTRY

TYPE_NOISE = re.compile(r"<[a-z_\[\]| ]+>|\{[a-z_]+\}|\blist\[")


def commands() -> Iterator[tuple[str, Any]]:
    root = typer.main.get_command(app)

    def walk(path: str, command: Any) -> Iterator[tuple[str, Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(f"{path} {name}", sub)

    yield from walk("tenantry", root)


def tenantry(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TENANTRY, *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def help_text(path: str, command: Any) -> str:
    ctx = command.make_context(path, ["--help"], resilient_parsing=True)
    return command.get_help(ctx)


@pytest.mark.parametrize(("path", "command"), list(commands()), ids=lambda v: str(v))
def test_help_shows_real_metavars(path: str, command: Any) -> None:
    text = help_text(path, command)
    assert text.startswith(f"Usage: {path} "), text
    assert not TYPE_NOISE.search(text), text


def test_the_real_command_prints_the_same_plain_help() -> None:
    for path in ("tenantry", "tenantry tenants create"):
        result = tenantry(*path.split()[1:], "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Usage: {path} "), result.stdout
        assert not TYPE_NOISE.search(result.stdout), result.stdout
        assert "╭" not in result.stdout  # no boxes
    assert "Usage: tenantry tenants create [OPTIONS] SLUG\n" in result.stdout


def test_every_argument_and_option_has_help() -> None:
    missing = [
        f"{path} {param.name}"
        for path, command in commands()
        for param in command.params
        if not getattr(param, "help", None) and not getattr(param, "hidden", False)
    ]
    assert missing == []


def test_no_hidden_commands() -> None:
    hidden = [path for path, command in commands() if getattr(command, "hidden", False)]
    assert hidden == []


def test_version() -> None:
    result = tenantry("--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"tenantry {version('tenantry')}\n",
        "",
    )


def test_db_shell_runs_psql_on_the_database_from_anywhere(database: str) -> None:
    with tempfile.TemporaryDirectory() as elsewhere:
        result = tenantry(
            "db", "shell", "--", "-Atc", "SELECT current_database()", cwd=Path(elsewhere)
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == database.rsplit("/", 1)[1].split("?")[0]
