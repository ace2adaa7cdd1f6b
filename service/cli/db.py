"""`tenantry db ...`: the database itself, for people (a psql session)."""

import os
import subprocess
import sys
from typing import Annotated

import typer

from service.cli.common import run

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="The database: open psql on it.",
    no_args_is_help=True,
)


@app.command("shell")
def db_shell(
    psql_args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Passed on to psql, after `--` (e.g. `-- -c 'SELECT 1'`)", metavar="PSQL_ARG"
        ),
    ] = None,
) -> None:
    """psql on the owner's database: the embedded server (started if needed, psql from its own
    wheel) or TENANTRY_OWNER_DATABASE_URL / TENANTRY_DATABASE_URL (a psql of the server's
    major version, as export/import pick pg_dump)."""
    from tenancy.lifecycle.pgtools import pg_tool, server_major

    async def find_psql() -> tuple[str, dict[str, str]]:
        from service.cli.common import owner_engine

        async with owner_engine() as engine, engine.connect() as conn:
            tool = pg_tool("psql", await server_major(conn), engine.url)
        return str(tool.path), tool.env

    path, env = run(find_psql)
    sys.stdout.flush()
    # psql runs as a child, not in place of this process (no exec): the embedded server stops
    # when the last process attached to it exits, so this one stays until psql is done.
    code = subprocess.call([path, *(psql_args or [])], env={**os.environ, **env})
    raise typer.Exit(code)
