"""Keyset pagination by id, newest first (every list of the API): stable under inserts, one
index range scan per page, and no cursor once the last row has been listed."""

from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.schemas import parse_cursor


async def keyset_page(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[int],
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of rows after `cursor`, and the cursor of the next page: None when this page
    ends the list (one row more than the page is read to know), never a cursor to nothing."""
    after = parse_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column < after)
    rows = list(await session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, str(page[-1].id)
