"""The house's import rules, read from the source (ast: nothing is imported, no side effects).

Which layer may import which (tenancy/ is the library, service/ the app built on it, bench/ and
tests/ use both and never each other), no import cycle among the library's and the app's
modules, and no name imported through a module that only imports it itself (a re-export facade):
a reader follows an import to the module that defines the name."""

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("tenancy", "service", "bench", "tests", "migrations")

FORBIDDEN = {
    "tenancy": ("service", "bench", "tests"),
    "service": ("bench", "tests"),
    "bench": ("tests",),
    "tests": ("bench",),
}
"""Top-level package -> the top-level packages its modules must never import."""

CYCLE_FREE = ("tenancy", "service")
"""Packages whose modules form no import cycle (module-level imports)."""

NO_FACADES = ("tenancy", "service")
"""Packages whose modules import every project name from the module that defines it."""


@dataclass(frozen=True)
class Import:
    importer: str
    module: str
    """The imported module (absolute), for `from X import N` the X."""
    names: tuple[str, ...]
    """For `from X import a, b`: a, b; empty for `import X`."""
    line: int
    module_level: bool
    """Run when the importer is imported (not inside a function, nor under TYPE_CHECKING)."""


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    defined: set[str] = field(default_factory=set)
    """Names bound at module level other than by an import."""
    imported: set[str] = field(default_factory=set)
    """Names bound at module level by an import."""
    imports: list[Import] = field(default_factory=list)


def module_name(root: Path, path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def read_tree(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Module]:
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            name, is_package = module_name(root, path)
            module = Module(name, path, is_package)
            _read_module(module, ast.parse(path.read_text(), str(path)))
            modules[name] = module
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _read_module(module: Module, tree: ast.Module) -> None:
    package = module.name if module.is_package else module.name.rpartition(".")[0]

    def absolute(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def visit(nodes: list[ast.stmt], module_level: bool, top: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    module.imports.append(
                        Import(module.name, alias.name, (), node.lineno, module_level)
                    )
                    if top:
                        module.imported.add(alias.asname or alias.name.partition(".")[0])
            elif isinstance(node, ast.ImportFrom):
                names = tuple(alias.name for alias in node.names)
                module.imports.append(
                    Import(module.name, absolute(node), names, node.lineno, module_level)
                )
                if top:
                    module.imported.update(alias.asname or alias.name for alias in node.names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                if top:
                    module.defined.add(node.name)
                visit(node.body, False, False)
            elif isinstance(node, ast.ClassDef):
                if top:
                    module.defined.add(node.name)
                visit(node.body, module_level, False)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, False, top)
                visit(node.orelse, module_level, top)
            else:
                if top:
                    module.defined.update(_bound_names(node))
                children: list[ast.stmt] = []
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        children.append(child)
                    elif isinstance(child, ast.ExceptHandler | ast.match_case):
                        children.extend(child.body)
                visit(children, module_level, top)

    visit(tree.body, True, True)


def _bound_names(node: ast.stmt) -> Iterator[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    elif isinstance(node, ast.With | ast.AsyncWith):
        targets = [item.optional_vars for item in node.items if item.optional_vars]
    elif isinstance(node, ast.For | ast.AsyncFor):
        targets = [node.target]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                yield sub.id


def top_package(module: str) -> str:
    return module.partition(".")[0]


def forbidden_imports(modules: dict[str, Module]) -> list[str]:
    """Every import, at module level or in a function, of a package its layer must not use."""
    found = []
    for module in modules.values():
        banned = FORBIDDEN.get(top_package(module.name), ())
        for imp in module.imports:
            if imp.module and top_package(imp.module) in banned:
                where = f"{module.path.name}:{imp.line}"
                found.append(f"{module.name} imports {imp.module} ({where})")
    return found


def imported_modules(imp: Import, modules: dict[str, Module]) -> list[str]:
    """The project modules an import names: the module, and `from X import m`'s submodule m.
    (A package an import passes through is not counted: when a module of it imports a sibling
    during the package's own __init__, the package is already in sys.modules.)"""
    submodules = [f"{imp.module}.{name}" for name in imp.names]
    found = [target for target in submodules if target in modules]
    if len(found) < len(submodules) or not imp.names:  # some name is the module's own
        found.insert(0, imp.module)
    return [target for target in dict.fromkeys(found) if target in modules]


def import_cycles(
    modules: dict[str, Module], packages: Iterable[str] = CYCLE_FREE, module_level: bool = True
) -> list[list[str]]:
    """Strongly connected groups of modules (more than one, or one importing itself)."""
    scope = {name for name in modules if top_package(name) in tuple(packages)}
    graph: dict[str, set[str]] = {name: set() for name in scope}
    for name in scope:
        for imp in modules[name].imports:
            if module_level and not imp.module_level:
                continue
            graph[name].update(
                t for t in imported_modules(imp, modules) if t in scope and t != name
            )
    return [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def connect(start: str) -> None:  # iterative Tarjan: no recursion limit on long chains
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def facade_imports(
    modules: dict[str, Module], importers: Iterable[str] = NO_FACADES
) -> list[tuple[str, str, str]]:
    """(importer, name, X) for each `from X import name` in an importer's module where X is a
    project module that does not define the name but only imports it (stdlib and third-party
    modules are not read, so not judged)."""
    found = []
    for module in modules.values():
        if top_package(module.name) not in tuple(importers):
            continue
        for imp in module.imports:
            source = modules.get(imp.module)
            if source is None:
                continue
            for name in imp.names:
                if f"{imp.module}.{name}" in modules or name == "*":
                    continue  # a submodule, not a re-export
                if name in source.imported and name not in source.defined:
                    found.append((module.name, name, imp.module))
    return found
