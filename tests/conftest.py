"""One throwaway database per test run, on TENANTRY_DATABASE_URL's server or the embedded one.

With TENANTRY_CITUS_WORKERS set, TENANTRY_DATABASE_URL is a Citus coordinator and every throwaway
database is created on all nodes of the cluster (tenancy/testing/citus.py).

The database is migrated with the real `alembic upgrade head`, every test talks to it through
real asyncpg connections, and it is dropped at the end: a user's own data is never touched.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.onboarding import tenant_blueprint
from service.paths import ALEMBIC_INI
from tenancy.database import bootstrap_url, create_engine
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.roles import grant_membership_on_workers, setup_roles
from tenancy.settings import TenancySettings, get_settings
from tenancy.testing.throwaway import create_test_database, drop_test_database, throwaway_url
from tests.support.common import known_to_running_apps, running_server
from tests.support.project import RUNTIME_ROLE, make_settings, run_alembic, skip_single_server_tests

pytest_plugins = ("tests.support.migrate",)  # the `fleet` fixtures of the migrate tests


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a Citus cluster (TENANTRY_CITUS_WORKERS) one-server-only tests are skipped, saying why."""
    skip_single_server_tests(items)


@pytest.fixture(scope="session")
def server_url() -> str:
    """A database URL on the server under test (embedded when TENANTRY_DATABASE_URL is unset)."""
    return asyncio.run(bootstrap_url(TenancySettings()))


@pytest.fixture(scope="session")
def database(server_url: str) -> Iterator[str]:
    """A fresh database at head; TENANTRY_DATABASE_URL points at it for the whole run."""
    url = throwaway_url(server_url)
    asyncio.run(create_test_database(url))
    saved = os.environ.get("TENANTRY_DATABASE_URL")
    os.environ["TENANTRY_DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        result = run_alembic("upgrade", "head")
        assert result.returncode == 0, result.stderr
        yield url
    finally:
        if saved is None:
            os.environ.pop("TENANTRY_DATABASE_URL", None)
        else:
            os.environ["TENANTRY_DATABASE_URL"] = saved
        get_settings.cache_clear()
        asyncio.run(drop_test_database(url))


@pytest.fixture(scope="session")
def settings(database: str) -> TenancySettings:
    return make_settings(database)


@pytest.fixture(scope="session")
def tracks() -> Tracks:
    return load_tracks(ALEMBIC_INI)


@pytest.fixture(scope="session")
def blueprint(tracks: Tracks) -> TenantBlueprint:
    """What the CLI and the admin API build new tenants from (the fast path)."""
    return tenant_blueprint(tracks)


@pytest_asyncio.fixture(scope="session")
async def engine(settings: TenancySettings) -> AsyncIterator[AsyncEngine]:
    """The owner's engine, for onboarding and for looking behind the API's back."""
    engine = create_engine(settings.database_url or "", settings)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def api(settings: TenancySettings) -> AsyncIterator[str]:
    """The real app under real uvicorn; yields its base URL."""
    async with running_server(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
async def fresh(server_url: str) -> AsyncIterator[tuple[dict[str, str], AsyncEngine]]:
    """An empty database, and the environment that points Alembic at it."""
    url = throwaway_url(server_url, "fresh")
    await create_test_database(url)
    engine = create_engine(url, TenancySettings(database_url=url))
    try:
        yield {**os.environ, "TENANTRY_DATABASE_URL": url}, engine
    finally:
        await engine.dispose()
        await drop_test_database(url)


@pytest.fixture
def new_slug() -> str:
    return "t-" + secrets.token_hex(5)


@pytest_asyncio.fixture
async def tenant(engine: AsyncEngine, blueprint: TenantBlueprint, new_slug: str) -> CreatedTenant:
    created = await create_tenant(engine, blueprint, new_slug)
    await known_to_running_apps(str(engine.url), created.slug)
    return created


@pytest_asyncio.fixture
async def other_tenant(engine: AsyncEngine, blueprint: TenantBlueprint) -> CreatedTenant:
    created = await create_tenant(engine, blueprint, "o-" + secrets.token_hex(5))
    await known_to_running_apps(str(engine.url), created.slug)
    return created


@pytest.fixture
def without_session_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    """For negative controls: BEGIN no longer resets what earlier transactions SET session-wide."""
    from tenancy import connection

    monkeypatch.setattr(connection, "RESET_SESSION", "")


@pytest_asyncio.fixture(scope="session")
async def runtime_url(database: str, engine: AsyncEngine) -> str:
    """The test database as the API's runtime role, which the owner sets up once."""
    async with engine.begin() as conn:
        done = await setup_roles(conn, RUNTIME_ROLE)
    async with engine.begin() as conn:  # after the commit, as `tenantry roles setup` does
        await grant_membership_on_workers(conn, done)
    return make_url(database).set(username=RUNTIME_ROLE).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def runtime_settings(database: str, runtime_url: str) -> TenancySettings:
    """Two roles, as in production: the API as the runtime role, onboarding as the owner."""
    return make_settings(runtime_url, owner_database_url=database)


@pytest_asyncio.fixture(scope="session")
async def runtime_api(runtime_settings: TenancySettings) -> AsyncIterator[str]:
    """The real app under real uvicorn, connected as the runtime role; yields its base URL."""
    async with running_server(create_app(runtime_settings)) as base_url:
        yield base_url
