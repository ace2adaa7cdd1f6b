"""Every failure a user can cause, from `tenantry` and `alembic` run as real processes: exactly one
line on stderr, a non-zero exit, never a traceback. And where the embedded database lives.
"""

import os
import secrets
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.naming import quote_schema, tenant_schema
from tenancy.one_line import first_line, first_line_with_type
from tests.support.common import TENANTRY

ALEMBIC = str(Path(sys.executable).parent / "alembic")


def run(
    argv: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def assert_one_line_failure(result: subprocess.CompletedProcess, *expected: str) -> None:
    shown = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode != 0, shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1, shown
    assert "Traceback" not in (result.stdout or "") + result.stderr, shown
    for text in expected:
        assert text in lines[0], shown


USAGE_ERRORS = [
    (["no-such-command"], "No such command 'no-such-command'"),
    (["tenants", "bogus"], "No such command 'bogus'"),
    (["tenants", "create"], "Missing argument"),
    (["tenants", "list", "--no-such-option"], "No such option"),
    (["limits", "set", "acme", "--burst", "0"], "--burst"),
    (["serve", "--port", "abc"], "--port"),
    (["tenants", "import", "/no/such/export.dump"], "does not exist"),
    (["migrate", "--concurrency", "0"], "--concurrency"),
]


@pytest.mark.parametrize(("argv", "expected"), USAGE_ERRORS, ids=lambda v: str(v))
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], expected: str) -> None:
    result = run([TENANTRY, *argv], os.environ.copy())
    assert_one_line_failure(result, "error: ", expected, "--help")
    assert result.returncode == 2


def test_a_group_without_a_command_prints_its_help_on_stdout() -> None:
    result = run([TENANTRY, "keys"], os.environ.copy())
    assert result.returncode == 2
    assert result.stderr == ""
    assert "Usage: tenantry keys" in result.stdout


REGISTRY_COMMANDS = [
    ["tenants", "list"],
    ["tenants", "suspend", "acme"],
    ["tenants", "drop", "acme", "--yes"],
    ["keys", "list", "acme"],
    ["keys", "create", "acme"],
    ["limits", "list"],
    ["limits", "set", "acme", "--per-second", "3"],
]


async def test_a_database_without_the_registry_is_one_line_per_command(
    fresh: tuple[dict[str, str], AsyncEngine],
) -> None:
    env, _ = fresh
    for argv in REGISTRY_COMMANDS:
        result = run([TENANTRY, *argv], env)
        assert_one_line_failure(result, "no Tenantry registry", "tenantry migrate")
        assert result.returncode == 1


async def test_unknown_tenants_and_missing_schemas_are_one_line(
    fresh: tuple[dict[str, str], AsyncEngine],
) -> None:
    env, engine = fresh
    assert run([ALEMBIC, "-c", str(ALEMBIC_INI), "upgrade", "head"], env).returncode == 0
    for argv in (["tenants", "suspend", "ghost"], ["keys", "list", "ghost"]):
        assert_one_line_failure(run([TENANTRY, *argv], env), "ghost")

    empty = [
        run([TENANTRY, *argv], env).stdout for argv in (["tenants", "list"], ["limits", "list"])
    ]
    assert empty[0].startswith("no tenants yet: ")
    assert empty[1].startswith("no tenant has a limit of its own; every tenant: ")

    ghost = run([ALEMBIC, "-c", str(ALEMBIC_INI), "-x", "tenant=ghost", "upgrade", "head"], env)
    assert_one_line_failure(ghost, "unknown tenant(s): ghost")

    assert run([TENANTRY, "tenants", "create", "acme"], env).returncode == 0
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"DROP SCHEMA {quote_schema(tenant_schema('acme'))} CASCADE")
    for argv in (["upgrade", "head"], ["current"], ["-x", "tenant=acme", "downgrade", "base"]):
        result = run([ALEMBIC, "-c", str(ALEMBIC_INI), *argv], env)
        assert_one_line_failure(result, "tenant acme", tenant_schema("acme"), "does not exist")


