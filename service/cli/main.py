"""The `tenantry` command: serve, onboard tenants, migrate every schema.

Start-up is only Typer and the command modules, which import nothing heavy at module level:
each command imports SQLAlchemy, Alembic, the settings (and `serve` FastAPI) inside its body when
it runs, so `tenantry --help` and usage errors stay light; tests/cli/test_cli_imports.py holds it.
"""

from typing import Annotated

import typer

from service.cli import db, keys, limits, migrate, plain_help, roles, tenants
from service.cli.common import begin_work

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Tenantry: schema-per-tenant SaaS backend.",
    no_args_is_help=True,
)
app.add_typer(tenants.app, name="tenants")
app.add_typer(migrate.app, name="migrate")
app.add_typer(keys.app, name="keys")
app.add_typer(limits.app, name="limits")
app.add_typer(roles.app, name="roles")
app.add_typer(db.app, name="db")
plain_help.apply()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tenantry {version('tenantry')}")
        raise typer.Exit()


@app.callback()
def _main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """Tenantry: schema-per-tenant SaaS backend. Without TENANTRY_DATABASE_URL every command uses
    the project's embedded PostgreSQL (in .tenantry/ of the checkout, from any directory)."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="What `make run` does first: migrate, give the `demo` tenant one fresh key "
            "(earlier ones revoked) and print it with a curl",
        ),
    ] = False,
) -> None:
    """Serve the API with uvicorn; on SIGTERM, in-flight requests finish before it exits.

    Request heads are bounded in bytes, header lines, time and open connections
    (TENANTRY_MAX_HEADER_BYTES, TENANTRY_MAX_HEADERS, TENANTRY_HEADER_TIMEOUT,
    TENANTRY_MAX_CONNECTIONS; see tenancy/edge.py)."""
    import uvicorn

    from service.cli.demo import check_port_free, prepare_demo
    from tenancy.edge import uvicorn_options
    from tenancy.embedded import exit_normally_on_sigterm
    from tenancy.observability.log_format import configure_logging
    from tenancy.settings import get_settings

    check_port_free(host, port)  # before any key is printed
    if demo:
        prepare_demo(host, port)
    begin_work()  # a long-lived process: the collector on before the app is even imported
    settings = get_settings()
    configure_logging(settings)
    exit_normally_on_sigterm()
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,  # configure_logging's handler formats uvicorn's records too
        log_level=settings.log_level.lower(),
        access_log=False,  # RequestObserver logs each request, with its route and tenant
        timeout_graceful_shutdown=settings.shutdown_timeout,
        **uvicorn_options(settings),
    )
