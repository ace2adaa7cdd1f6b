"""Shared pieces of the request and response models."""

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict

from tenancy.problems import Problem

MAX_ID = 2**63 - 1
MAX_PAGE = 100

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="Row id")]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size, at most 100")]


class StrictInput(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not silently ignored data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are the last id of the previous page, opaque to clients."""
    if cursor is None:
        return None
    well_formed = cursor.isascii() and cursor.isdigit() and len(cursor) <= 19
    if not (well_formed and 0 < int(cursor) <= MAX_ID):
        raise Problem(400, "invalid-cursor", "Invalid cursor")
    return int(cursor)
