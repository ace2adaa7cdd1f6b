"""The pool's connection policy: a connection is replaced after pool_max_uses checkouts, and 0
keeps it. (Moved from tests/request_path/test_request_path.py.)"""

from tenancy.database import create_engine
from tests.support.common import backend_pid
from tests.support.project import make_settings


async def backend_pids(database: str, pool_max_uses: int, checkouts: int) -> list[int]:
    """The backend behind each of `checkouts` checkouts from a pool of one connection."""
    settings = make_settings(database, pool_size=1, max_overflow=0, pool_max_uses=pool_max_uses)
    engine = create_engine(database, settings)
    pids = []
    try:
        for _ in range(checkouts):
            pids.append(await backend_pid(engine))
    finally:
        await engine.dispose()
    return pids


async def test_a_connection_is_replaced_after_pool_max_uses_checkouts(database: str) -> None:
    pids = await backend_pids(database, pool_max_uses=3, checkouts=7)
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5] != pids[2]
    assert pids[6] not in pids[:6]


async def test_pool_max_uses_zero_keeps_the_connection(database: str) -> None:
    assert len(set(await backend_pids(database, pool_max_uses=0, checkouts=7))) == 1
