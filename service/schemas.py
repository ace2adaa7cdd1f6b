"""Shared pieces of the request and response models."""

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, field_validator

from tenancy.problems import Problem, problem_responses

MAX_ID = 2**63 - 1
MAX_PAGE = 100

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="Row id")]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size, at most 100")]
Cursor = Annotated[
    str | None,
    Query(
        description="The next_cursor of the previous page",
        json_schema_extra={"pattern": r"^[1-9][0-9]{0,17}$"},  # documented; parse_cursor checks
    ),
]


STRIPPED = r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""What str_strip_whitespace strips (Unicode White_Space, as pydantic-core's trim), spelled out:
JSON Schema's `\\s` is ECMA's, which lacks U+0085 and adds U+FEFF, so it would disagree."""


def _document_text_rules(schema: dict[str, Any]) -> None:
    """Say in the OpenAPI document what StrictInput checks: no NUL anywhere, and, whitespace
    being stripped before lengths are checked, a non-space in a required text."""
    for field in schema.get("properties", {}).values():
        for text in [field, *field.get("anyOf", [])]:
            if text.get("type") == "string" and "pattern" not in text:
                required = text.get("minLength", 0) > 0
                text["pattern"] = (
                    rf"^[^\u0000]*[^\u0000{STRIPPED}][^\u0000]*$" if required else r"^[^\u0000]*$"
                )


class StrictInput(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not silently ignored data."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_document_text_rules
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL: refuse it here (422), not in the database (500)."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("NUL characters are not allowed")
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are the last id of the previous page, opaque to clients."""
    if cursor is None:
        return None
    if (
        not (cursor.isascii() and cursor.isdigit())
        or len(cursor) > 19
        or not 0 < int(cursor) <= MAX_ID
    ):
        raise Problem(400, "invalid-cursor", "Invalid cursor")
    return int(cursor)


TENANT_PROBLEMS = problem_responses(400, 401, 403, 413, 422, 503)
"""What any tenant route may answer before or instead of its handler's result (503: its schema
is missing, `tenant-unavailable`; no connection free in time, `busy`)."""
