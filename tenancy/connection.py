"""asyncpg connections whose BEGIN carries the tenant's search_path, and whose prepared
statements are never shared between tenants whose tables differ.

**The search_path rides with BEGIN.** asyncpg starts every transaction with the simple query
`BEGIN;` (SQLAlchemy's asyncpg dialect sends it lazily, just before the transaction's first
statement). Appending `SET LOCAL search_path TO "tenant_x", extensions;` to that same query sets
the schema (and, after it, the shared extensions schema: see tenancy.naming) in the round trip
that opens the transaction. `SET LOCAL` ends with the transaction exactly as
`set_config('search_path', :schema, true)` does; the simple query protocol has no bound
parameters, so the name goes through `quote_search_path`, which only admits checked tenant
schemas (the suffix, and every other way a transaction enters a tenant schema, is in
tenancy.search_path).
Every BEGIN also carries `RESET ALL; RESET ROLE;`, so no session-level setting that an earlier
transaction on the pooled connection left behind (a handler's, or an injection's `SET`) is in
force in the next one, at no extra round trip.

**Statements are cached per table shape.** SQLAlchemy's asyncpg dialect caches prepared
statements per connection, keyed by their SQL text. Under a search_path that changes per
transaction that is not enough: a statement prepared for one tenant and run for another is
re-analysed by PostgreSQL under the new path, and when its result types differ (a column whose
type a revision changed on one tenant only; a per-tenant enum, whose OID differs in every
schema) PostgreSQL refuses it (`cached plan must not change result type`), failing the
transaction. So the shared statements are keyed by the statement and the *shape* of the tenant's
tables: an md5 of every column's name, type OID, typmod and collation in the schema, read from
the catalog once per process and schema (one query, the first time a process sees the schema).
Tenants whose tables match share statements, so a switch between them costs no round trip;
tenants that differ never share one. When a statement still goes stale (a migration changed a
table after its shape was read), the dialect invalidates its caches and this connection forgets
every shape it read.

**A tenant that comes back gets statements of its own.** A shared statement run under another
tenant's search_path than the one it was planned under is analysed and planned again by
PostgreSQL (its plan cache keeps the search_path a plan was made under): with many tenants over
a few pooled connections, nearly every execution. So the second time a connection runs a
statement for the same tenant within its recent memory (`StatementCache`: the last
`capacity // 2` statement-and-schema pairs it ran from the shared tier), it prepares one for
that schema alone (one round trip), which PostgreSQL plans once and keeps, until the own tier
is full: then nothing more is admitted (nor evicted). A fleet that fits the cache ends with
every statement its own; in a larger one, the pairs that came back first keep theirs and the
rest run the shared statements as before (bench/README.md, "Statements of their own").
"""

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import asyncpg

from tenancy.search_path import begin_suffix

_TRANSACTION_ENDS = frozenset({"COMMIT;", "ROLLBACK;"})
"""What asyncpg's Transaction sends to end a transaction (a savepoint's end is not one)."""

RESET_SESSION = " RESET ALL; RESET ROLE;"
"""Appended to every BEGIN: session-level settings and role back to the connection's defaults
(the values it logged in with). Transactional, so it holds for the transaction it opens."""

TABLE_SHAPE = """\
SELECT md5(coalesce(string_agg(
         concat_ws(':', c.relname, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attcollation),
         ',' ORDER BY c.relname, a.attnum), ''))
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class c ON c.oid = d.objid
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_namespace
                    WHERE nspname = pg_catalog.current_schema())"""
"""The shape of the current schema's tables: a text of 32 hex digits. Relations are found through
pg_depend's index on the namespace they belong to (pg_class has none on relnamespace alone), so
it costs a few index lookups, not a scan of a catalog that holds every tenant's tables."""


