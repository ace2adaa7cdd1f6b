"""`tenantry keys ...`: more keys for rotation, listing, revocation. A key is shown only once."""

import json
from typing import Annotated

import typer

from service.cli.common import print_table, run_with_engine

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Issue, list and revoke tenants' API keys.",
    no_args_is_help=True,
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
Slug = Annotated[str, typer.Argument(metavar="SLUG", help="The tenant's slug")]


@app.command("create")
def keys_create(slug: Slug, as_json: Json = False) -> None:
    """Issue another active key (clients rotate by holding two); prints it once."""
    from tenancy.lifecycle.api_keys import create_key

    key = run_with_engine(lambda engine: create_key(engine, slug))
    if as_json:
        typer.echo(json.dumps({"slug": slug, "key_id": key.key_id, "api_key": key.token}))
        return
    typer.echo(f"new key {key.key_id} for tenant {slug}")
    typer.echo(f"API key (shown once): {key.token}")


@app.command("list")
def keys_list(slug: Slug, as_json: Json = False) -> None:
    """The tenant's keys, oldest first: id, created, revoked (secrets are never stored)."""
    from tenancy.lifecycle.api_keys import list_keys

    async def keys(engine):
        async with engine.connect() as conn:
            return await list_keys(conn, slug)

    rows = run_with_engine(keys)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "key_id": row.key_id,
                        "active": row.active,
                        "created_at": row.created_at.isoformat(),
                        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                    }
                    for row in rows
                ]
            )
        )
        return
    print_table(
        ("KEY_ID", "CREATED", "STATUS"),
        [
            (
                row.key_id,
                f"{row.created_at:%Y-%m-%d %H:%M}",
                f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active",
            )
            for row in rows
        ],
    )


@app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str,
        typer.Argument(metavar="KEY_ID", help="From `keys list` (the part after `tnt_` in a key)"),
    ],
) -> None:
    """Revoke a key at once on every API process (its id is the part after `tnt_`)."""
    from tenancy.lifecycle.api_keys import revoke_key

    slug = run_with_engine(lambda engine: revoke_key(engine, key_id))
    typer.echo(f"revoked key {key_id} of tenant {slug}")
