"""The package's shape: imports flow one way (no cycles, imports inside functions included), each CLI module
is one command group that imports no other's, tests use the library rather than private CLI helpers, and the
CLI stays a thin layer of parsing and rendering."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
PACKAGE = "latentctl"
CLI_SHARED = {"latentctl.cli", "latentctl.cli.options", "latentctl.cli.render"}  # what every command module may import
# cli/ lines per command: fewer than issue 24 left (1,459 lines for 21 commands, 69 each), so that new commands
# come thinner than the ones it made thin
CLI_LINES_PER_COMMAND = 65


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((SOURCE / PACKAGE).rglob("*.py"))}


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every latentctl module ``tree`` imports, at any depth (inside functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:  # ``from pkg import module`` imports the module, else the package
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return {name for name in found if name in known and name != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imported(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for neighbour in sorted(graph[node]):
            if state.get(neighbour) == 1:
                return path[path.index(neighbour):] + [neighbour]
            if neighbour not in state and (found := visit(neighbour)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle_through_an_import_inside_a_function():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    tree = ast.parse("def f():\n    from latentctl import store\n")
    assert _imported(tree, "latentctl.hub", False, {"latentctl.hub", "latentctl.store"}) == {"latentctl.store"}


def test_no_import_cycles_even_through_imports_inside_functions():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_library_never_imports_the_cli():
    offenders = {module: sorted(name for name in imported if name.startswith("latentctl.cli"))
                 for module, imported in _graph().items()
                 if not module.startswith("latentctl.cli") and module != "latentctl.__main__"}
    assert {module: names for module, names in offenders.items() if names} == {}


def test_no_cli_module_imports_another_commands_module():
    graph = _graph()
    offenders = {module: sorted(name for name in imported if name.startswith("latentctl.cli.")
                                and name not in CLI_SHARED)
                 for module, imported in graph.items() if module.startswith("latentctl.cli.")}
    assert {module: names for module, names in offenders.items() if names} == {}


def test_tests_import_no_private_cli_helper():
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("latentctl.cli"):
                offenders += [f"{path.name}: {node.module}.{alias.name}" for alias in node.names
                              if alias.name.startswith("_")]
    assert offenders == []


def test_cli_is_a_thin_layer():
    from latentctl.cli import app

    lines = sum(len(path.read_text().splitlines()) for path in (SOURCE / PACKAGE / "cli").glob("*.py"))
    commands = len(app.registered_commands) + sum(len(group.typer_instance.registered_commands)
                                                  for group in app.registered_groups)
    assert commands >= 26  # data, train, models, hub, eval, directions and the verbs: the count is right
    assert lines < CLI_LINES_PER_COMMAND * commands, f"cli/ has {lines} lines for {commands} commands"
