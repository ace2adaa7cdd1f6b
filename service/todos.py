"""Todos: soft-deleted, listed newest first with a keyset cursor."""

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import Field
from sqlalchemy import func, select

from service.deps import TenantSession
from service.models import CONTENT_MAX, Todo
from service.paging import keyset_page
from service.schemas import (
    TENANT_PROBLEMS,
    Cursor,
    Output,
    PageLimit,
    RowId,
    StrictInput,
)
from tenancy.problems import not_found, problem_responses


class TodoIn(StrictInput):
    content: str = Field(min_length=1, max_length=CONTENT_MAX, examples=["Water the plants"])


class TodoOut(Output):
    id: int
    content: str
    created_at: datetime
    updated_at: datetime


class TodoPage(Output):
    items: list[TodoOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


NOT_FOUND = problem_responses(404)

router = APIRouter(prefix="/todos", tags=["todos"], responses=TENANT_PROBLEMS)


async def _live_todo(session: TenantSession, todo_id: int) -> Todo:
    todo = await session.scalar(select(Todo).where(Todo.id == todo_id, Todo.deleted_at.is_(None)))
    if todo is None:
        raise not_found("Todo")
    return todo


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TodoOut)
async def create_todo(body: TodoIn, session: TenantSession) -> Todo:
    todo = Todo(content=body.content)
    session.add(todo)
    await session.flush()
    await session.refresh(todo)
    return todo


@router.get("", response_model=TodoPage)
async def list_todos(
    session: TenantSession, limit: PageLimit = 20, cursor: Cursor = None
) -> TodoPage:
    live = select(Todo).where(Todo.deleted_at.is_(None))
    todos, next_cursor = await keyset_page(session, live, Todo.id, limit, cursor)
    return TodoPage(items=[TodoOut.model_validate(t) for t in todos], next_cursor=next_cursor)


@router.get("/{todo_id}", response_model=TodoOut, responses=NOT_FOUND)
async def get_todo(todo_id: RowId, session: TenantSession) -> Todo:
    return await _live_todo(session, todo_id)


@router.put("/{todo_id}", response_model=TodoOut, responses=NOT_FOUND)
async def update_todo(todo_id: RowId, body: TodoIn, session: TenantSession) -> Todo:
    todo = await _live_todo(session, todo_id)
    todo.content = body.content
    todo.updated_at = func.now()
    await session.flush()
    await session.refresh(todo)
    return todo


@router.delete("/{todo_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_todo(todo_id: RowId, session: TenantSession) -> Response:
    todo = await _live_todo(session, todo_id)
    todo.deleted_at = func.now()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
