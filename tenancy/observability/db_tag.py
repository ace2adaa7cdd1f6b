"""What pg_stat_activity shows for a request's transaction: its tenant and request id.

The tag is set as a transaction-scoped `application_name`, in the same statement that sets the
tenant's search_path, so it costs no round trip, keeps the statement text constant (asyncpg's
prepared-statement cache stays warm) and ends with the transaction like the search_path does.
A SQL comment per request would make every statement text unique and defeat that cache.
"""

from sqlalchemy import text

APPLICATION_NAME_MAX = 63
"""PostgreSQL keeps the first NAMEDATALEN - 1 bytes of application_name."""

SET_TENANT_SEARCH_PATH_AND_TAG = text(
    "SELECT set_config('search_path', :schema, true), set_config('application_name', :tag, true)"
)
"""Both transaction-scoped and bound: the tag never outlives the request's transaction."""


def request_tag(application_name: str, slug: str, request_id: str | None) -> str:
    """`tenantry:acme:3f2a…`; slug first, so only the request id is cut at 63 bytes."""
    tag = f"{application_name}:{slug}"
    if request_id:
        tag += f":{request_id}"
    return tag[:APPLICATION_NAME_MAX]
