"""Every `tenantry` command line in docs/operations.md parses against the real CLI: the command
exists and takes every option the runbook passes it."""

import re
import shlex

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from service.paths import PROJECT_ROOT

RUNBOOK = PROJECT_ROOT / "docs" / "operations.md"


def runbook_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("tenantry ")]


def test_the_runbook_covers_every_task() -> None:
    commands = " ".join(runbook_commands())
    for task in ("migrate", "tenants create", "suspend", "drop", "purge", "restore", "export"):
        assert f" {task}" in commands
    for task in ("import", "keys create", "keys revoke", "limits set", "--to -1"):
        assert f" {task}" in commands


@pytest.mark.parametrize("line", runbook_commands())
def test_runbook_command_parses(line: str) -> None:
    result = CliRunner().invoke(app, [*shlex.split(line)[1:], "--help"])
    assert result.exit_code == 0, result.output
