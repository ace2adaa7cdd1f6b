"""What importing one ASGI layer of tenancy.middleware pulls in (issue 18).

Each module is imported in a fresh interpreter and its sys.modules read. The state keys live in a
leaf module (tenancy.state_keys), so no layer imports the runtime's module (the engine, the
migration tracks, Alembic behind them), and the layers that touch no database import no database
library. The negative control runs the same probe on a copy of tenancy/ whose TenantMiddleware
imports the runtime again, as it did for its state key before, and sees the check fail.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from service.paths import PROJECT_ROOT

LAYERS = ("observer", "header_guard", "body_size", "tenant", "rate_limit", "vanished", "replay")
NO_DATABASE = ("observer", "header_guard", "body_size", "tenant")
"""The layers that never reach the database: not even SQLAlchemy or asyncpg is imported."""
DATABASE_LIBRARIES = ("alembic", "sqlalchemy", "asyncpg")


def imported_by(module: str, root: Path = PROJECT_ROOT) -> set[str]:
    """Every module a fresh interpreter holds after `import module` (tenancy found under root)."""
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def heavy(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m == "tenancy.runtime")


def layer_problems(root: Path = PROJECT_ROOT) -> dict[str, list[str]]:
    """Per layer, what it imports that it should not (empty lists: none)."""
    found = {}
    for layer in LAYERS:
        modules = imported_by(f"tenancy.middleware.{layer}", root)
        banned = DATABASE_LIBRARIES if layer in NO_DATABASE else ("alembic",)
        found[layer] = heavy(modules, banned) + sorted(
            m for m in modules if m.startswith(("tenancy.runtime", "tenancy.migrate"))
        )
    return found


def test_no_layer_imports_the_runtime_or_alembic() -> None:
    assert layer_problems() == {layer: [] for layer in LAYERS}


def test_the_package_itself_imports_no_layer() -> None:
    """`install` imports the layers when called: importing one layer runs only its own module."""
    modules = imported_by("tenancy.middleware")
    assert sorted(m for m in modules if m.startswith("tenancy.")) == ["tenancy.middleware"]
    assert not [m for m in modules if m.split(".")[0] in ("starlette", *DATABASE_LIBRARIES)]


def test_negative_control_a_layer_importing_the_runtime_is_caught(tmp_path: Path) -> None:
    shutil.copytree(PROJECT_ROOT / "tenancy", tmp_path / "tenancy")
    tenant = tmp_path / "tenancy" / "middleware" / "tenant.py"
    tenant.write_text(tenant.read_text() + "\nimport tenancy.runtime  # noqa: E402, F401\n")
    found = layer_problems(tmp_path)
    assert "tenancy.runtime" in found["tenant"]
    assert "sqlalchemy" in {m.split(".")[0] for m in found["tenant"]}
    # the copy, not the installed package, was imported: only the altered layer is caught
    assert [layer for layer, wrong in found.items() if wrong] == ["tenant"]
