"""`tenantry limits ...`: per-tenant rate limits in the registry."""

import json
from dataclasses import asdict
from typing import Annotated

import typer

from service.cli.common import fail, owner_engine, print_table, run

Slug = Annotated[str, typer.Argument(help="The tenant's slug", metavar="SLUG")]

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Per-tenant rate limits (token bucket per API process).",
    no_args_is_help=True,
)


def _apply(slug: str, per_second: float | None, burst: int | None) -> None:
    from tenancy.rate_limit_records import set_rate_limit

    async def main() -> None:
        async with owner_engine() as engine:
            await set_rate_limit(engine, slug, per_second, burst)

    run(main)


@app.command("set")
def limits_set(
    slug: Slug,
    per_second: Annotated[
        float | None,
        typer.Option("--per-second", metavar="RATE", help="Requests per second (> 0)"),
    ] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", min=1, metavar="N", help="Requests at once (>= 1)")
    ] = None,
) -> None:
    """Change a tenant's own limit; an option left out keeps its current value.

    A change that would leave no limit at all is refused: `limits clear` says that outright."""
    if per_second is None and burst is None:
        raise typer.BadParameter("give --per-second, --burst or both")
    if per_second is not None and per_second <= 0:
        raise typer.BadParameter("--per-second must be greater than 0")
    from tenancy.rate_limit_records import TenantLimit, WouldBeUnlimited, update_rate_limit
    from tenancy.settings import get_settings

    default_rate = get_settings().rate_limit_per_second

    async def main() -> TenantLimit:
        async with owner_engine() as engine:
            return await update_rate_limit(
                engine, slug, per_second, burst, default_rate=default_rate
            )

    try:
        limit = run(main)
    except WouldBeUnlimited as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    typer.echo(f"{slug}: {_describe(limit.per_second, limit.burst)}")


@app.command("clear")
def limits_clear(slug: Slug) -> None:
    """Back to the settings' default (TENANTRY_RATE_LIMIT_PER_SECOND / _BURST)."""
    _apply(slug, None, None)
    typer.echo(f"{slug}: {_describe(None, None)}")


@app.command("list")
def limits_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
) -> None:
    """Tenants with a limit of their own."""
    from tenancy.rate_limit_records import tenant_limits

    async def main():
        async with owner_engine() as engine, engine.connect() as conn:
            return await tenant_limits(conn)

    rows = run(main)
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows]))
        return
    if not rows:
        typer.echo(f"no tenant has a limit of its own; every tenant: {_describe(None, None)}")
        return
    print_table(
        ("SLUG", "OWN RATE", "OWN BURST", "IN FORCE"),
        [
            (
                row.slug,
                "-" if row.per_second is None else f"{row.per_second:g}/s",
                "-" if row.burst is None else str(row.burst),
                _describe(row.per_second, row.burst),
            )
            for row in rows
        ],
    )


def _describe(per_second: float | None, burst: int | None) -> str:
    """The limit in force, own values and the settings' defaults combined."""
    from tenancy.rate_limit_records import effective_limit
    from tenancy.settings import get_settings

    settings = get_settings()
    limit = effective_limit(
        per_second, burst, settings.rate_limit_per_second, settings.rate_limit_burst
    )
    return "no limit" if limit is None else f"{limit[0]:g}/s, burst {limit[1]}"