def test_a_closed_pipe_is_one_line(database: str) -> None:
    """`tenantry migrate --sql | head -0`: the reader is gone before the first line is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = run_into(write_end, "migrate", "--sql")
    finally:
        os.close(write_end)
    assert_one_line_failure(result, "broken pipe")
    assert result.returncode == 1


def test_the_embedded_data_dir_is_the_projects_wherever_the_command_runs() -> None:
    """Relative to the project folder, never to the current directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    code = "from tenancy.settings import TenancySettings as S; print(S().data_dir)"
    with tempfile.TemporaryDirectory() as elsewhere:
        default = run([sys.executable, "-c", code], env, cwd=Path(elsewhere))
        relative = run(
            [sys.executable, "-c", code], {**env, "TENANTRY_DATA_DIR": "pg"}, Path(elsewhere)
        )
        assert not (Path(elsewhere) / ".tenantry").exists()
    assert default.stdout.strip() == str(PROJECT_ROOT / ".tenantry"), default.stderr
    assert relative.stdout.strip() == str(PROJECT_ROOT / "pg"), relative.stderr


def test_a_command_outside_the_project_uses_the_projects_cluster() -> None:
    """No database URL, run from an empty folder: no stray cluster appears there, and the
    command talks to the project's embedded server (its data dir is the only one announced)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    with tempfile.TemporaryDirectory() as elsewhere:
        result = run([TENANTRY, "migrate", "status"], env, cwd=Path(elsewhere))
        assert list(Path(elsewhere).iterdir()) == []
    assert "Traceback" not in result.stderr, result.stderr
    for line in result.stderr.splitlines():  # at most the one-time announcement, or one error
        assert elsewhere not in line
    assert len(result.stderr.splitlines()) <= 2, result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("command", [["tenants", "list"], ["serve"]], ids=" ".join)
def test_invalid_settings_are_one_line_naming_each_variable(command: list[str]) -> None:
    env = {**os.environ, "TENANTRY_POOL_SIZE": "abc", "TENANTRY_MAX_HEADERS": "1"}
    argv = [*command, "--port", str(_free_port())] if command == ["serve"] else command
    result = run([TENANTRY, *argv], env)
    assert_one_line_failure(
        result,
        "error: ",
        "TENANTRY_POOL_SIZE: Input should be a valid integer, unable to parse string as an integer",
        "TENANTRY_MAX_HEADERS: Input should be greater than or equal to 8; ",
    )
    assert "validation error" not in result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize(
    "variable",
    [
        "TENANTRY_DATABASE_URL",
        "TENANTRY_OWNER_DATABASE_URL",
        "TENANTRY_BOOTSTRAP_DATABASE_URL",
        "TENANTRY_LISTEN_DATABASE_URL",
    ],
)
@pytest.mark.parametrize(
    "scheme", ["mysql", "postgresql+psycopg", "sqlite"], ids=lambda scheme: scheme
)
def test_a_url_for_another_driver_is_refused_in_one_line_naming_the_setting(
    variable: str, scheme: str
) -> None:
    env = {**os.environ, "TENANTRY_DATABASE_URL": "postgresql+asyncpg://u@h/db"}
    env[variable] = f"{scheme}://user:secret@host/db"
    result = run([TENANTRY, "tenants", "list"], env)
    assert_one_line_failure(result, f"error: {variable}: ", "postgresql+asyncpg://", f"{scheme}://")
    assert "secret" not in result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRESQL", "postgresql+asyncpg"])
def test_a_plain_postgresql_url_means_asyncpg(scheme: str) -> None:
    from tenancy.settings import TenancySettings

    urls = {
        "database_url": f"{scheme}://api@db:5432/tenantry",
        "owner_database_url": f"{scheme}://owner:pw@db/tenantry?ssl=require",
        "bootstrap_database_url": f"{scheme}://postgres@db/tenantry",
        "listen_database_url": f"{scheme}://owner@db/tenantry",
    }
    settings = TenancySettings(**urls)
    for field, url in urls.items():
        assert getattr(settings, field) == "postgresql+asyncpg://" + url.partition("://")[2]


async def test_a_plain_postgresql_url_reaches_the_database(database: str) -> None:
    plain = "postgresql://" + database.partition("://")[2]
    result = run([TENANTRY, "tenants", "list"], {**os.environ, "TENANTRY_DATABASE_URL": plain})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("inside", ["", "inner/deeper"], ids=["the-cluster", "below-it"])
def test_a_data_dir_inside_a_postgresql_cluster_is_refused_in_one_line(inside: str) -> None:
    """No embedded cluster is ever created nested inside another (a folder with PG_VERSION)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    with tempfile.TemporaryDirectory() as cluster_dir:
        cluster = Path(cluster_dir).resolve()
        (cluster / "PG_VERSION").write_text("18\n")
        data_dir = cluster / inside
        result = run([TENANTRY, "tenants", "list"], {**env, "TENANTRY_DATA_DIR": str(data_dir)})
        assert sorted(p.name for p in cluster.iterdir()) == ["PG_VERSION"]
    assert_one_line_failure(
        result,
        f"error: TENANTRY_DATA_DIR {data_dir} is inside the PostgreSQL data directory {cluster} ",
        "folder of its own",
    )
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("exc", "plain", "with_type"),
    [
        (ValueError("bad slug\n  detail"), "bad slug", "ValueError: bad slug"),
        (KeyError(), "KeyError", "KeyError"),
        (RuntimeError("  \n"), "RuntimeError", "RuntimeError"),
        (OSError("  padded  \nmore"), "padded", "OSError: padded"),
    ],
)
def test_one_first_line_for_the_cli_the_admin_api_and_migrate_results(
    exc: BaseException, plain: str, with_type: str
) -> None:
    """The one definition the CLI, the admin API (tenancy.one_line.first_line) and `migrate`'s
    per-tenant results and --sql notes (first_line_with_type) all use."""
    assert (first_line(exc), first_line_with_type(exc)) == (plain, with_type)


