"""`tenantry tenants ...`: onboarding and listing."""

import json
from dataclasses import asdict
from typing import Annotated

import typer

from service.cli.common import owner_engine, run
from service.paths import ALEMBIC_INI
from tenancy.migrate.tracks import load_tracks
from tenancy.provisioning import create_tenant
from tenancy.registry import list_tenants

app = typer.Typer(help="Create and list tenants.", no_args_is_help=True)


@app.command("create")
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


@app.command("list")
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
