"""One settings model for the whole process, read from TENANTRY_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package lives in: relative paths in settings are anchored here, not to the
current directory, so a command run from anywhere finds the project's embedded database."""

IMPORT_MAX_BYTES = 10 * 1024**3
"""10 GiB: the default bound on an archive's data as `tenantry tenants import` expands it."""


class TenancySettings(BaseSettings):
    """Everything an operator can set; defaults give a working local service."""

    # env_ignore_empty: an empty variable means the default (compose passes every setting through
    # as `${VAR:-}`), and an empty TENANTRY_ADMIN_TOKEN keeps /admin closed rather than open to
    # `Bearer ` with nothing after it.
    model_config = SettingsConfigDict(
        env_prefix="TENANTRY_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    database_url: str | None = Field(
        default=None,
        description="The API's (runtime role's) postgresql+asyncpg://... URL; unset means an "
        "embedded PostgreSQL.",
    )
    owner_database_url: str | None = Field(
        default=None,
        description="The owner role's URL (migrations, onboarding, the CLI), straight to "
        "PostgreSQL; unset means the same as database_url (one role for all: not recommended).",
    )
    bootstrap_database_url: str | None = Field(
        default=None,
        description="A superuser's URL, used only by `tenantry roles setup` to create the owner "
        "role named in owner_database_url (not a superuser) and hand it the database; never "
        "used by the API, migrations, onboarding or import.",
    )
    listen_database_url: str | None = Field(
        default=None,
        description="Straight to PostgreSQL, for the registry's LISTEN connection; unset means "
        "database_url. Required with pgbouncer (LISTEN does not survive transaction pooling).",
    )
    pgbouncer: bool = Field(
        default=False,
        description="database_url goes through PgBouncer in transaction pooling mode: prepared "
        "statements get unique names and are never cached across transactions.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1, description="Request bodies larger than this are refused (413)."
    )
    max_headers: int = Field(
        default=100,
        ge=8,
        description="Header lines a request may carry; more are refused (431 too-many-headers).",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Bytes a request head (request line and headers) may take; the edge "
        "(tenancy/edge.py) counts them before the parser and refuses a longer head (431) before "
        "it is buffered further. Bounds the memory an unfinished request head can hold per "
        "connection.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has, from connecting or from the end of its previous "
        "response, to send a complete request head; then the connection is closed (408).",
    )
    max_connections: int = Field(
        default=2048,
        ge=1,
        description="Open client connections per API process; connections past it are closed "
        "at once. With max_header_bytes it bounds the memory unfinished requests can hold.",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for /admin routes; unset disables them."
    )
    tenant_header: str = Field(default="X-Tenant-ID", description="Header naming the tenant.")
    pool_size: int = Field(
        default=15,
        ge=1,
        description="Connections the pool keeps per process (opened as needed, then kept).",
    )
    max_overflow: int = Field(
        default=0,
        ge=0,
        description="Extra connections under load, closed as soon as they are returned while the "
        "pool is full: under load past pool_size they are opened and closed again and again, "
        "each starting with cold per-tenant catalog caches and no prepared statement (measured "
        "in bench/README.md), so the default 0 gives pool_size every connection.",
    )
    pool_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    pool_recycle: int = Field(
        default=1800,
        description="Seconds after which a pooled connection is replaced (-1: never).",
    )
    statement_cache_size: int = Field(
        default=500,
        ge=1,
        description="Prepared statements kept per pooled connection in each of two tiers: "
        "statements shared by tenants whose tables match (an LRU), and statements of a "
        "tenant's own, prepared when it comes back within the last half this many statements "
        "the connection ran, until that tier is full (so PostgreSQL does not re-plan them at "
        "each tenant switch; about 22 KiB of backend memory each). Unused with pgbouncer.",
    )
    pool_max_schemas: int = Field(
        default=1000,
        ge=0,
        description="Distinct tenant schemas a pooled connection's request transactions may "
        "enter; at that count it is replaced at its next checkout (0: never). Bounds the catalog "
        "caches its PostgreSQL backend keeps, which grow with each schema it enters (about 10 "
        "KiB each), not with its uses: with fewer tenants than this, connections are never "
        "replaced for it. Unused with pgbouncer (the backends are PgBouncer's: its "
        "server_lifetime bounds them).",
    )
    pool_max_uses: int = Field(
        default=0,
        ge=0,
        description="Checkouts after which a pooled connection is replaced (0: never); "
        "TENANTRY_POOL_MAX_SCHEMAS bounds what grows, so this is off by default.",
    )
    registry_cache_ttl: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds between full reloads of the in-memory registry: a backstop only, for "
        "registry edits made without NOTIFY; changes made through Tenantry arrive at once.",
    )
    listen_check_seconds: float = Field(
        default=2.0,
        gt=0,
        description="The registry listener's connection must answer a query this often (and "
        "within it); the in-memory registry is trusted only while it does, else requests read "
        "the registry directly. TCP keepalive and TCP_USER_TIMEOUT follow it.",
    )
    readiness_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds /readyz reuses its last database check (one check at a time, "
        "however many probes).",
    )
    data_dir: Path = Field(
        default=Path(".tenantry"),
        validate_default=True,
        description="Where the embedded PostgreSQL keeps its data (in `pgdata/`); a relative path "
        "is taken from the project folder (where alembic.ini is), never from the current "
        "directory.",
    )
    embedded_database: str = Field(
        default="tenantry", description="Database used on the embedded server."
    )
    application_name: str = Field(
        default="tenantry",
        max_length=40,
        description="PostgreSQL application_name of the API's connections; during a request "
        "pg_stat_activity shows `<name>:<tenant>:<request id>` instead.",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="`json`: one JSON object per line; `text`: for people; `auto`: text when "
        "stderr is a terminal, else json.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level logged (INFO logs one line per request)."
    )
    access_log_flush_seconds: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="Request log lines are written in batches, about this long after their "
        "request ended (each keeps its request's time); a server error's line at once, and all "
        "held lines when the app shuts down or the process exits. 0: each line as its request "
        "ends.",
    )
    metrics_tenant_label: bool = Field(
        default=False,
        description="Label request counts with the tenant slug. One series per tenant, route and "
        "status: only for small fleets (tens of tenants).",
    )
    metrics_registry_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="Seconds /metrics reuses its tenant and migrate-run counts before it queries "
        "the registry again (bounds the cost of many scrapers).",
    )
    rate_limit_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Requests per second a tenant may make, per API process, unless the registry "
        "sets its own (`tenantry limits set`); unset means no limit.",
    )
    rate_limit_burst: int | None = Field(
        default=None,
        ge=1,
        description="Requests a tenant may make at once before the per-second rate applies; "
        "unset means the rate rounded up (at least 1).",
    )
    shutdown_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds `tenantry serve` lets in-flight requests finish after SIGTERM before "
        "it cancels them (answered 503 `shutting-down`); keep below the orchestrator's kill "
        "timeout.",
    )

    import_max_bytes: int = Field(
        default=IMPORT_MAX_BYTES,
        ge=1,
        description="Bytes of rows (as pg_restore writes them out, uncompressed) an archive may "
        "hold for `tenantry tenants import`; a larger one is refused and nothing is imported "
        "(a bound on what a small, highly compressible archive can make the database write before "
        "it is refused: the rows go through COPY, with their indexes and WAL, then roll back).",
    )

    @field_validator(
        "database_url", "owner_database_url", "bootstrap_database_url", "listen_database_url"
    )
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        return None if value is None else asyncpg_url(value)

    @field_validator("data_dir")
    @classmethod
    def _anchor_data_dir(cls, value: Path) -> Path:
        return (PROJECT_ROOT / value.expanduser()).resolve()

    @model_validator(mode="after")
    def _urls_fit_together(self) -> "TenancySettings":
        if self.owner_database_url and not self.database_url:
            raise ValueError("TENANTRY_OWNER_DATABASE_URL needs TENANTRY_DATABASE_URL too")
        if self.pgbouncer and not self.listen_database_url:
            raise ValueError(
                "TENANTRY_PGBOUNCER needs TENANTRY_LISTEN_DATABASE_URL: a URL straight to "
                "PostgreSQL for LISTEN, which transaction pooling cannot carry"
            )
        return self


