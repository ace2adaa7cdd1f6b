"""Request limits: page size, strict and bounded input models; and API keys that never reach a
log. Every refusal is problem+json, never a 500. (The body size limit: tests/request_path/
test_body_size_limit.py.)"""

import logging
from collections.abc import Iterator

import pytest
from annotated_types import MaxLen
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.app import create_app
from service.db import TenantBase
from service.schemas import MAX_PAGE
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.registry import registry_metadata
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client, tenant_headers
from tests.support.project import ADMIN_TOKEN
from tests.support.routes import operations

PROBLEM = "application/problem+json"
TABLES = {table.name: table for table in TenantBase.metadata.sorted_tables} | {
    table.name: table for table in registry_metadata.sorted_tables
}


def api_routes() -> list[APIRoute]:
    return [op.route for op in operations(create_app(TenancySettings()))]


def body_models() -> list[tuple[APIRoute, type[BaseModel]]]:
    return [(r, r.body_field.field_info.annotation) for r in api_routes() if r.body_field]


def table_of(route: APIRoute) -> str:
    """/todos/{todo_id} -> todos, /admin/tenants -> tenants."""
    return [part for part in route.path.split("/") if part and "{" not in part][-1]


def max_length(field) -> int | None:
    return next((m.max_length for m in field.metadata if isinstance(m, MaxLen)), None)


# --- input models ----------------------------------------------------------------------------


def test_every_request_body_is_a_strict_model() -> None:
    models = body_models()
    assert len(models) >= 5  # POST/PUT todos, users, songs, admin tenants
    for route, model in models:
        assert model.model_config.get("extra") == "forbid", (route.path, model)


def test_every_string_field_is_bounded_by_its_column() -> None:
    checked = 0
    for route, model in body_models():
        table = TABLES[table_of(route)]
        for name, field in model.model_fields.items():
            limit = max_length(field)
            assert limit is not None, (model.__name__, name)
            column = table.columns.get(name)
            length = getattr(column.type, "length", None) if column is not None else None
            if length is not None:
                assert limit == length, (model.__name__, name, limit, length)
                checked += 1
    assert checked >= 5  # content (x2), email, name, song name, artist


async def test_strings_at_the_column_limit_pass_and_one_more_is_422(
    runtime_api: str, tenant: CreatedTenant
) -> None:
    async with client(runtime_api, tenant.slug, tenant.api_key) as http:
        assert (await http.post("/todos", json={"content": "é" * 2000})).status_code == 201
        response = await http.post("/todos", json={"content": "é" * 2001})
        assert response.status_code == 422
        assert response.json()["type"].endswith("/validation-error")
        song = {"name": "n" * 200, "artist": "a" * 201}
        assert (await http.post("/songs", json=song)).status_code == 422


async def test_page_size_is_capped_on_every_list_route(
    runtime_api: str, tenant: CreatedTenant
) -> None:
    lists = {
        r.path
        for r in api_routes()
        if "GET" in r.methods and any(p.name == "limit" for p in r.dependant.query_params)
    }
    assert sorted(lists) == ["/songs", "/todos", "/users"]
    async with client(runtime_api, tenant.slug, tenant.api_key) as http:
        for path in lists:
            assert (await http.get(path, params={"limit": MAX_PAGE})).status_code == 200
            response = await http.get(path, params={"limit": MAX_PAGE + 1})
            assert response.status_code == 422, path
            assert response.headers["content-type"] == PROBLEM


# --- API keys never logged -------------------------------------------------------------------


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything uvicorn (access log included) and SQLAlchemy (statements and their parameters)
    would write at DEBUG, captured."""
    names = ["", "uvicorn", "uvicorn.access", "uvicorn.error", "sqlalchemy.engine", "tenancy"]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.level, lg.handlers[:]) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        if caplog.handler not in lg.handlers:
            lg.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        for lg, (level, handlers) in zip(loggers, saved, strict=True):
            lg.setLevel(level)
            lg.handlers[:] = handlers


async def test_api_keys_never_appear_in_the_logs(
    runtime_api: str,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
    new_slug: str,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    async with client(runtime_api) as http:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        response = await http.post("/admin/tenants", json={"slug": f"{new_slug}-b"}, headers=admin)
        assert response.status_code == 201, response.text
        created = response.json()
        for slug, key in [
            (tenant.slug, tenant.api_key),  # the right key
            (tenant.slug, other_tenant.api_key),  # another tenant's key
            (created["slug"], created["api_key"]),  # a key just issued
            (tenant.api_key, tenant.api_key),  # a key where the slug belongs
        ]:
            await http.get("/todos", headers=tenant_headers(slug, key))
            await http.post("/todos", headers=tenant_headers(slug, key), json={"x": key})
    logged = "\n".join(r.getMessage() for r in every_log_record.records)
    assert "GET /todos" in logged  # the access log was captured
    assert created["key_id"] in logged  # so were SQL parameters (the key id is safe to log)
    for key in (tenant.api_key, other_tenant.api_key, created["api_key"]):
        secret = key.split("_", 2)[2]  # tnt_<key id>_<secret>: the secret may hold "_"
        assert len(secret) > 20
        assert secret not in logged
