"""Layers import downward only: no import cycle between the modules of src/hone, nor between its
packages, read with `ast`.

Every import counts, lazy ones and `if TYPE_CHECKING:` ones too (a lazy import hides a cycle from
Python, not from the reader). Between modules, a package's `__init__` only re-exports, so edges to
and from it are left out, as in the before-stop hook's cycle finder this test follows; between
packages (`hone.envs`, `hone.feedback`, ...) an import through `__init__` counts like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_files(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `src` (a package is named by its `__init__`)."""
    mods = {}
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = path
    return mods


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name the module `name` in `path` imports (`from a import b` gives `a` and `a.b`)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the modules (not packages) of `src` it imports."""
    mods = module_files(src)
    return {
        m: {d for d in imported_names(m, p) if d in mods and d != m and mods[d].name != "__init__.py"}
        for m, p in mods.items()
        if p.name != "__init__.py"
    }


def package_graph(src: Path, root: str = "hone") -> dict[str, set[str]]:
    """`root`'s subpackages (`hone.envs`) -> the subpackages their modules import, through `__init__` or not."""
    mods = module_files(src)

    def top(m: str) -> str:
        return ".".join(m.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for m, p in mods.items():
        if m.startswith(root + "."):
            names = {top(d) for d in imported_names(m, p) if d.startswith(root + ".")}
            graph.setdefault(top(m), set()).update(d for d in names if d in mods and d != top(m))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan), sorted, as one cycle to report."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for d in sorted(graph.get(m, ())):
            if d not in index:
                visit(d)
                low[m] = min(low[m], low[d])
            elif d in on_stack:
                low[m] = min(low[m], index[d])
        if low[m] == index[m]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == m:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return sorted(found)


def test_the_cycle_finder_sees_lazy_relative_and_type_only_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import A\nfrom .b import B\n")  # re-exports: no edge
    (pkg / "a.py").write_text("from p import b\nA = 1\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import C\nB = 2\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import A\n")
    (pkg / "d.py").write_text("import p.a\n")  # imports into the cycle, not part of it
    assert import_graph(tmp_path)["p.a"] == {"p.b"}
    assert cycles(import_graph(tmp_path)) == [["p.a", "p.b", "p.sub.c"]]
    (pkg / "sub" / "c.py").write_text("import p\n")  # through the package: a re-export, not a cycle
    assert cycles(import_graph(tmp_path)) == []
    # Between subpackages, imports through `__init__` count: p.x imports p.y's package, p.y a module of p.x.
    for sub, code in (("x", "from p.y import Y\n"), ("y", "def f():\n    from p.x._m import M\n")):
        (pkg / sub).mkdir()
        (pkg / sub / "__init__.py").write_text("")
        (pkg / sub / "_m.py").write_text(code)
    assert cycles(import_graph(tmp_path)) == []
    assert cycles(package_graph(tmp_path, root="p")) == [["p.x", "p.y"]]


def test_no_import_cycles_between_modules_of_hone() -> None:
    graph = import_graph(SRC)
    assert len(graph) > 100  # the walk found the source tree
    found = cycles(graph)
    assert not found, "import cycles (move the shared piece a layer down):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_no_import_cycles_between_packages_of_hone() -> None:
    graph = package_graph(SRC)
    assert {"hone.core", "hone.envs", "hone.feedback", "hone.cli"} <= set(graph)
    assert "hone.core" in graph["hone.envs"]
    found = cycles(graph)
    assert not found, "import cycles between packages (a lower layer imports a higher one):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )
