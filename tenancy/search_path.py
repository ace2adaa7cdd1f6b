"""How a transaction enters a tenant schema: every form, in one place.

This is the isolation reviewer's page. A tenant's tables have no schema in their names: which
tenant a statement reads and writes is decided only by the search_path of its transaction, and
every way Tenantry sets that search_path is defined here and nowhere else.

- `begin_suffix()`: appended to asyncpg's simple-query `BEGIN`, no parameters. The request path
  on TenantConnection engines (tenancy.connection): no round trip of its own.
- `ENTER_SCHEMA`: SQLAlchemy, bound `:schema`. The request path on other engines
  (tenancy.session, through `enter_schema`), onboarding, tests.
- `ENTER_SCHEMA_TAGGED`: SQLAlchemy, bound `:schema` and `:tag`. That same fallback when the
  request has an application_name tag (tenancy.observability.db_tag).
- `enter_schema()`: runs one of the two above on a SQLAlchemy sync Connection. tenancy.session,
  the Alembic path (tenancy.migrate.alembic_path), `migrate status --verify`, Alembic's env.py,
  catch-up after a restore or import (tenancy.lifecycle.catchup, through `run_sync`).
- `ENTER_SCHEMA_ASYNCPG`: asyncpg, bound `$1`. Plain-asyncpg callers (onboarding, benchmarks).
- `ENTER_SCHEMA_WITH_LOCK_TIMEOUT`: asyncpg, bound `$1` and `$2`, with the run's lock_timeout in
  the same round trip. The migrate fast path (tenancy.migrate.fast_path).
- `psql_enter()`: rendered text, a literal value. `tenantry migrate --sql`
  (tenancy.migrate.preview), whose output psql runs later.
- `CATALOG_ONLY_STARTUP`, `CATALOG_ONLY_SQL` (bound: `CATALOG_ONLY_PARAMETERS`): no tenant at
  all: `pg_catalog, pg_temp`, for a superuser's session in a database the owner role owns
  (`tenantry roles setup`, tenancy.roles; the embedded set-up,
  tenancy.database.superuser_engine), from its startup packet on.

Two rules hold for every form:

- **Transaction-scoped.** `set_config(..., true)` and `SET LOCAL` end with the transaction that
  set them, committed or rolled back: a pooled connection never carries a tenant's search_path
  into its next transaction. Every form runs inside the transaction it is for.
- **Names come only from tenancy.naming's checked builders.** The bound forms take
  `tenant_search_path(schema)` as their value; the two that cannot bind (the simple-query BEGIN
  has no parameters, psql text is rendered ahead of time) are built with `quote_search_path` and
  `tenant_search_path`, which admit only names that pass the tenant-schema rule (`[a-z0-9_]`,
  so no quote ever needs escaping). The helpers here take the bare schema and build the value
  themselves.

Those two builders stay in tenancy.naming, beside `quote_schema`: that module is the one place
where a name becomes SQL text and the one audited for quoting; this one says where the text goes.
The search_path is the tenant's schema, then the shared extensions schema, never the registry's.

Importing this module needs no SQLAlchemy (plain-asyncpg commands stay free of it): the two
SQLAlchemy statements are built on first use (the module's `__getattr__`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from tenancy.naming import quote_search_path, tenant_search_path
from tenancy.observability.db_tag import quote_tag

if TYPE_CHECKING:
    from sqlalchemy import Connection, TextClause

    ENTER_SCHEMA: TextClause
    ENTER_SCHEMA_TAGGED: TextClause

ENTER_SCHEMA_SQL = "SELECT set_config('search_path', :schema, true)"
"""`ENTER_SCHEMA`'s text. Bound, so the value is data, and transaction-scoped (`is_local`)."""

ENTER_SCHEMA_TAGGED_SQL = (
    "SELECT set_config('search_path', :schema, true), set_config('application_name', :tag, true)"
)
"""`ENTER_SCHEMA_TAGGED`'s text: the request's tag (tenancy.observability.db_tag) set in the
same round trip, both bound and transaction-scoped, so the tag never outlives the request."""

CATALOG_ONLY = "pg_catalog, pg_temp"
"""The search_path of a superuser's session in a database the owner role owns (`tenantry roles
setup`, the embedded server's set-up). The owner owns `public` and every Tenantry schema, and may
`ALTER DATABASE ... SET search_path`: with any other path an unqualified name (`format`, `=`,
`current_schema()`, which SQLAlchemy runs as it first connects) could resolve to a function or
operator the owner planted, run with the superuser's rights. With the catalog (then the
session's own temporary schema) every name is PostgreSQL's own."""

CATALOG_ONLY_STARTUP = {"search_path": CATALOG_ONLY}
"""asyncpg's `server_settings` for such a session: sent in the startup packet, so it is in force
before the first statement and outranks a database's or role's `ALTER ... SET search_path`."""

CATALOG_ONLY_SQL = "SELECT pg_catalog.set_config('search_path', :path, true)"
"""First in every transaction of `tenantry roles setup` too (a session started some other way
gets the same path, for that transaction only), with CATALOG_ONLY_PARAMETERS bound."""

CATALOG_ONLY_PARAMETERS = {"path": CATALOG_ONLY}

ENTER_SCHEMA_ASYNCPG = "SELECT set_config('search_path', $1, true)"
"""asyncpg, bound: `await conn.execute(ENTER_SCHEMA_ASYNCPG, search_path_value(schema))`, inside
the caller's transaction."""

ENTER_SCHEMA_WITH_LOCK_TIMEOUT = (
    "SELECT set_config('search_path', $1, true), set_config('lock_timeout', $2, true)"
)
"""The migrate fast path: asyncpg, `$1` the tenant's search_path and `$2` the run's lock_timeout,
both bound and transaction-scoped, in one round trip."""


def search_path_value(schema: str) -> str:
    """The value every bound form takes: `tenant_search_path(schema)`, the name checked."""
    return tenant_search_path(schema)


@lru_cache(maxsize=4096)
def _set_local_search_path(schema: str) -> str:
    return f" SET LOCAL search_path TO {quote_search_path(schema)};"


def begin_suffix(schema: str, tag: str | None = None) -> str:
    """What TenantConnection appends to asyncpg's `BEGIN;` (one simple query, one round trip):
    `SET LOCAL search_path TO "tenant_x", extensions;` and, given a request tag,
    `SELECT pg_catalog.set_config('application_name', 'tag', true);`.

    The tag is set by a SELECT, not `SET LOCAL application_name`, because it differs in every
    request: pg_stat_statements folds a SELECT's constants into one entry, but keeps a utility
    statement's text as it is (PostgreSQL 15), so a SET would add one entry per request and keep
    the extension evicting entries (bench/README.md). Both end with the transaction.

    The simple query protocol has no bound parameters, so the schema goes through
    `quote_search_path` and the tag through `quote_tag`, each admitting only its checked
    alphabet. The search_path part is built (and its name checked) once per schema and process,
    an LRU of 4,096; a name that fails the check raises and is never cached.
    """
    suffix = _set_local_search_path(schema)
    if tag:
        suffix += f" SELECT pg_catalog.set_config('application_name', {quote_tag(tag)}, true);"
    return suffix


def enter_schema(connection: Connection, schema: str, tag: str | None = None) -> None:
    """Make schema the search_path (then the extensions schema) until the transaction ends, on a
    SQLAlchemy sync Connection (Alembic's, or an AsyncConnection's through `run_sync`); with a
    tag, also the transaction's application_name, in the same statement."""
    if tag is None:
        connection.execute(_statement("ENTER_SCHEMA"), {"schema": search_path_value(schema)})
    else:
        parameters = {"schema": search_path_value(schema), "tag": tag}
        connection.execute(_statement("ENTER_SCHEMA_TAGGED"), parameters)


def psql_enter(schema: str) -> str:
    """The statement a rendered psql script runs right after its `BEGIN;`: the value is a
    literal (nothing is bound in a script), built by `tenant_search_path` from a checked name."""
    return f"SELECT set_config('search_path', '{tenant_search_path(schema)}', true);\n"


_SQLALCHEMY_TEXTS = {
    "ENTER_SCHEMA": ENTER_SCHEMA_SQL,
    "ENTER_SCHEMA_TAGGED": ENTER_SCHEMA_TAGGED_SQL,
}
_statements: dict[str, TextClause] = {}


def _statement(name: str) -> TextClause:
    statement = _statements.get(name)
    if statement is None:
        from sqlalchemy import text  # only callers that use SQLAlchemy load it

        statement = _statements[name] = text(_SQLALCHEMY_TEXTS[name])
    return statement


def __getattr__(name: str) -> TextClause:
    """`ENTER_SCHEMA` and `ENTER_SCHEMA_TAGGED`: SQLAlchemy text() clauses of the texts above."""
    if name in _SQLALCHEMY_TEXTS:
        return _statement(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
