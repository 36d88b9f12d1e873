"""The package structure CONTRIBUTING.md describes: acyclic imports, who may import whom, one torch file reader.

The import graph is read from the sources with ``ast``: every ``import`` statement counts, at module level or
inside a function (a lazy import is still a dependency), including those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lfcc_gmm", "rawnet", "cli", "antispoof_service")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str, root: Path = ROOT) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted((root / package).glob("*.py"))}


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module ``path`` imports; ``from P import x`` counts as ``P.x`` when that is a module
    under ``root`` (a submodule) and as ``P`` otherwise."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (root / Path(*candidate.split("."))).with_suffix(".py").is_file()
                found.add(candidate if is_module else base)
    return found


def graph(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Edges between the modules of ``package`` (itself included as its ``__init__``)."""
    own = modules(package, root)
    return {name: {target for target in imported_names(path, root) if target in own and target != name}
            for name, path in own.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"d"}}) == ["d", "d"]


def test_import_reader_sees_lazy_relative_and_type_only_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    for name in ("__init__", "a", "b", "c", "d"):
        (package / f"{name}.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nfrom . import b\nif TYPE_CHECKING:\n    from .c import C\n"
        "def f():\n    from pkg.d import g\n    import numpy\n"
    )
    assert imported_names(package / "a.py", tmp_path) == {"typing", "pkg.b", "pkg.c", "pkg.d", "numpy"}
    (package / "__init__.py").write_text("from . import __version__\n")
    assert imported_names(package / "__init__.py", tmp_path) == {"pkg"}


@pytest.mark.parametrize("package", PACKAGES)
def test_import_graph_is_acyclic(package):
    cycle = find_cycle(graph(package))
    assert cycle is None, f"import cycle in {package}: {' -> '.join(cycle or [])}"


# What each package may import from the others (CONTRIBUTING.md, "Where things live").
FORBIDDEN = {
    "lfcc_gmm": ("rawnet", "cli", "torch"),
    "rawnet": ("cli",),
    # The service serves every scorer through the scorer interface, plug-ins included: no model code of its own.
    "antispoof_service": ("rawnet", "cli", "torch"),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_their_layer_allows(package):
    wrong = sorted(
        f"{name} imports {target}"
        for name, path in modules(package).items()
        for target in imported_names(path)
        if target.split(".")[0] in FORBIDDEN[package]
    )
    assert not wrong, "\n".join(wrong)


def test_core_holds_no_path_into_the_data_folder():
    # The demo corpus belongs to the demo application (cli/demo.py), not to the library's defaults.
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "lfcc_gmm").glob("*.py")
                 if '"data"' in path.read_text(encoding="utf-8")]
    assert not offenders


def torch_load_calls(path: Path) -> int:
    calls = 0
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
            calls += 1
    return calls


def test_every_torch_file_is_read_in_one_place():
    calls = {str(path.relative_to(ROOT)): n for path in sorted((ROOT / "rawnet").glob("*.py"))
             if (n := torch_load_calls(path))}
    assert calls == {"rawnet/checkpoint.py": 1}


def is_click_command(node: ast.FunctionDef) -> bool:
    """Decorated with ``click.command``/``click.group`` or a group's ``.command(...)``."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr in ("command", "group"):
            return True
    return False


def logic_lines(node: ast.FunctionDef, source: list[str]) -> int:
    """Lines of the body that hold code: the docstring, blank lines and comments left out."""
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    if not body:
        return 0
    lines = source[body[0].lineno - 1 : node.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_click_commands_stay_thin():
    # CONTRIBUTING: a command parses its options, calls the library, prints; the work lives in the packages.
    sizes = {}
    for path in sorted((ROOT / "cli").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and is_click_command(node):
                sizes[f"{path.name}:{node.name}"] = logic_lines(node, text.splitlines())
    assert len(sizes) >= 15, sizes
    assert {name: n for name, n in sizes.items() if n > 30} == {}
