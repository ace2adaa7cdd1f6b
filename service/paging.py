"""Keyset pagination by id: stable under inserts, one index range scan per page."""

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
    *,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of rows after `cursor`, and the cursor of the next page (None at the end)."""
    after = parse_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column < after if newest_first else id_column > after)
    stmt = stmt.order_by(id_column.desc() if newest_first else id_column).limit(limit)
    rows = list(await session.scalars(stmt))
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return rows, next_cursor
