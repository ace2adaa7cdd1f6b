"""What pg_stat_activity shows for a request's transaction: its tenant and request id.

The tag is a transaction-scoped `application_name`, set in the round trip that opens the
transaction (appended to BEGIN, or bound in the same statement as the search_path on other
engines: both forms are in tenancy.search_path), so it costs no round trip, keeps statement
texts constant (asyncpg's prepared-statement cache stays warm) and ends with the transaction.
A SQL comment per request would make every statement text unique and defeat that cache.
"""

import re

_TAG = re.compile(r"[A-Za-z0-9._:-]{1,63}")
_NOT_TAG_CHARACTER = re.compile(r"[^A-Za-z0-9._:-]")

APPLICATION_NAME_MAX = 63
"""PostgreSQL keeps the first NAMEDATALEN - 1 bytes of application_name."""


def request_tag(application_name: str, slug: str, request_id: str | None) -> str:
    """`tenantry:acme:3f2a…`; slug first, so only the request id is cut at 63 bytes."""
    tag = f"{application_name}:{slug}"
    if request_id:
        tag += f":{request_id}"
    return _NOT_TAG_CHARACTER.sub("_", tag)[:APPLICATION_NAME_MAX]


def quote_tag(tag: str) -> str:
    """The tag as a SQL literal, for the simple-query BEGIN where nothing can be bound.

    Only [A-Za-z0-9._:-] gets through (request_tag() builds nothing else), so the single quotes
    never need escaping.
    """
    if _TAG.fullmatch(tag) is None:
        raise ValueError(f"not a request tag: {tag[:80]!r}")
    return f"'{tag}'"
