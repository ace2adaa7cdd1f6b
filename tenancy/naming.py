"""Slug rules and schema names: the only place a tenant's name turns into SQL."""

import re

REGISTRY_SCHEMA = "tenantry"
"""The shared schema holding the registry; never on a tenant's search_path."""

TENANT_SCHEMA_PREFIX = "tenant_"

SLUG_PATTERN = r"[a-z][a-z0-9-]{1,39}"
"""The slug rule (a full match), e.g. for the OpenAPI document; reserved slugs aside."""

_SLUG = re.compile(SLUG_PATTERN)
_TENANT_SCHEMA = re.compile(r"tenant_[a-z][a-z0-9_]{1,39}")

RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "autogen",
        "default",
        "information-schema",
        "internal",
        "pg",
        "postgres",
        "public",
        "root",
        "shared",
        "system",
        "template",
        "tenant",
        "tenantry",
        "www",
    }
)


class InvalidSlug(ValueError):
    """A slug that breaks the naming rule."""


class InvalidSchemaName(ValueError):
    """A schema name that is not a tenant schema; it must never reach SQL."""


def is_valid_slug(slug: str) -> bool:
    return _SLUG.fullmatch(slug) is not None and slug not in RESERVED_SLUGS


def validate_slug(slug: str) -> str:
    """Return the slug unchanged, or raise InvalidSlug saying which rule it breaks."""
    if _SLUG.fullmatch(slug) is None:
        raise InvalidSlug(
            f"invalid slug {slug[:60]!r}: use 2-40 characters a-z, 0-9 and '-', "
            "starting with a letter"
        )
    if slug in RESERVED_SLUGS:
        raise InvalidSlug(f"slug {slug!r} is reserved")
    return slug


def tenant_schema(slug: str) -> str:
    """A tenant's schema: 'tenant_' + slug with '-' as '_' (one-to-one: slugs have no '_')."""
    return TENANT_SCHEMA_PREFIX + validate_slug(slug).replace("-", "_")


def is_tenant_schema(name: str) -> bool:
    return _TENANT_SCHEMA.fullmatch(name) is not None


def checked_schema(name: str) -> str:
    """Return a tenant schema name unchanged, refusing anything outside the tenant namespace."""
    if not is_tenant_schema(name):
        raise InvalidSchemaName(f"not a tenant schema name: {name[:80]!r}")
    return name


def quote_schema(name: str) -> str:
    """The one audited quoting function, for DDL where a bound parameter cannot stand.

    Only names that pass the tenant-schema rule (lower-case letters, digits, '_') get through, so
    the double quotes never need escaping.
    """
    return '"' + checked_schema(name) + '"'
