"""`tenantry roles setup`: the runtime role the API connects as (one-time, re-runnable)."""

import typer

from service.cli.common import fail, owner_engine, run
from tenancy.database import runtime_login
from tenancy.roles import RUNTIME_GROUP, RoleSetup, RoleSetupError, setup_roles
from tenancy.settings import get_settings

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Set up the database roles.",
    no_args_is_help=True,
)


@app.command("setup")
def roles_setup() -> None:
    """As the owner (TENANTRY_OWNER_DATABASE_URL), after `tenantry migrate`: create the API's
    role named in TENANTRY_DATABASE_URL (if absent) and grant it rows in tenant schemas only."""
    login_role, password = runtime_login(get_settings())

    async def main() -> RoleSetup:
        async with owner_engine() as engine, engine.begin() as conn:
            return await setup_roles(conn, login_role, password)

    try:
        done = run(main)
    except RoleSetupError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    state = "created" if done.created else "existing"
    typer.echo(
        f"runtime role {done.login_role} ({state}) is a member of {RUNTIME_GROUP}; "
        f"granted the registry and {done.tenant_schemas} tenant schema(s)"
    )
