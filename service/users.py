"""Users: email unique within a tenant."""

import re
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import EmailStr, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.deps import TenantSession
from service.models import EMAIL_MAX, NAME_MAX, User
from service.paging import keyset_page
from service.schemas import (
    TENANT_PROBLEMS,
    Cursor,
    Output,
    PageLimit,
    StrictInput,
)
from tenancy.middleware.replay import wraps_error
from tenancy.problems import conflict, problem_responses


class UserIn(StrictInput):
    email: EmailStr = Field(
        max_length=EMAIL_MAX,
        examples=["ada@example.com"],
        description="Special-use domains (RFC 6761: .test, .local, .invalid, ...) are refused",
    )
    name: str = Field(min_length=1, max_length=NAME_MAX, examples=["Ada Lovelace"])


class UserOut(Output):
    id: int
    email: str
    name: str
    created_at: datetime


class UserPage(Output):
    items: list[UserOut]
    next_cursor: str | None


router = APIRouter(prefix="/users", tags=["users"], responses=TENANT_PROBLEMS)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(409),
)
async def create_user(body: UserIn, session: TenantSession) -> User:
    user = User(email=body.email.lower(), name=body.name)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not wraps_error(exc, _email_taken):
            raise  # not the email's unique index: a tenant whose table differs (a 503 upstream)
        raise conflict("A user with this email already exists") from None
    await session.refresh(user)
    return user


EMAIL_UNIQUE = "uq_users_email"
"""The email's unique constraint, as service.db's naming convention names it."""


_EMAIL_CONSTRAINT = re.compile(rf'"?{EMAIL_UNIQUE}(_\d+)?"?')
"""The constraint's name, or a Citus shard's (`uq_users_email_102008`)."""
_NAMED_IN_MESSAGE = re.compile(r'unique constraint "([^"]+)"')


def _email_taken(error: BaseException) -> bool:
    """A unique violation (23505) of the email's constraint, not of another one a tenant's table
    may have that the models do not know. On Citus the error comes from the shard, whose
    constraint carries the shard's id, and the coordinator passes on its message but not the
    constraint's name field: the name is then read from the message."""
    if getattr(error, "sqlstate", None) != "23505":
        return False
    name = getattr(error, "constraint_name", None)
    if not name:
        named = _NAMED_IN_MESSAGE.search(str(getattr(error, "message", None) or error))
        name = named.group(1) if named else ""
    return _EMAIL_CONSTRAINT.fullmatch(name) is not None


@router.get("", response_model=UserPage)
async def list_users(
    session: TenantSession, limit: PageLimit = 20, cursor: Cursor = None
) -> UserPage:
    users, next_cursor = await keyset_page(session, select(User), User.id, limit, cursor)
    return UserPage(items=[UserOut.model_validate(u) for u in users], next_cursor=next_cursor)