class TenantConnection(asyncpg.Connection):
    """An asyncpg connection that can be told the search_path of its next transaction.

    Engines get a subclass of their own from `for_engine()`, which holds the engine's table
    shapes (schema -> shape, read once per process and schema).
    """

    __slots__ = ("_begin_suffix", "_entered", "_schema", "_shape")
    _shapes: dict[str, str] | None = None
    _max_schemas = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begin_suffix = ""
        self._schema: str | None = None
        self._shape: str | None = None
        self._entered: set[str] = set()

    @classmethod
    def for_engine(cls, *, shapes: bool, max_schemas: int = 0) -> type["TenantConnection"]:
        """A subclass with a table-shape map of its own (shapes=False: none, for engines whose
        statements are never cached, as behind PgBouncer) that counts the distinct schemas each
        connection enters up to max_schemas (0: counts none; see tenancy.pool)."""
        namespace = {
            "__slots__": (),
            "_shapes": {} if shapes else None,
            "_max_schemas": max_schemas,
        }
        return type(cls.__name__, (cls,), namespace)

    def search_path_on_begin(self, schema: str | None, tag: str | None = None) -> None:
        """Arm the next BEGIN with this tenant schema (and application_name tag); None disarms."""
        self._schema = schema or None
        self._begin_suffix = begin_suffix(schema, tag) if schema else ""

    @property
    def schemas_entered(self) -> int:
        """How many distinct tenant schemas this connection's transactions have entered (what
        its backend's catalog caches grow with; tenancy.pool replaces it at a limit)."""
        return len(self._entered)

    @property
    def tenant_schema(self) -> str | None:
        """The tenant schema of the current transaction (set by its BEGIN); None outside."""
        return self._schema

    @property
    def statement_namespace(self) -> Hashable:
        """What the current transaction's shared prepared statements are cached under: its tenant's
        table shape (the schema's name while the shape is unknown); None outside tenants."""
        return self._shape or self._schema

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncpg's own signature)
    ) -> str:
        if args or not query.startswith("BEGIN"):
            if query in _TRANSACTION_ENDS:  # not ROLLBACK TO SAVEPOINT: still in the tenant
                self._schema = self._shape = None
            return await super().execute(query, *args, timeout=timeout)
        suffix = self._begin_suffix
        schema = self._schema = self._schema if suffix else None
        self._begin_suffix = ""
        try:
            status = await super().execute(query + RESET_SESSION + suffix, timeout=timeout)
            if schema is not None and len(self._entered) < self._max_schemas:
                self._entered.add(schema)  # bounded: counted up to the limit, no further
            self._shape = await self._shape_of(schema) if suffix else None
            return status
        except BaseException:
            # BEGIN may have succeeded before the SET failed or was cancelled: never hand out a
            # connection in that state; a closed connection is discarded by the pool.
            self.terminate()
            raise

    async def reload_schema_state(self) -> None:
        """After a stale statement (SQLAlchemy's dialect calls this on every connection once):
        shapes read before may be out of date too, so read the current one again."""
        await super().reload_schema_state()
        if self._shapes is not None:
            self._shapes.clear()
            if self._shape is not None:
                self._shape = await self._shape_of(self._schema)

    async def _shape_of(self, schema: str | None) -> str | None:
        shapes = self._shapes
        if shapes is None or schema is None:
            return None
        shape = shapes.get(schema)
        if shape is None:
            shape = shapes[schema] = await self.fetchval(TABLE_SHAPE)
        return shape


def statement_namespace(driver: TenantConnection) -> Hashable:
    """The key prefix of driver's shared statements (see TenantConnection.statement_namespace)."""
    return driver.statement_namespace


class RecentlyUsed:
    """A least-recently-used map of at most `capacity` entries, on an OrderedDict: no object of
    its own per entry for the garbage collector to walk (SQLAlchemy's LRUCache keeps a tuple and
    a list per entry, and a full collection walks every one of them: bench/README.md,
    "Statements of their own")."""

    __slots__ = ("_capacity", "_items")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any:
        """The value under key (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Set key's value, the most recently used; past capacity, the least recent goes."""
        items = self._items
        items[key] = value
        items.move_to_end(key)
        if len(items) > self._capacity:
            items.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        self._items.pop(key, None)


INTERNED_ATTRIBUTES = 4096
"""At most this many distinct result descriptions are shared between an engine's cached
statements; past it, a statement keeps its own."""


