"""What every new tenant is made of: its tables at head and the rows a deployment seeds."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenancy.lifecycle.schema_builders import SchemaBuilder

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tenancy.migrate.tracks import Tracks


@dataclass(frozen=True, slots=True)
class NewTenant:
    """The tenant being created, as a seed hook sees it (its schema is the search_path)."""

    id: int
    slug: str
    schema: str
    display_name: str


SeedHook = Callable[["AsyncConnection", NewTenant], Awaitable[None]]
"""Adds default rows inside the onboarding transaction: if it raises, the tenant never existed.
Given the SQLAlchemy connection of that transaction, so a tenant with a seed hook is created on
an engine (`onboarding.create_tenant`)."""


@dataclass(frozen=True)
class TenantBlueprint:
    builder: SchemaBuilder
    seed: SeedHook | None = None

    @classmethod
    def from_models(
        cls, tracks: "Tracks", metadata: "MetaData", seed: SeedHook | None = None
    ) -> "TenantBlueprint":
        """The fast path: the models' DDL stamped at the tenant track's head."""
        from tenancy.lifecycle.schema_builders.head_ddl import HeadDDL

        return cls(HeadDDL(tracks, metadata), seed)