@pytest.mark.parametrize(
    "argv",
    [["tenants", "suspend", b"a\xffb"], ["tenants", "create", "acme", "--display-name", b"\xff"]],
    ids=["slug", "display name"],
)
def test_an_argument_that_is_not_utf8_is_a_usage_error(argv: list) -> None:
    """Python keeps undecodable bytes as surrogates, which no driver can send: refused up front,
    before any database is reached (the database's own error used to surface)."""
    result = subprocess.run(
        [TENANTRY, *argv], cwd=PROJECT_ROOT, capture_output=True, timeout=120, check=False
    )
    text = subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(),
        result.stderr.decode("utf-8", "replace"),
    )
    assert_one_line_failure(text, "error: ", "not valid UTF-8")
    assert result.returncode == 2


def run_into(stdout: int, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TENANTRY, *argv],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def test_output_lost_after_a_commit_says_what_was_committed(database: str) -> None:
    """`tenantry tenants create SLUG > /dev/full`, and into a closed pipe (second independent
    pass, F5): the tenant is created but its key cannot be written; one line says the change is
    committed, exit 1, so a retry's "already exists" is no surprise. Control: `tenants list`
    into the same full disk (nothing committed) is one line that does not say so."""
    slugs = [f"lost-{secrets.token_hex(3)}", f"lost-{secrets.token_hex(3)}"]
    with open("/dev/full", "w") as full:
        into_full = run_into(full.fileno(), "tenants", "create", slugs[0], "--json")
        listed = run_into(full.fileno(), "tenants", "list")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        into_pipe = run_into(write_end, "tenants", "create", slugs[1], "--json")
    finally:
        os.close(write_end)
    assert_one_line_failure(into_full, "No space left on device", "is committed")
    assert_one_line_failure(into_pipe, "broken pipe", "is committed")
    assert into_full.returncode == into_pipe.returncode == 1
    assert_one_line_failure(listed, "No space left on device")
    assert "committed" not in listed.stderr
    present = subprocess.run(
        [TENANTRY, "tenants", "list"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert all(slug in present.stdout for slug in slugs)
