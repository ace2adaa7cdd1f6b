"""Every way a transaction enters a tenant schema lives in tenancy.search_path: no other module
spells one, every form sets the same search_path from a checked name, and every form ends with
its transaction."""

import ast
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.naming import InvalidSchemaName, tenant_search_path
from tenancy.observability.db_tag import quote_tag, request_tag
from tenancy.search_path import (
    ENTER_SCHEMA,
    ENTER_SCHEMA_ASYNCPG,
    ENTER_SCHEMA_TAGGED,
    ENTER_SCHEMA_WITH_LOCK_TIMEOUT,
    begin_suffix,
    enter_schema,
    psql_enter,
    search_path_value,
)

THE_ROOM = Path("tenancy/search_path.py")
PRODUCTION = ("tenancy", "service", "migrations")
TEST_ONLY = Path("tenancy/testing")
"""Test and benchmark kit: it may set a search_path the wrong way on purpose (counterexamples)."""
SETS_A_SEARCH_PATH = re.compile(
    r"set_config\(\s*'search_path'|\bSET\s+(?:LOCAL\s+)?search_path", re.I
)
CURRENT = "SELECT current_setting('search_path')"


def spellings(source: str) -> list[str]:
    """The string literals (f-string parts included, docstrings and other bare string statements
    left out) of a module's source that set a search_path."""
    tree = ast.parse(source)
    bare = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in bare
        and SETS_A_SEARCH_PATH.search(node.value)
    ]


def test_no_module_but_the_room_spells_a_search_path() -> None:
    found = {
        str(path.relative_to(PROJECT_ROOT)): hits
        for package in PRODUCTION
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        if TEST_ONLY not in path.relative_to(PROJECT_ROOT).parents
        and (hits := spellings(path.read_text()))
    }
    assert set(found) == {str(THE_ROOM)}, found
    assert len(found[str(THE_ROOM)]) >= 5  # the negative control below: the scan does see them


def test_negative_control_a_smuggled_spelling_is_seen_and_a_docstring_is_not() -> None:
    smuggled = '''"""Docs may say SET LOCAL search_path TO x."""
def enter(conn, schema):
    """set_config('search_path', ...) in a docstring is prose."""
    conn.execute(f"SET search_path TO {schema}")
'''
    assert spellings(smuggled) == ["SET search_path TO "]
    assert spellings('"""SET LOCAL search_path TO x"""\nX = 1\n') == []


def test_the_room_imports_no_sqlalchemy_until_a_sqlalchemy_form_is_used() -> None:
    probe = (
        "import sys, {module}; print('sqlalchemy' in sys.modules, end=' ');"
        "from tenancy.search_path import ENTER_SCHEMA; print('sqlalchemy' in sys.modules)"
    )

    def loaded(module: str) -> str:
        command = [sys.executable, "-c", probe.format(module=module)]
        return subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert loaded("tenancy.search_path") == "False True"
    assert loaded("tenancy.session") == "True True"  # negative control: the probe sees it


@pytest.mark.parametrize("schema", ["public", "tenantry", 'tenant_x"; DROP', "tenant_X"])
def test_every_form_refuses_a_name_that_is_not_a_tenant_schema(schema: str) -> None:
    for build in (search_path_value, begin_suffix, psql_enter):
        with pytest.raises(InvalidSchemaName):
            build(schema)


@pytest.fixture
async def raw(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        yield conn
    finally:
        await conn.close()


async def test_every_asyncpg_form_sets_the_path_for_its_transaction_only(
    raw: asyncpg.Connection, tenant: CreatedTenant
) -> None:
    default = await raw.fetchval(CURRENT)
    expected = tenant_search_path(tenant.schema)
    value = search_path_value(tenant.schema)
    bound = {
        "ENTER_SCHEMA_ASYNCPG": (ENTER_SCHEMA_ASYNCPG, value),
        "ENTER_SCHEMA_WITH_LOCK_TIMEOUT": (ENTER_SCHEMA_WITH_LOCK_TIMEOUT, value, "3s"),
    }
    for name, (statement, *args) in bound.items():
        async with raw.transaction():
            await raw.fetchrow(statement, *args)
            assert await raw.fetchval(CURRENT) == expected, name
        assert await raw.fetchval(CURRENT) == default, name
    for name, simple_query in {
        "begin_suffix": "BEGIN;" + begin_suffix(tenant.schema, "tenantry:probe"),
        "psql_enter": "BEGIN;\n" + psql_enter(tenant.schema),
    }.items():
        await raw.execute(simple_query)
        assert await raw.fetchval(CURRENT) == expected, name
        await raw.execute("ROLLBACK")
        assert await raw.fetchval(CURRENT) == default, name


async def test_every_sqlalchemy_form_sets_the_path_for_its_transaction_only(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    expected = tenant_search_path(tenant.schema)
    current = text(CURRENT)
    async with engine.connect() as conn:
        default = await conn.scalar(current)
        await conn.commit()
        forms = {
            "ENTER_SCHEMA": lambda: conn.execute(ENTER_SCHEMA, {"schema": expected}),
            "ENTER_SCHEMA_TAGGED": lambda: conn.execute(
                ENTER_SCHEMA_TAGGED, {"schema": expected, "tag": "tenantry:probe"}
            ),
            "enter_schema": lambda: conn.run_sync(enter_schema, tenant.schema),
            "enter_schema tagged": lambda: conn.run_sync(
                enter_schema, tenant.schema, "tenantry:probe"
            ),
        }
        for name, enter in forms.items():
            async with conn.begin():
                await enter()
                assert await conn.scalar(current) == expected, name
            assert await conn.scalar(current) == default, name
            await conn.rollback()


@pytest.mark.parametrize("tag", ["", "x" * 64, "it's", "tenantry:é", "a b", "a;b", "a\\b"])
def test_the_begin_suffix_refuses_a_tag_outside_its_alphabet(tag: str) -> None:
    """The tag is a SQL literal in the simple-query BEGIN: only [A-Za-z0-9._:-], 1 to 63."""
    with pytest.raises(ValueError, match="not a request tag"):
        quote_tag(tag)
    if tag:  # an empty tag means no tag at all
        with pytest.raises(ValueError, match="not a request tag"):
            begin_suffix("tenant_acme", tag)


def test_request_tags_keep_only_the_alphabet_and_63_bytes() -> None:
    tag = request_tag("tenantry", "acme", "a'b;c\\d" + "e" * 80)
    assert quote_tag(tag) == f"'{tag}'" and len(tag) == 63
    assert tag.startswith("tenantry:acme:a_b_c_d")


async def test_the_begin_suffix_tags_its_transaction_only(
    raw: asyncpg.Connection, tenant: CreatedTenant
) -> None:
    """The tag is the transaction's application_name and ends with it; the control: the same
    statement with is_local false leaves it behind, which this test would catch."""
    default = await raw.fetchval("SHOW application_name")
    await raw.execute("BEGIN;" + begin_suffix(tenant.schema, "tenantry:probe:tag-1"))
    inside = await raw.fetchval("SHOW application_name")
    await raw.execute("ROLLBACK")
    assert (inside, await raw.fetchval("SHOW application_name")) == (
        "tenantry:probe:tag-1",
        default,
    )
    leaky = begin_suffix(tenant.schema, "tenantry:probe:tag-2").replace(", true);", ", false);")
    await raw.execute("BEGIN;" + leaky + " COMMIT;")
    assert await raw.fetchval("SHOW application_name") == "tenantry:probe:tag-2"
    await raw.execute("RESET application_name")
