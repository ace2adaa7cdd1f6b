"""The house's import rules (tests/support/structure.py reads them from the source with ast, so no
module is imported here): tenancy/ uses neither the app nor the benchmarks nor the tests, service/
neither the benchmarks nor the tests, bench/ and tests/ never each other; tenancy/ and service/
have no import cycle; and their modules import every project name from where it is defined.
Negative controls feed the checker a small tree with each fault."""

from pathlib import Path

import pytest

from service.paths import PROJECT_ROOT
from tests.support.structure import facade_imports, forbidden_imports, import_cycles, read_tree

KNOWN_FACADES: set[tuple[str, str, str]] = set()
"""Facades known to remain (none): a new one fails the test, as does an entry that is gone."""


@pytest.fixture(scope="module")
def tree() -> dict:
    return read_tree(PROJECT_ROOT)


def test_every_package_is_read(tree: dict) -> None:
    for package in ("tenancy", "service", "bench", "tests", "migrations"):
        assert any(name.split(".")[0] == package for name in tree), package
    assert "tests.test_structure" in tree and "tenancy.testing.fleets" in tree


def test_no_layer_imports_what_it_must_not(tree: dict) -> None:
    assert forbidden_imports(tree) == []


def test_tenancy_and_service_have_no_import_cycle(tree: dict) -> None:
    assert import_cycles(tree) == []


def test_no_name_is_imported_through_a_re_export(tree: dict) -> None:
    found = set(facade_imports(tree))
    assert found - KNOWN_FACADES == set()
    assert KNOWN_FACADES - found == set(), "gone now: take it off KNOWN_FACADES"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


CLEAN = {
    "tenancy/__init__.py": "",
    "tenancy/base.py": "import os\n\nVALUE = 1\n\n\ndef helper():\n    return VALUE\n",
    "tenancy/user.py": "from tenancy.base import VALUE, helper\nfrom os import path\n",
    "tenancy/sub/__init__.py": "",
    "tenancy/sub/rel.py": "from ..base import VALUE\nfrom . import deeper\n",
    "tenancy/sub/deeper.py": "from .. import base\n",
    "service/__init__.py": "",
    "service/app.py": "from tenancy import base\nfrom tenancy.base import helper\n\nAPP = 1\n",
    "bench/__init__.py": "",
    "bench/run.py": "from service.app import APP\nfrom tenancy.base import VALUE\n",
    "tests/__init__.py": "",
    "tests/test_x.py": "from service.app import APP\n",
    "migrations/env.py": "from service import app\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    tree = read_tree(write(tmp_path, CLEAN))
    assert forbidden_imports(tree) == []
    assert import_cycles(tree) == []
    assert facade_imports(tree) == []


@pytest.mark.negative_control
def test_negative_control_forbidden_imports_are_reported(tmp_path: Path) -> None:
    faults = {
        "tenancy/lazy.py": "def f():\n    from service.app import helper\n    return helper\n",
        "tenancy/typed.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        "    from tests.test_x import APP\n",  # for the type checker only: still a dependency
        "service/uses_bench.py": "import bench.run\n",
        "bench/uses_tests.py": "from tests.test_x import APP\n",
        "tests/uses_bench.py": "from bench import run\n",
    }
    found = forbidden_imports(read_tree(write(tmp_path, CLEAN | faults)))
    assert [line.split(" (")[0] for line in sorted(found)] == [
        "bench.uses_tests imports tests.test_x",
        "service.uses_bench imports bench.run",
        "tenancy.lazy imports service.app",
        "tenancy.typed imports tests.test_x",
        "tests.uses_bench imports bench",
    ]


@pytest.mark.negative_control
def test_negative_control_a_module_level_cycle_is_reported(tmp_path: Path) -> None:
    faults = {
        "tenancy/a.py": "from tenancy.b import B\n\nA = 1\n",
        "tenancy/b.py": "import tenancy.c\n\nB = 2\n",
        "tenancy/c.py": "from . import a\n",  # relative, a submodule: the cycle runs through it
        "service/late.py": "def f():\n    from service import later\n",
        "service/later.py": "from service.late import f\n",  # in a function only: no cycle
    }
    tree = read_tree(write(tmp_path, CLEAN | faults))
    assert import_cycles(tree) == [["tenancy.a", "tenancy.b", "tenancy.c"]]
    assert sorted(import_cycles(tree, module_level=False)) == [
        ["service.late", "service.later"],
        ["tenancy.a", "tenancy.b", "tenancy.c"],
    ]


@pytest.mark.negative_control
def test_negative_control_an_import_through_a_facade_is_reported(tmp_path: Path) -> None:
    faults = {
        "tenancy/facade.py": "from tenancy.base import VALUE, helper\n\nOWN = helper()\n",
        "service/through.py": "from tenancy.facade import OWN, VALUE\n",
        "tenancy/pkg/__init__.py": "from tenancy.pkg.inner import thing\n",
        "tenancy/pkg/inner.py": "thing = 1\n",
        "tenancy/through_pkg.py": "from tenancy.pkg import inner, thing\n",
        "bench/through.py": "from tenancy.facade import VALUE\n",  # bench is not judged
    }
    found = facade_imports(read_tree(write(tmp_path, CLEAN | faults)))
    assert sorted(found) == [
        ("service.through", "VALUE", "tenancy.facade"),
        ("tenancy.through_pkg", "thing", "tenancy.pkg"),
    ]


def test_every_benchmark_runs_as_a_module_without_editing_sys_path() -> None:
    edits = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for path in sorted((PROJECT_ROOT / "bench").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "sys.path" in line
    ]
    assert edits == []
