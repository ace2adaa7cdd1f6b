"""A hostile input corpus, sent to every place a request carries input: the tenant header, path
ids, query parameters and JSON bodies. Each value gets its documented 4xx as problem+json, and
afterwards the database holds the same schemas and the same number of rows in every table.

Run against the API as the runtime role, with another tenant's key on every route as well.
"""

import json
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client, tenant_headers
from tests.api.test_auth import HOSTILE_TENANT_HEADERS
from tests.support.common import raw_request, row_counts, schema_names
from tests.support.routes import operations

PROBLEM = "application/problem+json"

HOSTILE_TEXT = [
    "'",
    '"',
    ";",
    "--",
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DROP TABLE todos",
    '"; DROP SCHEMA public CASCADE; --',
    "'); DROP SCHEMA tenantry CASCADE; --",
    "$$; DROP SCHEMA tenantry; $$",
    "\\",
    "%",
    "*",
    "public",
    "pg_catalog",
    "information_schema",
    "tenantry",
    "tenantry.tenants",
    "tenant_x",
    "pg_temp",
    "../",
    "../../etc/passwd",
    "..\\..\\",
    "a\x00b",
    "\x00",
    "x" * 5000,
    "\u0430\u0441\u043c\u0435",  # "acme" in Cyrillic look-alikes
    "\uff41\uff43\uff4d\uff45",  # fullwidth "acme"
    "\u0131",  # dotless i
    "\u0130",  # capital I with dot: lower-cases to two code points
    "a\u200bb",  # zero-width space
    "\u202etxt.exe",  # right-to-left override
    "1\u0661",  # Arabic-Indic digit one
    "\U0001f600",
]
"""Values that are text; the non-UTF-8 ones below can only be sent as raw bytes."""

NON_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xed\xa0\x80"]
"""The last is a UTF-16 surrogate: JSON can carry it, but it is no valid string (422, not 400)."""

BODY_ROUTES = [
    ("POST", "/todos", {"content": "x"}),
    ("PUT", "/todos/1", {"content": "x"}),
    ("POST", "/users", {"email": "someone@example.com", "name": "x"}),
    ("POST", "/songs", {"name": "x", "artist": "y"}),
]
LIST_ROUTES = ["/todos", "/users", "/songs"]


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""

    where: str
    method: str
    path: str
    body: bytes = b""
    tenant_header: bytes | None = None  # None: the tenant's own slug
    status: int = 422
    kind: str | None = "validation-error"  # None: refused by uvicorn before the app


def header_cases() -> list[Case]:
    values = HOSTILE_TENANT_HEADERS + [t.encode() for t in HOSTILE_TEXT] + NON_UTF8
    return [
        Case(
            "tenant header",
            method,
            "/todos",
            b'{"content": "x"}',
            value,
            400,
            "invalid-tenant-header",
        )
        for value in dict.fromkeys(values)
        for method in ("GET", "POST")
    ]


def path_cases() -> list[Case]:
    cases = []
    for value in [t.encode() for t in HOSTILE_TEXT] + NON_UTF8:
        encoded = quote(value, safe="")
        for method in ("GET", "PUT", "DELETE"):
            body = b'{"content": "x"}' if method == "PUT" else b""
            status, kind = path_answer(value)
            cases.append(Case("path id", method, f"/todos/{encoded}", body, None, status, kind))
    for number in ("0", "-1", "9223372036854775808", "1e3", "0x10", "\uff11", "\u0661"):
        cases.append(Case("path id", "GET", f"/todos/{quote(number)}"))
    return cases


def path_answer(value: bytes) -> tuple[int, str | None]:
    """%2F arrives decoded as '/': another route (404), or a trailing slash that the router
    redirects away (307, to the same path without it); anything else is no valid id (422)."""
    if value.endswith(b"/"):
        return 307, None
    if b"/" in value:
        return 404, "not-found"
    return 422, "validation-error"


def query_cases() -> list[Case]:
    cases = []
    for value in [t.encode() for t in HOSTILE_TEXT] + NON_UTF8:
        encoded = quote(value, safe="")
        for path in LIST_ROUTES:
            cases.append(Case("query", "GET", f"{path}?limit={encoded}"))
            cases.append(
                Case("query", "GET", f"{path}?cursor={encoded}", status=400, kind="invalid-cursor")
            )
    return cases


