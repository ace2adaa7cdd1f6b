"""`tenantry roles setup`: the runtime role the API connects as (one-time, re-runnable)."""

from typing import TYPE_CHECKING

import typer

from service.cli.common import fail, owner_engine, run

if TYPE_CHECKING:  # each command imports what it uses when it runs: --help stays light
    from tenancy.settings import TenancySettings

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Set up the database roles.",
    no_args_is_help=True,
)


@app.command("setup")
def roles_setup() -> None:
    """Create the API's role named in TENANTRY_DATABASE_URL (if absent) and grant it rows in
    tenant schemas only. With TENANTRY_BOOTSTRAP_DATABASE_URL (a superuser; the embedded
    server's own without any URL) it first creates the owner role of
    TENANTRY_OWNER_DATABASE_URL, not a superuser, and hands it the database: run it before
    `tenantry migrate` and again after. Without, it runs as the owner, after the migrations."""
    from tenancy.database import bootstrap_url, is_embedded, runtime_login, superuser_engine
    from tenancy.roles import (
        RoleSetup,
        RoleSetupError,
        grant_membership_on_workers,
        setup_owner,
        setup_roles,
    )
    from tenancy.settings import get_settings

    settings = get_settings()
    login_role, password = runtime_login(settings)
    bootstrapped = bool(settings.bootstrap_database_url) or is_embedded(settings)

    async def as_owner() -> RoleSetup:
        async with owner_engine() as engine:
            async with engine.begin() as conn:
                done = await setup_roles(conn, login_role, password)
            async with engine.begin() as conn:
                await grant_membership_on_workers(conn, done)
            return done

    async def bootstrap() -> RoleSetup:
        owner, owner_password = owner_login(settings)
        engine = superuser_engine(await bootstrap_url(settings))
        try:
            async with engine.begin() as conn:
                await setup_owner(conn, owner, owner_password)
                done = await setup_roles(
                    conn, login_role, password, require_registry=False, owner=owner
                )
            async with engine.begin() as conn:
                await grant_membership_on_workers(conn, done)
            return done
        finally:
            await engine.dispose()

    main = bootstrap if bootstrapped else as_owner

    try:
        done = run(main)
    except RoleSetupError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    if bootstrapped:
        typer.echo(f"owner role {owner_login(settings)[0]} owns the database (not a superuser)")
    state = "created" if done.created else "existing"
    granted = (
        f"granted the registry and {done.tenant_schemas} tenant schema(s)"
        if done.registry_granted
        else "no registry yet: run `tenantry migrate`, then this again"
    )
    typer.echo(f"runtime role {done.login_role} ({state}) is a member of {done.group}; {granted}")


def owner_login(settings: "TenancySettings") -> tuple[str, str | None]:
    """The owner role's name and password, as TENANTRY_OWNER_DATABASE_URL logs in."""
    from sqlalchemy import make_url

    from tenancy.database import EMBEDDED_OWNER_ROLE, is_embedded

    if is_embedded(settings):
        return EMBEDDED_OWNER_ROLE, None
    if not settings.owner_database_url:
        fail("TENANTRY_BOOTSTRAP_DATABASE_URL needs TENANTRY_OWNER_DATABASE_URL (the owner role)")
    url = make_url(settings.owner_database_url or "")
    return url.username or "", url.password
