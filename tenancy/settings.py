"""One settings model for the whole process, read from TENANTRY_* environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TenancySettings(BaseSettings):
    """Everything an operator can set; defaults give a working local service."""

    model_config = SettingsConfigDict(env_prefix="TENANTRY_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://... URL; unset means an embedded PostgreSQL.",
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
        description="Seconds after which a pooled connection is replaced (-1: never).",
    )
    pool_max_uses: int = Field(
        default=1000,
        ge=0,
        description="Checkouts after which a pooled connection is replaced (0: never); bounds "
        "the catalog caches a backend accumulates across tenant schemas.",
    )
    registry_cache_ttl: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds a resolved tenant stays cached: a backstop only, for registry edits "
        "made without NOTIFY; changes made through Tenantry invalidate it at once.",
    )
    data_dir: Path = Field(
        default=Path(".tenantry"), description="Where the embedded PostgreSQL keeps its data."
    )
    embedded_database: str = Field(
        default="tenantry", description="Database used on the embedded server."
    )


@lru_cache
def get_settings() -> TenancySettings:
    """The process-wide settings, read once."""
    return TenancySettings()
