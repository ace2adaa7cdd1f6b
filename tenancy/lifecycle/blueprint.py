"""What every new tenant is made of: its tables at head and the rows a deployment seeds."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.build import SchemaBuilder
from tenancy.lifecycle.build.head_ddl import HeadDDL
from tenancy.lifecycle.build.replay_script import ReplayScript
from tenancy.migrate.tracks import Tracks


@dataclass(frozen=True, slots=True)
class NewTenant:
    """The tenant being created, as a seed hook sees it (its schema is the search_path)."""

    id: int
    slug: str
    schema: str
    display_name: str


SeedHook = Callable[[AsyncConnection, NewTenant], Awaitable[None]]
"""Adds default rows inside the onboarding transaction: if it raises, the tenant never existed."""


@dataclass(frozen=True)
class TenantBlueprint:
    builder: SchemaBuilder
    seed: SeedHook | None = None

    @classmethod
    def from_models(
        cls, tracks: Tracks, metadata: MetaData, seed: SeedHook | None = None
    ) -> "TenantBlueprint":
        """The fast path: the models' DDL stamped at the tenant track's head."""
        return cls(HeadDDL(tracks, metadata), seed)


def as_blueprint(source: "TenantBlueprint | Tracks") -> TenantBlueprint:
    """Tracks alone (no models to render from) replay every revision as one script."""
    if isinstance(source, Tracks):
        return TenantBlueprint(ReplayScript(source))
    return source