class StatementCache:
    """SQLAlchemy's asyncpg dialect's prepared-statement cache (the mapping it keeps per
    connection in `_prepared_statement_cache`, which it asks `operation in cache`, then reads
    `cache[operation]` or prepares and sets it), in two tiers of `capacity` statements each:

    - **own**: (tenant schema, SQL), prepared under that schema's search_path and run only
      there, so PostgreSQL never re-plans it for a tenant switch;
    - **shared**: (table shape, SQL), run under any tenant schema of that shape (re-planned by
      PostgreSQL when the previous run was under another schema) and outside tenants.

    A statement is prepared into the own tier at its second sighting: when the (schema, SQL)
    pair is among the last `capacity // 2` pairs this connection ran from the shared tier, and
    only while the own tier has room. A full own tier admits nothing and so evicts nothing: an
    admission costs a Parse round trip and, in PostgreSQL, five custom plans before a generic
    one, which a statement evicted after a run or two never earns back (tenants arriving at
    random over more pairs than the tier holds made an evicting tier prepare on a quarter of
    executions). The connection's replacement (TENANTRY_POOL_MAX_SCHEMAS, pool_recycle) starts
    it empty again. The shared tier is an LRU whose evicted statements asyncpg closes on the
    server. The result description the dialect keeps beside each statement (asyncpg's
    attributes: a tuple of 2 named tuples per column) is shared through `interned` (one dict per
    engine) by every statement whose description is equal, so that a statement costs the
    collector about 10 objects, not 23."""

    __slots__ = ("_capacity", "_driver", "_interned", "_last", "_own", "_shared", "_sightings")

    def __init__(
        self, driver: TenantConnection, capacity: int, interned: dict[Any, Any] | None = None
    ) -> None:
        self._driver = driver
        self._capacity = capacity
        self._own = RecentlyUsed(capacity)
        self._shared = RecentlyUsed(capacity)
        self._sightings = RecentlyUsed(max(1, capacity // 2))
        self._interned = {} if interned is None else interned
        self._last: tuple[str, RecentlyUsed, Hashable, Any] | None = None

    def _decide(self, operation: str, *, remember: bool = True) -> tuple[RecentlyUsed, Hashable]:
        """The tier and key of operation in the current transaction; a first sighting in a
        tenant schema is remembered (once per `in`, which the dialect asks first)."""
        schema = self._driver.tenant_schema
        if schema is not None:
            own = (schema, operation)
            if own in self._own:
                return self._own, own
            if len(self._own) < self._capacity:  # full: nothing admitted, nothing evicted
                if own in self._sightings:
                    return self._own, own
                if remember:
                    self._sightings.put(own, True)
        return self._shared, (statement_namespace(self._driver), operation)

    def _looked_up(self, operation: str) -> tuple[RecentlyUsed, Hashable, Any]:
        last = self._last
        if last is None or last[0] is not operation:
            tier, key = self._decide(operation, remember=False)
            return tier, key, tier.get(key)
        return last[1], last[2], last[3]

    def __contains__(self, operation: str) -> bool:
        tier, key = self._decide(operation)
        value = tier.get(key)
        self._last = (operation, tier, key, value)
        return value is not None

    def __getitem__(self, operation: str) -> Any:
        value = self._looked_up(operation)[2]
        if value is None:
            raise KeyError(operation)
        return value

    def __setitem__(self, operation: str, value: Any) -> None:
        tier, key, _ = self._looked_up(operation)
        tier.put(key, self._shared_description(value))
        if tier is self._own:
            self._sightings.pop(key)
        self._last = None

    def _shared_description(self, value: Any) -> Any:
        """The dialect's (statement, attributes, timestamp), its attributes interned."""
        statement, attributes, *rest = value
        interned = self._interned
        try:
            shared = interned.get(attributes)
            if shared is None:
                if len(interned) >= INTERNED_ATTRIBUTES:
                    return value
                shared = interned[attributes] = attributes
        except TypeError:  # not hashable: keep it as it is
            return value
        return (statement, shared, *rest)

    def __len__(self) -> int:
        return len(self._own) + len(self._shared)
