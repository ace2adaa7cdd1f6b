"""The independent baseline: the FastAPI + async SQLAlchemy + asyncpg app a user would write
without Tenantry. It imports nothing from `service/` or `tenancy/` (its own models, schemas and
session dependency), so the comparison cannot inherit Tenantry's costs.

One `todos` table with the same columns, the same ORM queries as Tenantry's routes
(`GET /todos/{id}`: the live todo by primary key; `GET /todos?limit=20`: live todos newest
first, one row more than the page), `response_model`, and a `Depends` session that opens one
transaction with `begin()`. `BASELINE_DATABASE_URL` names its database;
`BASELINE_POOL_SIZE` (default 5) and `BASELINE_MAX_OVERFLOW` (default 10) size its pool.

    uvicorn --factory bench.independent.app:create_app
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, DateTime, Identity, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Todo(Base):
    __tablename__ = "todos"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    content: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TodoOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    content: str
    created_at: datetime
    updated_at: datetime


class TodoPage(BaseModel):
    items: list[TodoOut]
    next_cursor: str | None


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions() as session, session.begin():
        yield session


Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


def create_app(database_url: str | None = None) -> FastAPI:
    """The app; database_url defaults to BASELINE_DATABASE_URL."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, async_sessionmaker[AsyncSession]]]:
        engine = create_async_engine(
            database_url or os.environ["BASELINE_DATABASE_URL"],
            pool_size=int(os.environ.get("BASELINE_POOL_SIZE", "5")),
            max_overflow=int(os.environ.get("BASELINE_MAX_OVERFLOW", "10")),
        )
        try:
            yield {"sessions": async_sessionmaker(engine, expire_on_commit=False)}
        finally:
            await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/todos/{todo_id}", response_model=TodoOut)
    async def get_todo(todo_id: int, session: Session) -> Todo:
        todo = await session.scalar(
            select(Todo).where(Todo.id == todo_id, Todo.deleted_at.is_(None))
        )
        if todo is None:
            raise HTTPException(404, "Todo not found")
        return todo

    @app.get("/todos", response_model=TodoPage)
    async def list_todos(session: Session, limit: int = Query(20, ge=1, le=100)) -> TodoPage:
        live = select(Todo).where(Todo.deleted_at.is_(None)).order_by(Todo.id.desc())
        rows = list(await session.scalars(live.limit(limit + 1)))
        page = rows[:limit]
        cursor = str(page[-1].id) if len(rows) > limit else None
        return TodoPage(items=[TodoOut.model_validate(t) for t in page], next_cursor=cursor)

    return app
