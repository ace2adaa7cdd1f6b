"""The plan of a run: tenants grouped by (from, to), those already at the target left alone.

Grouping is what makes a fleet cheap: a group's SQL is rendered once and its liveness decided
once, however many tenants take the same step.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from alembic.script import ScriptDirectory

from tenancy.migrate.census import TenantRef, TenantVersion
from tenancy.migrate.liveness import needs_live_connection
from tenancy.migrate.targets import Step, UnknownRevision, step_for


@dataclass(frozen=True, slots=True)
class Group:
    step: Step
    live: bool
    """True when a revision of the step needs a live Alembic context (see liveness.py)."""
    tenants: tuple[TenantRef, ...]


@dataclass(frozen=True, slots=True)
class Unplannable:
    tenant: TenantRef
    revision: str | None
    reason: str
    schema_missing: bool = False


@dataclass
class Plan:
    groups: list[Group] = field(default_factory=list)
    current: list[TenantVersion] = field(default_factory=list)
    unplannable: list[Unplannable] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return sum(len(group.tenants) for group in self.groups)


def make_plan(script: ScriptDirectory, target: str, versions: Iterable[TenantVersion]) -> Plan:
    plan = Plan()
    steps: dict[str | None, Step | str] = {}
    members: dict[Step, list[TenantRef]] = {}
    for version in versions:
        if version.problem is not None:
            plan.unplannable.append(
                Unplannable(version.tenant, None, version.problem, version.schema_missing)
            )
            continue
        if version.revision not in steps:
            steps[version.revision] = _step_or_reason(script, target, version.revision)
        step = steps[version.revision]
        if isinstance(step, str):
            plan.unplannable.append(Unplannable(version.tenant, version.revision, step))
        elif step.from_rev == step.to_rev:
            plan.current.append(version)
        else:
            members.setdefault(step, []).append(version.tenant)
    plan.groups = [
        Group(step, needs_live_connection(script, step), tuple(tenants))
        for step, tenants in members.items()
    ]
    return plan


def _step_or_reason(script: ScriptDirectory, target: str, revision: str | None) -> Step | str:
    try:
        return step_for(script, target, revision)
    except UnknownRevision as exc:
        return str(exc)
