"""Every tenant table: the ORM models, and nothing of HTTP (no FastAPI, no routers, no schemas).

`TenantBase.metadata` is complete once this module is imported: Alembic's target
(migrations/env.py), what onboarding builds (service/onboarding.py), what the routers query.
The CLI reaches the models through here without importing the web app.
"""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import TenantBase, created_at_column

TEXT_MAX = 200
CONTENT_MAX = 2000
EMAIL_MAX = 254
NAME_MAX = 200


class Song(TenantBase):
    __tablename__ = "songs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(TEXT_MAX))
    artist: Mapped[str] = mapped_column(String(TEXT_MAX))


class Todo(TenantBase):
    __tablename__ = "todos"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    content: Mapped[str] = mapped_column(String(CONTENT_MAX))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class User(TenantBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    created_at: Mapped[datetime] = created_at_column()


__all__ = ["Song", "TenantBase", "Todo", "User"]
