"""Which revisions cannot be rendered as SQL ahead of time and need a live Alembic context.

A revision that reads the database (`op.get_bind()`, `inspect(...)`, the migration context's
bind) behaves differently per tenant, so its offline SQL is not the truth. Such revisions are
found by a conservative look at their source, or declared with a module-level
`requires_live_connection = True`. A false positive only costs speed: the tenant then goes
through a real migration context.
"""

import re
from functools import lru_cache
from pathlib import Path

from alembic.script import Script, ScriptDirectory

from tenancy.migrate.targets import Step, revisions_in

LIVE_MARKER = "requires_live_connection"
_READS_DATABASE = re.compile(r"\b(get_bind|get_context|inspect)\s*\(|\.bind\b")


def needs_live_connection(script: ScriptDirectory, step: Step) -> bool:
    return any(revision_needs_live_connection(r) for r in revisions_in(script, step))


@lru_cache(maxsize=1024)
def revision_needs_live_connection(revision: Script) -> bool:
    if getattr(revision.module, LIVE_MARKER, False):
        return True
    return _READS_DATABASE.search(Path(revision.path).read_text()) is not None
