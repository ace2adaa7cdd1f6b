"""`tenantry tenants ...`: onboarding, the lifecycle after it, export and import."""

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from service.cli.common import fail, run_with_engine
from service.onboarding import tenant_blueprint
from service.paths import ALEMBIC_INI
from tenancy.citus import refuse_import_on_citus
from tenancy.lifecycle.archive import archive_tenant, purge_tenant, restore_tenant
from tenancy.lifecycle.inventory import TenantSummary, tenant_inventory
from tenancy.lifecycle.status import resume_tenant, suspend_tenant
from tenancy.lifecycle.transfer import export_tenant, import_tenant
from tenancy.migrate.tracks import load_tracks
from tenancy.provisioning import CreatedTenant, create_tenant

app = typer.Typer(help="Create, list, suspend, archive, restore, export and import tenants.")

Slug = Annotated[str, typer.Argument(help="The tenant's slug")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
Yes = Annotated[bool, typer.Option("--yes", help="Confirm; nothing is dropped without it")]
Name = Annotated[str | None, typer.Option("--name", help="Display name")]

_UNITS = ("B", "kB", "MB", "GB", "TB")


@app.command("create")
def tenants_create(slug: Slug, name: Name = None, as_json: Json = False) -> None:
    """Create a tenant (schema, tables at head, first API key); prints the key once."""
    tracks = load_tracks(ALEMBIC_INI)
    created = run_with_engine(lambda e: create_tenant(e, tenant_blueprint(tracks), slug, name))
    _print_created(created, as_json)


@app.command("list")
def tenants_list(as_json: Json = False) -> None:
    """List tenants: slug, status, revision, created, size on disk."""

    async def inventory(engine):
        async with engine.connect() as conn:
            return await tenant_inventory(conn)

    rows = run_with_engine(inventory)
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows], default=datetime.isoformat))
        return
    table = [("SLUG", "STATUS", "REVISION", "CREATED", "SIZE")] + [_cells(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@app.command("suspend")
def tenants_suspend(slug: Slug) -> None:
    """Refuse the tenant's requests (403) on every API process until it is resumed."""
    run_with_engine(lambda engine: suspend_tenant(engine, slug))
    typer.echo(f"suspended tenant {slug}: its requests now get 403")


@app.command("resume")
def tenants_resume(slug: Slug) -> None:
    """Serve a suspended tenant again."""
    run_with_engine(lambda engine: resume_tenant(engine, slug))
    typer.echo(f"resumed tenant {slug}")


@app.command("drop")
def tenants_drop(slug: Slug, yes: Yes = False) -> None:
    """Archive a tenant: schema renamed out of reach, keys revoked; `restore` undoes it."""
    if not yes:
        fail(f"not dropping {slug!r} without --yes (it archives the schema and revokes its keys)")
    change = run_with_engine(lambda engine: archive_tenant(engine, slug))
    typer.echo(
        f"archived tenant {slug}: schema {change.schema} is now {change.archived_schema}, "
        f"{change.keys} key(s) revoked; `tenantry tenants restore {slug}` undoes this"
    )


@app.command("restore")
def tenants_restore(slug: Slug) -> None:
    """Undo a drop: the schema comes back (brought to head) with the keys the drop revoked."""
    tracks = load_tracks(ALEMBIC_INI)
    change = run_with_engine(lambda engine: restore_tenant(engine, tracks, slug))
    typer.echo(
        f"restored tenant {slug} from {change.archived_schema} to {change.schema}, "
        f"{change.keys} key(s) active again"
    )


@app.command("purge")
def tenants_purge(slug: Slug, yes: Yes = False) -> None:
    """Drop an archived tenant's schema and registry row for good (the slug becomes free)."""
    if not yes:
        fail(f"not purging {slug!r} without --yes (its archived data is deleted for good)")
    dropped = run_with_engine(lambda engine: purge_tenant(engine, slug))
    typer.echo(f"purged tenant {slug}: schema {dropped} dropped")


@app.command("export")
def tenants_export(
    slug: Slug, file: Annotated[Path, typer.Argument(help="Archive to write", dir_okay=False)]
) -> None:
    """Write the tenant's schema and data to FILE (pg_dump custom format)."""
    exported = run_with_engine(lambda engine: export_tenant(engine, slug, file))
    typer.echo(f"exported tenant {slug} ({exported.schema}) to {file}, {exported.size_bytes} bytes")


@app.command("import")
def tenants_import(
    file: Annotated[Path, typer.Argument(help="An export", exists=True, dir_okay=False)],
    as_slug: Annotated[str | None, typer.Option("--as", help="Slug of the new tenant")] = None,
    name: Name = None,
    as_json: Json = False,
) -> None:
    """Create a tenant from an export, under its old slug or --as a new one; prints a new key."""
    tracks = load_tracks(ALEMBIC_INI)

    async def main(engine: AsyncEngine) -> CreatedTenant:
        await refuse_import_on_citus(engine)
        return await import_tenant(engine, tracks, file, as_slug, name)

    created = run_with_engine(main)
    _print_created(created, as_json)


def _print_created(created: CreatedTenant, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(asdict(created)))
        return
    typer.echo(f"created tenant {created.slug} (schema {created.schema})")
    typer.echo(f"API key (shown once): {created.api_key}")


def _cells(row: TenantSummary) -> tuple[str, str, str, str, str]:
    return (
        row.slug,
        row.status,
        row.revision or "-",
        f"{row.created_at:%Y-%m-%d %H:%M}",
        human_size(row.size_bytes),
    )


def human_size(size: int) -> str:
    value, power = float(size), 0
    while value >= 1024 and power < len(_UNITS) - 1:
        value, power = value / 1024, power + 1
    return f"{size} B" if power == 0 else f"{value:.1f} {_UNITS[power]}"
