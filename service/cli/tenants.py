"""`tenantry tenants ...`: onboarding, the lifecycle after it, export and import."""

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.common import fail, print_table, run_with_connection, run_with_engine
from service.cli.interrupts import INTERRUPTS
from service.paths import ALEMBIC_INI

if TYPE_CHECKING:  # each command imports what it uses when it runs: --help stays light
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tenancy.lifecycle.inventory import TenantSummary
    from tenancy.lifecycle.onboarding import CreatedTenant

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Create, list, suspend, archive, restore, export and import tenants.",
)

Slug = Annotated[str, typer.Argument(metavar="SLUG", help="The tenant's slug")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
Yes = Annotated[bool, typer.Option("--yes", help="Confirm; nothing is dropped without it")]
Name = Annotated[
    str | None,
    typer.Option(
        "--display-name", "--name", metavar="NAME", help="Display name (display_name over HTTP)"
    ),
]

_UNITS = ("B", "kB", "MB", "GB", "TB")


@app.command("create")
def tenants_create(slug: Slug, name: Name = None, as_json: Json = False) -> None:
    """Create a tenant (schema, tables at head, first API key); prints the key once."""
    from service.onboarding import tenant_blueprint

    blueprint = tenant_blueprint(ALEMBIC_INI)  # no Alembic, no SQLAlchemy while it is cached
    if blueprint.seed is None:  # one plain asyncpg connection: no SQLAlchemy (issue 19)
        from tenancy.lifecycle.onboarding import create_tenant_on

        created = run_with_connection(
            lambda c: create_tenant_on(c, blueprint, slug, name, before_commit=INTERRUPTS.hold)
        )
    else:  # the deployment's seed hook is given a SQLAlchemy connection
        from tenancy.lifecycle.onboarding import create_tenant

        created = run_with_engine(lambda e: create_tenant(e, blueprint, slug, name))
    _print_created(created, as_json)


@app.command("list")
def tenants_list(as_json: Json = False) -> None:
    """List tenants by slug: slug, status, revision, created, size on disk, display name."""
    from tenancy.lifecycle.inventory import tenant_inventory

    async def inventory(engine):
        async with engine.connect() as conn:
            return await tenant_inventory(conn)

    rows = run_with_engine(inventory)
    if as_json:
        typer.echo(json.dumps([_record(row) for row in rows], default=datetime.isoformat))
        return
    if not rows:
        typer.echo("no tenants yet: `tenantry tenants create SLUG` makes one")
        return
    print_table(
        ("SLUG", "STATUS", "REVISION", "CREATED", "SIZE", "NAME"), [_cells(r) for r in rows]
    )


@app.command("suspend")
def tenants_suspend(slug: Slug) -> None:
    """Refuse the tenant's requests (403) on every API process until it is resumed."""
    from tenancy.lifecycle.status import suspend_tenant

    run_with_engine(lambda engine: suspend_tenant(engine, slug))
    typer.echo(f"suspended tenant {slug}: its requests now get 403")


@app.command("resume")
def tenants_resume(slug: Slug) -> None:
    """Serve a suspended tenant again."""
    from tenancy.lifecycle.status import resume_tenant

    run_with_engine(lambda engine: resume_tenant(engine, slug))
    typer.echo(f"resumed tenant {slug}")


@app.command("drop")
def tenants_drop(slug: Slug, yes: Yes = False) -> None:
    """Archive a tenant: schema renamed out of reach, keys revoked; `restore` undoes it."""
    if not yes:
        fail(f"not dropping {slug!r} without --yes (it archives the schema and revokes its keys)")
    from tenancy.lifecycle.archive import archive_tenant

    change = run_with_engine(lambda engine: archive_tenant(engine, slug))
    if change.schema_missing:
        typer.echo(
            f"archived tenant {slug}: its schema {change.schema} was already gone, so only its "
            f"registry row was archived and {change.keys} key(s) revoked; "
            f"`tenantry tenants purge {slug} --yes` deletes the row"
        )
        return
    typer.echo(
        f"archived tenant {slug}: schema {change.schema} is now {change.archived_schema}, "
        f"{change.keys} key(s) revoked; `tenantry tenants restore {slug}` undoes this"
    )


@app.command("restore")
def tenants_restore(slug: Slug) -> None:
    """Undo a drop: the schema comes back (brought to head) with the keys the drop revoked."""
    from tenancy.lifecycle.archive import restore_tenant
    from tenancy.migrate.tracks import load_tracks

    tracks = load_tracks(ALEMBIC_INI)
    change = run_with_engine(lambda engine: restore_tenant(engine, tracks, slug))
    typer.echo(
        f"restored tenant {slug} from {change.archived_schema} to {change.schema}, "
        f"{change.keys} key(s) active again"
    )


@app.command("purge")
def tenants_purge(slug: Slug, yes: Yes = False) -> None:
    """Drop an archived tenant's schema and registry row for good (the slug becomes free); a
    tenant whose schema is already gone can be purged without archiving it first."""
    if not yes:
        fail(f"not purging {slug!r} without --yes (its archived data is deleted for good)")
    from tenancy.lifecycle.archive import purge_tenant

    purged = run_with_engine(lambda engine: purge_tenant(engine, slug))
    if purged.schema_missing:
        typer.echo(f"purged tenant {slug}: {purged.schema} was already gone; registry row deleted")
        return
    typer.echo(f"purged tenant {slug}: schema {purged.schema} dropped")


@app.command("export")
def tenants_export(
    slug: Slug,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Archive to write", dir_okay=False)],
    force: Annotated[
        bool, typer.Option("--force", help="Replace FILE if it exists (a link is not followed)")
    ] = False,
) -> None:
    """Write the tenant's schema and data to a new FILE of mode 0600 (pg_dump custom format)."""
    from tenancy.lifecycle.transfer import export_tenant

    exported = run_with_engine(lambda engine: export_tenant(engine, slug, file, force=force))
    typer.echo(f"exported tenant {slug} ({exported.schema}) to {file}, {exported.size_bytes} bytes")


@app.command("import")
def tenants_import(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="An export (`tenants export`)", exists=True, dir_okay=False
        ),
    ],
    as_slug: Annotated[
        str | None,
        typer.Option("--as", metavar="SLUG", help="Slug of the new tenant (default: the old one)"),
    ] = None,
    name: Name = None,
    as_json: Json = False,
) -> None:
    """Create a tenant from an export, under its old slug or --as a new one; prints a new key.

    Only the rows of the archive's tables are used: anything else in it refuses the import, as
    does data that expands to more than TENANTRY_IMPORT_MAX_BYTES."""
    from tenancy.lifecycle.transfer import import_tenant
    from tenancy.migrate.tracks import load_tracks
    from tenancy.settings import get_settings

    tracks = load_tracks(ALEMBIC_INI)
    max_bytes = get_settings().import_max_bytes

    async def main(engine: "AsyncEngine") -> "CreatedTenant":
        return await import_tenant(engine, tracks, file, as_slug, name, max_bytes=max_bytes)

    created = run_with_engine(main)
    _print_created(created, as_json)


def _print_created(created: "CreatedTenant", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_record(created)))
        return
    typer.echo(f"created tenant {created.slug} (schema {created.schema})")
    typer.echo(f"API key (shown once): {created.api_key}")


def _record(row: "CreatedTenant | TenantSummary") -> dict[str, object]:
    """As the admin API words it: `schema_name`, `display_name`."""
    record = asdict(row)
    record["schema_name"] = record.pop("schema")
    return record


def _cells(row: "TenantSummary") -> tuple[str, str, str, str, str, str]:
    return (
        row.slug,
        row.status,
        row.revision or "-",
        f"{row.created_at:%Y-%m-%d %H:%M}",
        human_size(row.size_bytes),
        row.display_name,
    )


def human_size(size: int) -> str:
    value, power = float(size), 0
    while value >= 1024 and power < len(_UNITS) - 1:
        value, power = value / 1024, power + 1
    return f"{size} B" if power == 0 else f"{value:.1f} {_UNITS[power]}"