def body_cases() -> list[Case]:
    """A valid body made wrong in one place, whatever the value: an unknown key, a wrong type, a
    NUL, one character too many, broken JSON. (A hostile value in a valid body is data: see the
    test that stores it verbatim.)"""
    cases = []
    for value in HOSTILE_TEXT:
        for method, path, valid in BODY_ROUTES:
            bodies = [{**valid, value: value}]
            for field in valid:
                bodies.append({**valid, field: [value]})
                bodies.append({**valid, field: f"x\x00{value}"})
                bodies.append({**valid, field: value + "x" * 2001})
            cases += [Case("json body", method, path, json.dumps(b).encode()) for b in bodies]
            cases.append(Case("json body", method, path, b'{"content": ' + value.encode()))
    for raw in NON_UTF8:
        status, kind = (422, "validation-error") if raw == NON_UTF8[-1] else (400, "invalid-body")
        for method, path, _valid in BODY_ROUTES:
            body = b'{"content": "' + raw + b'"}'
            cases.append(Case("json body", method, path, body, status=status, kind=kind))
    return cases


CORPUS = header_cases() + path_cases() + query_cases() + body_cases()


async def send(api: str, tenant: CreatedTenant, case: Case) -> tuple[int, dict[str, str], bytes]:
    slug = case.tenant_header if case.tenant_header is not None else tenant.slug.encode()
    headers = [(b"X-Tenant-ID", slug), (b"Authorization", f"Bearer {tenant.api_key}".encode())]
    return await raw_request(api, case.method, case.path, headers, case.body)


def test_the_corpus_covers_every_input_position() -> None:
    sizes = {where: sum(c.where == where for c in CORPUS) for where in {c.where for c in CORPUS}}
    print(f"hostile corpus: {len(CORPUS)} requests {sizes}")
    assert set(sizes) == {"tenant header", "path id", "query", "json body"}
    assert min(sizes.values()) >= 50
    assert max(len(c.body) for c in CORPUS) < 32 * 1024  # below the body cap


async def test_every_hostile_request_gets_its_documented_4xx_and_changes_nothing(
    runtime_api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    schemas_before, rows_before = await schema_names(engine), await row_counts(engine)
    wrong, refused_by_the_server = [], 0
    for case in CORPUS:
        status, headers, body = await send(runtime_api, tenant, case)
        if headers.get("content-type") != PROBLEM and status == 400 and case.where != "json body":
            refused_by_the_server += 1  # bytes uvicorn will not pass on (NUL in a header, ...)
            continue
        if case.status == 307:
            location = headers.get("location", "")
            if status != 307 or not location.endswith(case.path.rsplit("%2F", 1)[0]):
                wrong.append((case, status, location))
            continue
        kind = json.loads(body).get("type", "").rsplit("/", 1)[-1] if body else None
        if (status, headers.get("content-type"), kind) != (case.status, PROBLEM, case.kind):
            wrong.append((case, status, body[:200]))
    assert wrong == []
    assert refused_by_the_server <= 10  # nearly all of them reached the app's own checks
    assert await schema_names(engine) == schemas_before
    assert await row_counts(engine) == rows_before


async def test_hostile_text_in_a_valid_body_is_stored_verbatim_and_touches_nothing_else(
    runtime_api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    storable = [t for t in HOSTILE_TEXT if "\x00" not in t and len(t) <= 2000]
    rows_before = await row_counts(engine)
    async with client(runtime_api, tenant.slug, tenant.api_key) as http:
        ids = [(await http.post("/todos", json={"content": t})).json()["id"] for t in storable]
        stored = [(await http.get(f"/todos/{i}")).json()["content"] for i in ids]
    assert stored == [t.strip() for t in storable]  # str_strip_whitespace is the only change
    rows_after = await row_counts(engine)
    todos = f"{tenant.schema}.todos"
    assert rows_after.pop(todos) == rows_before.pop(todos) + len(storable)
    assert rows_after == rows_before


async def test_a_key_used_with_another_tenants_header_is_401_on_every_route(
    runtime_api: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    ops = operations(create_app(TenancySettings()))
    tenant_ops = [op for op in ops if not op.is_public]
    assert len(tenant_ops) >= 9
    admin = [op for op in ops if op.path.startswith("/admin")]
    async with client(runtime_api) as http:
        for op in tenant_ops + admin:
            stolen = tenant_headers(other_tenant.slug, tenant.api_key)
            response = await http.request(op.method, op.sample_path(), headers=stolen, json={})
            assert response.status_code == 401, (op.method, op.path)
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["type"].endswith("/unauthorized")
        for op in tenant_ops:  # control: the rightful key gets past authentication
            own = tenant_headers(other_tenant.slug, other_tenant.api_key)
            response = await http.request(op.method, op.sample_path(), headers=own, json={})
            assert response.status_code != 401, (op.method, op.path)
