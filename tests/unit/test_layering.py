"""The house rules of bench/: dependencies point one way, no cycles, no private names across
modules, small modules. import-linter checks the layers (pyproject.toml [tool.importlinter]);
this file checks what it does not, from the source (imports inside functions count)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "bench").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """Module graph (every import, at any depth) and (importer, private name) pairs across modules."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private: list[tuple[str, str]] = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "bench":
                        target = _owner(a.name, mods)
                        if target and target != mod:
                            edges[mod].add(target)
                        aliases[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                if base.split(".")[0] != "bench":
                    continue
                for a in node.names:
                    full = f"{base}.{a.name}"
                    if full in mods:
                        if full != mod:
                            edges[mod].add(full)
                        aliases[a.asname or a.name] = full
                        continue
                    target = _owner(base, mods)
                    if target and target != mod:
                        edges[mod].add(target)
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            private.append((mod, full))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                target = aliases[node.value.id]
                if node.attr.startswith("_") and not node.attr.startswith("__") and target in mods and target != mod:
                    private.append((mod, f"{target}.{node.attr}"))
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_and_no_private_name_across_modules():
    mods = _modules()
    edges, private = _imports(mods)
    assert _cycles(edges) == []
    assert sorted(set(private)) == []


def test_the_checks_would_see_a_cycle_and_a_private_import():
    edges = {"bench.a": {"bench.b"}, "bench.b": {"bench.c"}, "bench.c": {"bench.a"}, "bench.d": set()}
    assert _cycles(edges) == [["bench.a", "bench.b", "bench.c"]]


def test_no_module_is_over_600_lines():
    sizes = {m: sum(1 for _ in p.open(encoding="utf-8")) for m, p in _modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_the_layers_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    out = subprocess.run([exe, "--no-cache", "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "1 kept, 0 broken" in out.stdout