ASYNCPG_SCHEME = "postgresql+asyncpg"
PLAIN_POSTGRES_SCHEMES = ("postgresql", "postgres")


def asyncpg_url(url: str) -> str:
    """A database URL as Tenantry uses it: `postgresql+asyncpg://...` as given, a plain
    `postgresql://` or `postgres://` (what users paste) with the asyncpg driver put in; any other
    scheme or driver is refused (the message names the scheme, never the URL: it may hold a
    password)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"not a URL: expected {ASYNCPG_SCHEME}://user@host:5432/database")
    if scheme.lower() == ASYNCPG_SCHEME:
        return url
    if scheme.lower() in PLAIN_POSTGRES_SCHEMES:
        return f"{ASYNCPG_SCHEME}://{rest}"
    raise ValueError(
        f"Tenantry works only with PostgreSQL through asyncpg: use a {ASYNCPG_SCHEME}:// (or "
        f"postgresql://) URL, not {scheme}://"
    )


class SettingsError(ValueError):
    """Settings that do not validate, as one line naming each offending environment variable."""


def describe_validation_error(exc: ValidationError) -> str:
    """`TENANTRY_POOL_SIZE: Input should be ...; TENANTRY_...: ...` (errors of the model as a
    whole, which name their variables themselves, as they are)."""
    parts = []
    for error in exc.errors():
        message = " ".join(str(error.get("msg", "")).split())
        message = message.removeprefix("Value error, ")
        field = next((str(part) for part in error.get("loc", ()) if isinstance(part, str)), None)
        parts.append(f"TENANTRY_{field.upper()}: {message}" if field else message)
    return "; ".join(parts) or "invalid settings"


@lru_cache
def get_settings() -> TenancySettings:
    """The process-wide settings, read once; invalid ones raise SettingsError (one line)."""
    try:
        return TenancySettings()
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
