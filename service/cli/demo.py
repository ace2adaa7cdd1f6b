"""`tenantry serve --demo` (what `make run` runs): one process, one start of the embedded server.

Before serving: the port is checked first (nothing is printed if another server holds it), every
schema is migrated, the demo tenant is made if missing (resumed, saying so, if suspended), and it
is given one fresh key: the keys earlier runs printed are revoked, so the demo tenant has exactly
one live key, the one shown.
"""

import errno
import socket
import sys

import typer

from service.cli.common import fail, owner_engine, run
from service.cli.interrupts import INTERRUPTS

DEMO_SLUG = "demo"


def check_port_free(host: str, port: int) -> None:
    """One line and exit 1 when host:port cannot be bound (as uvicorn would bind it); a port in
    use is answered with the next one (of the following 20) that is free now."""
    error = _bind_error(host, port)
    if error is None:
        return
    if error.errno != errno.EADDRINUSE:
        fail(f"cannot listen on {host}:{port}: {error.strerror}")
    free = next(
        (p for p in range(port + 1, min(port + 21, 65536)) if not _bind_error(host, p)), None
    )
    pick = f"make run PORT={free}" if free else "make run PORT=<a free port>"
    fail(
        f"port {port} on {host} is already in use (another `make run` or server?): "
        f"stop it, or pick another port: {pick}"
    )


def _bind_error(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def prepare_demo(host: str, port: int) -> None:
    """Migrate, make sure the demo tenant exists with one live key, print the key and a curl."""
    from service.cli.migrate import migrate_all

    migrate_all()
    key, resumed = run(_one_demo_key)
    from tenancy.settings import get_settings

    header = get_settings().tenant_header
    where = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::1", "::") else host
    if resumed:
        typer.echo(
            f"\nTenant '{DEMO_SLUG}' was suspended: resumed it, as it is the demo "
            f"(`tenantry tenants suspend {DEMO_SLUG}` suspends it again)."
        )
    typer.echo(f"\nTenant '{DEMO_SLUG}' is ready. Its API key (the only live one): {key}\nTry:\n")
    typer.echo(
        f"  curl -s -X POST {where}:{port}/todos -H '{header}: {DEMO_SLUG}' "
        f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        """-d '{"content": "hello"}'\n"""
    )
    typer.echo(f"Docs: http://{where}:{port}/docs\n")
    sys.stdout.flush()
    INTERRUPTS.release()  # the key is printed: a Ctrl-C held since its commit stops here


async def _one_demo_key() -> tuple[str, bool]:
    """The demo tenant's one live key, and whether a suspended demo tenant was resumed for it
    (else its printed curl would get 403)."""
    from sqlalchemy import select

    from service.onboarding import tenant_blueprint
    from service.paths import ALEMBIC_INI
    from tenancy.lifecycle.api_keys import create_key, list_keys, revoke_key
    from tenancy.lifecycle.errors import TenantExists
    from tenancy.lifecycle.onboarding import create_tenant
    from tenancy.lifecycle.status import resume_tenant
    from tenancy.migrate.tracks import load_tracks
    from tenancy.registry import SUSPENDED, tenants

    async with owner_engine() as engine:
        try:
            blueprint = tenant_blueprint(load_tracks(ALEMBIC_INI))
            created = await create_tenant(engine, blueprint, DEMO_SLUG, "Demo")
            return created.api_key, False
        except TenantExists:
            pass
        async with engine.connect() as conn:
            status = await conn.scalar(select(tenants.c.status).where(tenants.c.slug == DEMO_SLUG))
        resumed = status == SUSPENDED
        if resumed:
            await resume_tenant(engine, DEMO_SLUG)
        new = await create_key(engine, DEMO_SLUG)
        async with engine.connect() as conn:
            earlier = [row for row in await list_keys(conn, DEMO_SLUG) if row.active]
        for row in earlier:
            if row.key_id != new.key_id:
                await revoke_key(engine, row.key_id, DEMO_SLUG)
        return new.token, resumed
