"""Files derived from the revisions, cached beside them under a name only those revisions give.

What Alembic derives from the revisions (the tenant track's stamp SQL, each track's head) only
changes when the revisions, alembic.ini or Alembic do, and deriving it means importing Alembic
(a good part of a short CLI process). So it is kept in
`<tenant script_location>/__pycache__/<prefix><digest><suffix>`, the digest taken over exactly
those: alembic.ini's bytes, Alembic's version, and the path and bytes of every file under each
track's versions folder (plus, for what is also derived from other files, such as the head
script from the tenant models, those files' bytes and their libraries' versions). Any change
gives another digest, so a stale file is never read; a config this module does not follow
(`version_locations`, a package `script_location`) or a folder it cannot write just means
deriving every time. Light to import: no Alembic, no SQLAlchemy.
"""

import configparser
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

TENANT_SECTION = "alembic"
SHARED_SECTION = "shared"
"""alembic.ini's sections: the tenant track (Alembic's default section) and the registry's."""


def cache_file(
    alembic_ini: Path,
    sections: Sequence[str],
    prefix: str,
    suffix: str,
    also: Sequence[Path] = (),
    libraries: Sequence[str] = ("alembic",),
) -> Path | None:
    """Where what is derived from these tracks' revisions, as they are now, is cached; None when
    the config is not one this module follows. `also`: more files it is derived from (a folder:
    every .py file under it), `libraries`: the packages whose version it depends on."""
    tenant = versions_folder(alembic_ini, TENANT_SECTION)
    located = [versions_folder(alembic_ini, section) for section in sections]
    if tenant is None or any(found is None for found in located):
        return None
    folders = [found[1] for found in located if found is not None]
    name = f"{prefix}{_digest(alembic_ini, folders, also, libraries)}{suffix}"
    return tenant[0] / "__pycache__" / name


def derived(
    alembic_ini: Path,
    sections: Sequence[str],
    prefix: str,
    suffix: str,
    derive: Callable[[], str],
    also: Sequence[Path] = (),
    libraries: Sequence[str] = ("alembic",),
) -> str:
    """The cached text, else derive() stored, unless a revision (or a file of `also`) changed
    while it ran (then another process, or the next call, derives it again)."""
    cache = cache_file(alembic_ini, sections, prefix, suffix, also, libraries)
    text = read_cached(cache)
    if text is None:
        text = derive()
        if cache_file(alembic_ini, sections, prefix, suffix, also, libraries) == cache:
            store(cache, text, prefix)
    return text


def read_cached(cache: Path | None) -> str | None:
    if cache is None:
        return None
    try:
        return cache.read_text()
    except OSError:
        return None


def store(cache: Path | None, text: str, prefix: str) -> None:
    """Written whole or not at all (a rename); older files of this prefix are removed."""
    if cache is None:
        return
    try:
        cache.parent.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache.parent, suffix=".tmp", delete=False) as f:
            f.write(text)
        os.replace(f.name, cache)
        for old in cache.parent.glob(f"{prefix}*{cache.suffix}"):
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only tree: derive every time


def versions_folder(alembic_ini: Path, section: str) -> tuple[Path, Path] | None:
    """(script_location, its versions folder) from one section of the ini, read the way Alembic
    reads it (`%(here)s` is the ini's folder); None for what this does not follow."""
    parser = configparser.ConfigParser(defaults={"here": str(alembic_ini.resolve().parent)})
    try:
        parser.read(alembic_ini)
        options = parser[section]
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


def _digest(
    alembic_ini: Path, folders: Sequence[Path], also: Sequence[Path], libraries: Sequence[str]
) -> str:
    digest = hashlib.sha256()
    digest.update(alembic_ini.read_bytes())
    for library in libraries:
        digest.update(version(library).encode() + b"\0")
    for number, versions in enumerate(folders):
        digest.update(f"\0track {number}\0".encode())
        for path in sorted(versions.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            digest.update(str(path.relative_to(versions)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for number, source in enumerate(also):
        digest.update(f"\0source {number}\0".encode())
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(source) if source.is_dir() else path.name).encode())
            digest.update(b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]
