"""Slug rules and schema names: the only place a tenant's name turns into SQL."""

import re
import secrets

REGISTRY_SCHEMA = "tenantry"
"""The shared schema holding the registry; never on a tenant's search_path."""

NOTIFY_CHANNEL = "tenantry_registry"
"""Registry changes are announced here (payload: the slug) so every process reloads that tenant."""

EXTENSIONS_SCHEMA = "extensions"
"""The one shared schema on every tenant's search_path, after the tenant's own: extensions are
installed there (`CREATE EXTENSION citext SCHEMA extensions`, in a shared revision), so their
types, functions and operators resolve in tenant revisions and requests. The shared revision
that creates it grants USAGE to everyone and CREATE to no one but its owner: no tenant's
transaction can write there."""

TENANT_SCHEMA_PREFIX = "tenant_"
ARCHIVE_SCHEMA_PREFIX = "archived_"
"""Archived tenants' schemas: outside the tenant namespace, so no request can reach them."""

STAGING_SCHEMA_PREFIX = "importing_"
"""An import restores here first, then renames it to the tenant schema in the same transaction
that registers the tenant; a leftover one (a killed import) blocks nothing."""

MAX_IDENTIFIER = 63
"""PostgreSQL truncates longer names (NAMEDATALEN - 1)."""

SLUG_PATTERN = r"[a-z][a-z0-9-]{1,39}"
"""The slug rule (a full match), e.g. for the OpenAPI document; reserved slugs aside."""

_SLUG = re.compile(SLUG_PATTERN)
_TENANT_SCHEMA = re.compile(r"tenant_[a-z][a-z0-9_]{1,39}")
_STAGING_SCHEMA = re.compile(r"importing_[0-9a-f]{16}")
_ARCHIVE_SCHEMA = re.compile(r"archived_[1-9][0-9]{0,18}_[a-z][a-z0-9_]{0,39}")

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


def slug_of_schema(name: str) -> str:
    """The slug whose tenant schema this is (the inverse of tenant_schema)."""
    return checked_schema(name).removeprefix(TENANT_SCHEMA_PREFIX).replace("_", "-")


def archive_schema(tenant_id: int, slug: str) -> str:
    """Where an archived tenant's schema goes: 'archived_<id>_<slug>', at most 63 characters.

    The registry id keeps the name unique even when the slug is reused after a purge, and it
    comes first so that cutting the slug short to fit never makes two names equal.
    """
    if tenant_id < 1:
        raise ValueError(f"tenant id must be positive, not {tenant_id}")
    name = f"{ARCHIVE_SCHEMA_PREFIX}{tenant_id}_{validate_slug(slug).replace('-', '_')}"
    return checked_archive_schema(name[:MAX_IDENTIFIER])


def is_archive_schema(name: str) -> bool:
    return len(name) <= MAX_IDENTIFIER and _ARCHIVE_SCHEMA.fullmatch(name) is not None


def checked_archive_schema(name: str) -> str:
    """Return an archive schema name unchanged, refusing anything else (tenant schemas too)."""
    if not is_archive_schema(name):
        raise InvalidSchemaName(f"not an archive schema name: {name[:80]!r}")
    return name


def checked_data_schema(name: str) -> str:
    """A schema holding a tenant's data: its live tenant schema, or its archive."""
    return (
        checked_archive_schema(name)
        if name.startswith(ARCHIVE_SCHEMA_PREFIX)
        else checked_schema(name)
    )


def staging_schema() -> str:
    """A fresh, unguessable name for one import's staging schema."""
    return STAGING_SCHEMA_PREFIX + secrets.token_hex(8)


def is_staging_schema(name: str) -> bool:
    return _STAGING_SCHEMA.fullmatch(name) is not None


def checked_staging_schema(name: str) -> str:
    if not is_staging_schema(name):
        raise InvalidSchemaName(f"not an import staging schema name: {name[:80]!r}")
    return name


def quote_schema(name: str) -> str:
    """The one audited quoting function, for DDL where a bound parameter cannot stand.

    Only names that pass the tenant-schema rule (lower-case letters, digits, '_') get through, so
    the double quotes never need escaping.
    """
    return _quoted(checked_schema(name))


def tenant_search_path(schema: str) -> str:
    """The search_path of a tenant's transactions, as a set_config value:
    'tenant_acme, extensions' (raises InvalidSchemaName for anything but a tenant schema)."""
    return f"{checked_schema(schema)}, {EXTENSIONS_SCHEMA}"


def quote_search_path(schema: str) -> str:
    """tenant_search_path for the simple query protocol: '"tenant_acme", extensions'."""
    return f"{quote_schema(schema)}, {EXTENSIONS_SCHEMA}"


def quote_archive_schema(name: str) -> str:
    """quote_schema for archived schemas: the same quoting, under the archive rule."""
    return _quoted(checked_archive_schema(name))


def quote_staging_schema(name: str) -> str:
    """quote_schema for an import's staging schema, under the staging rule."""
    return _quoted(checked_staging_schema(name))


def quote_data_schema(name: str) -> str:
    """quote_schema for a tenant's live schema or its archive."""
    return _quoted(checked_data_schema(name))


def _quoted(checked_name: str) -> str:
    return '"' + checked_name + '"'
