"""Where one tenant goes: `--to` (a revision, `head`, `base`, `-N`, `+N`) resolved against the
revision the tenant is at, and whether that is an upgrade or a downgrade."""

import re
from dataclasses import dataclass
from functools import lru_cache

from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

from tenancy.migrate.tracks import step_function

_RELATIVE = re.compile(r"[+-][0-9]+")


class UnknownRevision(LookupError):
    """A revision the script directory does not know, or a target no tenant can reach."""


@dataclass(frozen=True, slots=True)
class Step:
    """A move from one revision to another: every tenant in a group takes the same one."""

    from_rev: str | None
    to_rev: str | None
    downgrade: bool

    @property
    def destination(self) -> str:
        """The destination as Alembic's commands name it (None is 'base')."""
        return self.to_rev or "base"

    def label(self) -> str:
        return f"{self.from_rev or 'base'} -> {self.destination}"


def check_target(script: ScriptDirectory, target: str) -> None:
    """Refuse a target that names no revision before anything is touched."""
    if target != "base" and not _RELATIVE.fullmatch(target):
        revision_of(script, target)


def step_for(script: ScriptDirectory, target: str, current: str | None) -> Step:
    """The step that takes a tenant at `current` to `target`; raises UnknownRevision."""
    if current is not None:
        revision_of(script, current)
    destination = _resolve(script, target, current)
    if destination == current:
        return Step(current, destination, downgrade=False)
    return Step(current, destination, downgrade=_is_downgrade(script, current, destination))


def revisions_in(script: ScriptDirectory, step: Step) -> list[Script]:
    """The revision scripts a step runs, in order (what Alembic itself would run)."""
    heads = () if step.from_rev is None else (step.from_rev,)
    run = step_function(script, step.destination, downgrade=step.downgrade)(heads, None)
    return [migration.revision for migration in run]


def revision_of(script: ScriptDirectory, name: str) -> Script:
    try:
        revision = script.get_revision(name)
    except CommandError as exc:
        raise UnknownRevision(str(exc).splitlines()[0]) from None
    if revision is None:
        raise UnknownRevision(f"no revision {name!r}")
    return revision


def _resolve(script: ScriptDirectory, target: str, current: str | None) -> str | None:
    if target == "base":
        return None
    if _RELATIVE.fullmatch(target):
        return _relative(script, current, int(target))
    return revision_of(script, target).revision


def _relative(script: ScriptDirectory, current: str | None, steps: int) -> str | None:
    """Walk `steps` revisions down (negative) or up (positive) a linear history."""
    position = current
    for _ in range(abs(steps)):
        if steps < 0:
            if position is None:
                raise UnknownRevision(f"{steps:+d} goes below base from {current or 'base'}")
            position = _single(revision_of(script, position).down_revision, position, "down")
        else:
            after = (
                set(script.get_bases())
                if position is None
                else revision_of(script, position).nextrev
            )
            if not after:
                raise UnknownRevision(f"{steps:+d} goes above head from {current or 'base'}")
            position = _single(tuple(after), position, "up")
    return position


def _single(revisions: str | tuple[str, ...] | None, at: str | None, way: str) -> str | None:
    if isinstance(revisions, tuple):
        if len(revisions) != 1:
            raise UnknownRevision(f"history branches {way} from {at or 'base'}: name a revision")
        return revisions[0]
    return revisions


def _is_downgrade(script: ScriptDirectory, current: str | None, destination: str | None) -> bool:
    if destination is None:
        return True
    if current is None or current in _ancestors(script, destination):
        return False
    if destination in _ancestors(script, current):
        return True
    raise UnknownRevision(f"{destination} is on another branch than {current}")


@lru_cache(maxsize=256)
def _ancestors(script: ScriptDirectory, revision: str) -> frozenset[str]:
    return frozenset(r.revision for r in script.iterate_revisions(revision, "base"))
