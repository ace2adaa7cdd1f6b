"""What a `tenantry` command line imports: run it in a fresh interpreter, read its sys.modules.

`command_closure(argv)` runs one command line for real (entry point `service.cli.entry:main`, as the
console script does) and returns every module the process had imported when it exited.
`help_closures(argv_list)` runs several --help / usage-error lines one after the other in one
interpreter and returns what each added, so one subprocess covers every command's help.
"""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from service.paths import PROJECT_ROOT

DATABASE_LIBRARIES = ("sqlalchemy", "asyncpg", "alembic", "psycopg", "psycopg2")
WEB_LIBRARIES = ("fastapi", "starlette", "uvicorn")
WEB_MODULES = ("service.app", "service.admin", "service.songs", "service.todos", "service.users")
"""The HTTP side of the service: routers, schemas, the app. No CLI command needs any of it."""

_PROBE = """
import gc, json, sys
out, lines = sys.argv[1], json.loads(sys.argv[2])
from service.cli.entry import main
seen, report = set(sys.modules), []
for argv in lines:
    sys.argv = ["tenantry", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    added = sorted(set(sys.modules) - seen)
    report.append({"argv": argv, "code": code, "added": added, "gc": gc.isenabled()})
    seen = set(sys.modules)
with open(out, "w") as f:
    json.dump({"final": sorted(sys.modules), "runs": report}, f)
"""


@dataclass(frozen=True)
class Run:
    argv: list[str]
    code: int
    modules: frozenset[str]
    """Every module imported by the end of this run (for later runs in a shared interpreter,
    only what start-up and this run added)."""
    output: str
    gc_enabled: bool
    """Whether the garbage collector was on when the command line had run."""


def _probe(
    lines: Sequence[Sequence[str]], env: Mapping[str, str] | None, pythonpath: Path | None
) -> list[Run]:
    environment = dict(os.environ if env is None else env)
    if pythonpath is not None:  # a (broken) copy of the package shadows the real one
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), str(PROJECT_ROOT), environment.get("PYTHONPATH", "")]
        )
    with tempfile.TemporaryDirectory() as folder:
        report_path = Path(folder) / "modules.json"
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, str(report_path), json.dumps([list(a) for a in lines])],
            cwd=pythonpath or PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if not report_path.exists():
            raise RuntimeError(f"the probe died: {result.stderr}")
        report = json.loads(report_path.read_text())
    start = frozenset(report["final"]) - {m for run in report["runs"] for m in run["added"]}
    output = result.stdout + result.stderr
    return [
        Run(run["argv"], run["code"], start | frozenset(run["added"]), output, run["gc"])
        for run in report["runs"]
    ]


def command_closure(
    argv: Sequence[str], env: Mapping[str, str] | None = None, pythonpath: Path | None = None
) -> Run:
    """One command line in a fresh interpreter."""
    return _probe([argv], env, pythonpath)[0]


def help_closures(
    lines: Iterable[Sequence[str]],
    env: Mapping[str, str] | None = None,
    pythonpath: Path | None = None,
) -> list[Run]:
    """Several light command lines in one interpreter, each with what start-up and it imported."""
    return _probe(list(lines), env, pythonpath)


def offending(modules: Iterable[str], packages: Iterable[str]) -> list[str]:
    """The modules that are, or live inside, one of the packages."""
    wanted = tuple(packages)
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in wanted))
