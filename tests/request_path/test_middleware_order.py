"""The order of the ASGI layers is written once, in tenancy/middleware/__init__.py (issue 18): the
app's stack follows it, and docs/architecture.md carries the same list, word for word."""

import importlib
import re

import tenancy.middleware
from service.app import create_app
from service.paths import PROJECT_ROOT
from tenancy.settings import TenancySettings

SETTINGS = TenancySettings(database_url="postgresql+asyncpg://unused@127.0.0.1/unused")


def documented_list() -> str:
    """The numbered list of the package docstring, from "1. " to the blank line after it."""
    doc = tenancy.middleware.__doc__ or ""
    start = doc.index("\n1. ") + 1
    return doc[start : doc.index("\n\n", start)]


def documented_order() -> list[type]:
    """The classes the list names (`module.Class`, module inside tenancy.middleware), in order."""
    named = re.findall(r"^\d+\. `(\w+)\.(\w+)`", documented_list(), flags=re.MULTILINE)
    return [
        getattr(importlib.import_module(f"tenancy.middleware.{module}"), cls)
        for module, cls in named
    ]


def test_the_docstring_names_seven_layers() -> None:
    """Guards the two tests below against a list that parses to nothing."""
    assert len(documented_order()) == 7
    assert all(isinstance(layer, type) for layer in documented_order())


def test_the_app_stacks_the_layers_in_the_documented_order() -> None:
    app = create_app(SETTINGS)
    # user_middleware is outermost first, as the docstring is
    assert [m.cls for m in app.user_middleware] == documented_order()


def test_architecture_doc_carries_the_docstring_list() -> None:
    architecture = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    assert documented_list() in architecture
