"""The `tenantry` command: serve, onboard tenants, migrate every schema."""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, TypeVar

import typer
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import ALEMBIC_INI
from tenancy.database import create_engine, database_url
from tenancy.embedded import exit_normally_on_sigterm
from tenancy.migrate.tracks import load_tracks
from tenancy.naming import InvalidSlug
from tenancy.provisioning import TenantExists, UnknownTenant, create_key, create_tenant
from tenancy.registry import list_tenants
from tenancy.settings import get_settings

app = typer.Typer(help="Tenantry: schema-per-tenant SaaS backend.", no_args_is_help=True)
tenants_app = typer.Typer(help="Create and list tenants.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")

T = TypeVar("T")
EXPECTED_ERRORS = (InvalidSlug, TenantExists, UnknownTenant, OSError)


def fail(message: str) -> None:
    """One line on stderr, exit status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def run(main: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(main())
    except EXPECTED_ERRORS as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise  # unreachable: fail() exits


@asynccontextmanager
async def owner_engine():
    engine = create_engine(await database_url(get_settings()), get_settings())
    try:
        yield engine
    finally:
        await engine.dispose()


def migrate_all() -> None:
    """Shared schema first, then every tenant, each in its own transaction (plain Alembic)."""
    asyncio.run(database_url(get_settings()))  # starts the embedded server if that is the default
    command.upgrade(Config(ALEMBIC_INI), "head")


@app.command()
def migrate() -> None:
    """Bring the shared schema and every tenant schema to head."""
    try:
        migrate_all()
    except EXPECTED_ERRORS as exc:
        fail(str(exc).splitlines()[0])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    exit_normally_on_sigterm()
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port, log_level="info")


@tenants_app.command("create")
def tenants_create(
    slug: str,
    name: Annotated[str | None, typer.Option("--name", help="Display name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Create a tenant (schema, tables at head, first API key); prints the key once."""

    async def main():
        async with owner_engine() as engine:
            return await create_tenant(engine, load_tracks(ALEMBIC_INI), slug, name)

    created = run(main)
    if as_json:
        typer.echo(json.dumps(asdict(created)))
    else:
        typer.echo(f"created tenant {created.slug} (schema {created.schema})")
        typer.echo(f"API key (shown once): {created.api_key}")


@tenants_app.command("list")
def tenants_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
) -> None:
    """List tenants: slug, schema, status, created."""

    async def main():
        async with owner_engine() as engine, engine.connect() as conn:
            return await list_tenants(conn)

    rows = run(main)
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], default=str))
        return
    for row in rows:
        typer.echo(f"{row.slug}\t{row.schema}\t{row.status}\t{row.created_at:%Y-%m-%d %H:%M}")


@app.command(hidden=True)
def demo(slug: str = "demo", port: int = 8000) -> None:
    """Used by `make run`: migrate, make sure the demo tenant exists, print a key and a curl."""
    migrate_all()

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


async def _demo_key(engine: AsyncEngine, slug: str) -> str:
    try:
        return (await create_tenant(engine, load_tracks(ALEMBIC_INI), slug, "Demo")).api_key
    except TenantExists:
        return (await create_key(engine, slug)).token
