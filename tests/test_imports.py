"""The import graph of hjax/ and envs/ is a tree of rooms (STYLE.md, point 12): no circles, and the
pure modules (the fused step and what it is built from) import nothing from the host side.

The graph is read from the source with `ast`, counting every import anywhere in a file, inside
functions included: a lazy import that dodges a circle at run time is a circle all the same."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folder -> the package it installs as (envs/ installs as hjax.envs; pyproject.toml)
PACKAGES = {"hjax": "hjax", "envs": "hjax.envs"}
PURE = ("hjax.step", "hjax.buffer", "hjax.her", "hjax.learner", "hjax.td3", "hjax.ddpg", "hjax.sac",
        "hjax.networks", "hjax.normalizer", "hjax.counter", "hjax.sharding", "hjax.config", "hjax.hyper")
HOST = ("hjax.loop", "hjax.runs", "hjax.rundir", "hjax.result", "hjax.loading", "hjax.cli", "hjax.plotting",
        "hjax.progress", "hjax.demo", "hjax.memory", "hjax.diagnosis", "hjax.distributed", "hjax.compile_cache",
        "hjax.program_cache", "hjax.sweeping", "hjax.stats")


def module_sources(root: Path = ROOT) -> dict[str, str]:
    """`{dotted module name: source}` of every .py file of the packages (a package is its __init__)."""
    sources = {}
    for folder, package in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            name = ".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)])
            sources[name] = path.read_text()
    return sources


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """`{module: modules of `sources` it imports}`, from every import statement in the file.

    `import a.b` and `from a import b` point at the module `a.b` when it is one of `sources`,
    else at the longest enclosing module that is (`a`, the package)."""
    names = set(sources)
    packages = {n for n in names if any(m.startswith(n + ".") for m in names)}

    def target(dotted: str) -> str | None:
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in names:
                return ".".join(parts[:i])
        return None

    graph = {}
    for name, source in sources.items():
        edges = set()
        package = name if name in packages else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(source, filename=name)):
            if isinstance(node, ast.Import):
                edges.update(target(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from .x import y, from .. import z
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    edges.add(target(f"{base}.{alias.name}") if f"{base}.{alias.name}" in names else target(base))
        edges.discard(None)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as `[a, b, ..., a]`, or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circle_in_hjax_or_envs():
    graph = import_graph(module_sources())
    assert {"hjax", "hjax.step", "hjax.loop", "hjax.envs", "hjax.envs.point_mass"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_pure_modules_import_nothing_from_the_host_side():
    graph = import_graph(module_sources())
    for module in PURE:
        assert module in graph, module
        host = reachable(graph, module) & set(HOST)
        assert not host, f"{module} imports host-side modules (directly or through others): {sorted(host)}"


def test_rooms_below_the_host_loop_depend_on_the_pure_step_only():
    graph = import_graph(module_sources())
    for module in ("hjax.runs", "hjax.memory", "hjax.result", "hjax.loading"):
        assert "hjax.step" in reachable(graph, module), module
        assert "hjax.loop" not in reachable(graph, module), module
    sources = module_sources()  # the live tracker lives in progress; diagnosis keeps the pure analysis
    assert "class Tracker" in sources["hjax.progress"] and "class Tracker" not in sources["hjax.diagnosis"]


def test_checker_sees_lazy_relative_and_package_imports():
    # A circle closed only by an import inside a function, one through a package __init__, and a
    # relative import: each must be found (the checker must be able to fail).
    lazy = {"p": "", "p.a": "from p.b import f\n", "p.b": "def f():\n    from p.a import g\n"}
    assert find_cycle(import_graph(lazy)) == ["p.a", "p.b", "p.a"]
    through_init = {"p": "from p.a import x\n", "p.a": "def v():\n    from p import version\n"}
    assert find_cycle(import_graph(through_init)) == ["p", "p.a", "p"]
    relative = {"p": "", "p.a": "from . import b\n", "p.b": "from .a import x\n"}
    assert find_cycle(import_graph(relative)) == ["p.a", "p.b", "p.a"]
    tree = {"p": "from p import a, b\n", "p.a": "import p.b\n", "p.b": "import numpy\n"}
    assert find_cycle(import_graph(tree)) is None
    assert reachable(import_graph(tree), "p.a") == {"p.b"}


def private_hjax_names(source: str) -> list[str]:
    """`_names` a file takes from hjax modules: `from hjax.x import _y` or `hjax.x._y` (none for
    text that is not Python, such as a docstring)."""
    found = []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "hjax":
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id == "hjax":
                found.append(ast.unparse(node))
    return found


def test_benchmarks_and_examples_use_public_names_only():
    assert private_hjax_names("from hjax.loop import _compiled\nhjax.loop._COMPILED\n") == [
        "hjax.loop._compiled", "hjax.loop._COMPILED"]  # the checker can fail
    offenders = {}
    for folder in ("benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            names = private_hjax_names(source)
            for literal in [n.value for n in ast.walk(ast.parse(source))  # worker scripts kept as strings
                            if isinstance(n, ast.Constant) and isinstance(n.value, str) and "import hjax" in n.value]:
                names += private_hjax_names(literal)
            if names:
                offenders[str(path.relative_to(ROOT))] = names
    assert not offenders, offenders
