"""The `tenantry` command: serve, onboard tenants, migrate every schema.

Start-up is only Typer and the command modules, which import nothing heavy at module level:
each command imports SQLAlchemy, Alembic, the settings (and `serve` FastAPI) inside its body when
it runs, so `tenantry --help` and usage errors stay light; tests/test_cli_imports.py holds it.
"""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli import keys, limits, migrate, roles, tenants
from service.cli.common import begin_work, owner_engine, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(help="Tenantry: schema-per-tenant SaaS backend.", no_args_is_help=True)
app.add_typer(tenants.app, name="tenants")
app.add_typer(migrate.app, name="migrate")
app.add_typer(keys.app, name="keys")
app.add_typer(limits.app, name="limits")
app.add_typer(roles.app, name="roles")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the API with uvicorn; on SIGTERM, in-flight requests finish before it exits.

    Request heads are bounded in bytes, header lines, time and open connections
    (TENANTRY_MAX_HEADER_BYTES, TENANTRY_MAX_HEADERS, TENANTRY_HEADER_TIMEOUT,
    TENANTRY_MAX_CONNECTIONS; see tenancy/edge.py)."""
    import uvicorn

    from tenancy.edge import uvicorn_options
    from tenancy.embedded import exit_normally_on_sigterm
    from tenancy.observability.log_format import configure_logging
    from tenancy.settings import get_settings

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


@app.command(hidden=True)
def demo(slug: str = "demo", port: int = 8000) -> None:
    """Used by `make run`: migrate, make sure the demo tenant exists, print a key and a curl."""
    from tenancy.settings import get_settings

    migrate.migrate_all()

    async def main() -> str:
        async with owner_engine() as engine:
            return await _demo_key(engine, slug)

    key = run(main)
    header = get_settings().tenant_header
    typer.echo(f"\nTenant '{slug}' is ready. Its API key: {key}\nTry:\n")
    typer.echo(
        f"  curl -s -X POST localhost:{port}/todos -H '{header}: {slug}' "
        f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        """-d '{"content": "hello"}'\n"""
    )
    sys.stdout.flush()


async def _demo_key(engine: "AsyncEngine", slug: str) -> str:
    from service.onboarding import tenant_blueprint
    from service.paths import ALEMBIC_INI
    from tenancy.migrate.tracks import load_tracks
    from tenancy.provisioning import TenantExists, create_key, create_tenant

    try:
        blueprint = tenant_blueprint(load_tracks(ALEMBIC_INI))
        return (await create_tenant(engine, blueprint, slug, "Demo")).api_key
    except TenantExists:
        return (await create_key(engine, slug)).token
