"""One settings model for the whole process, read from TENANTRY_* environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TenancySettings(BaseSettings):
    """Everything an operator can set; defaults give a working local service."""

    model_config = SettingsConfigDict(env_prefix="TENANTRY_", env_file=".env", extra="ignore")

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
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for /admin routes; unset disables them."
    )
    tenant_header: str = Field(default="X-Tenant-ID", description="Header naming the tenant.")
    pool_size: int = Field(default=10, ge=1, description="Connections kept open per process.")
    max_overflow: int = Field(default=5, ge=0, description="Extra connections under load.")
    pool_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    pool_recycle: int = Field(
        default=1800,
        description="Seconds after which a pooled connection is replaced (bounds catalog caches).",
    )
    registry_cache_ttl: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a resolved tenant stays cached; changes also invalidate it at once.",
    )
    data_dir: Path = Field(
        default=Path(".tenantry"), description="Where the embedded PostgreSQL keeps its data."
    )
    embedded_database: str = Field(
        default="tenantry", description="Database used on the embedded server."
    )

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


@lru_cache
def get_settings() -> TenancySettings:
    """The process-wide settings, read once."""
    return TenancySettings()
