"""The tenant track's `stamp head` SQL, cached on disk beside the revisions it was rendered from.

Rendering it needs Alembic (importing it is a good part of a short CLI process) and the whole
revision graph. The SQL only changes when the revisions, the alembic.ini or Alembic do, so it is
kept in `<script_location>/__pycache__/tenantry-stamp-<digest>.sql`, the digest taken over
exactly those: alembic.ini's bytes, Alembic's version, and the path and bytes of every file under
the versions folder. Any change gives another digest, so a stale file is never read; a config
this module does not follow (`version_locations`, a package `script_location`) or a folder it
cannot write just means rendering every time, as before.
"""

import configparser
import hashlib
import os
import tempfile
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

CACHE_PREFIX = "tenantry-stamp-"


@lru_cache(maxsize=8)
def cached_stamp_sql(alembic_ini: Path) -> str:
    """The tenant track's offline `stamp head` from an empty schema, as HeadDDL renders it."""
    located = _versions_folder(alembic_ini)
    cache = None
    if located is not None:
        script_location, versions = located
        cache = (
            script_location / "__pycache__" / f"{CACHE_PREFIX}{_digest(alembic_ini, versions)}.sql"
        )
        try:
            return cache.read_text()
        except OSError:
            pass
    sql = _render(alembic_ini)
    if cache is not None:
        _store(cache, sql)
    return sql


def _render(alembic_ini: Path) -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tenancy.lifecycle.build.head_ddl import stamp_sql

    script = ScriptDirectory.from_config(Config(alembic_ini))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError(f"no revisions in {script.dir}")
    return stamp_sql(script, head)


def _versions_folder(alembic_ini: Path) -> tuple[Path, Path] | None:
    """(script_location, its versions folder) from the ini's [alembic] section, read the way
    Alembic reads it (`%(here)s` is the ini's folder); None for what this does not follow."""
    parser = configparser.ConfigParser(defaults={"here": str(alembic_ini.resolve().parent)})
    try:
        parser.read(alembic_ini)
        options = parser["alembic"]
        location = options.get("script_location")
        if location is None or options.get("version_locations"):
            return None
    except (configparser.Error, KeyError):
        return None
    script_location = Path(location)
    if not script_location.is_absolute():  # relative to the working folder, or a package
        return None
    versions = script_location / "versions"
    return (script_location, versions) if versions.is_dir() else None


def _digest(alembic_ini: Path, versions: Path) -> str:
    digest = hashlib.sha256()
    digest.update(alembic_ini.read_bytes())
    digest.update(version("alembic").encode())
    for path in sorted(versions.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(str(path.relative_to(versions)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _store(cache: Path, sql: str) -> None:
    """Written whole or not at all (a rename); older stamps of this folder are removed."""
    try:
        cache.parent.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache.parent, suffix=".tmp", delete=False) as f:
            f.write(sql)
        os.replace(f.name, cache)
        for old in cache.parent.glob(f"{CACHE_PREFIX}*.sql"):
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only tree: render every time
