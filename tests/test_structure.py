"""The code's structure: imports run one way (no cycles, the library never imports the app)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("atlas", "ssl_attention")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module of ours that ``path`` imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from pkg import module` names the module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ``atlas`` and ``ssl_attention`` it imports."""
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_package_init(name: str, graph: dict[str, set[str]]) -> bool:
    return any(other.startswith(name + ".") for other in graph)


def test_no_import_cycles():
    graph = import_graph()
    # A package's __init__ that re-exports its submodules is not a dependency of those submodules:
    # `from ssl_attention.models.base import X` inside ssl_attention/models/ runs __init__ first, but the
    # edge that matters is to base. Drop the edges into package __init__ modules from their own members.
    graph = {
        name: {t for t in targets if not (_is_package_init(t, graph) and name.startswith(t + "."))}
        for name, targets in graph.items()
    }
    assert _cycles(graph) == []


def test_the_library_never_imports_the_app():
    graph = import_graph()
    offenders = {name: sorted(t for t in targets if t.split(".")[0] == "atlas")
                 for name, targets in graph.items() if name.split(".")[0] == "ssl_attention"}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_cycle_finder_finds_cycles():
    """Positive control: the checker reports a planted cycle, and a chain is not one."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def _long_functions(folder: Path) -> list[str]:
    """Functions of ``folder`` over 60 lines or with more than 8 parameters (``self``/``cls`` not counted)."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                count = sum(1 for a in params if a is not None and a.arg not in ("self", "cls"))
                lines = node.end_lineno - node.lineno + 1
                if lines > 60 or count > 8:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name}: {lines} lines, "
                                 f"{count} params")
    return found


def test_no_function_is_over_60_lines_or_takes_more_than_8_parameters():
    assert [f for package in PACKAGES for f in _long_functions(ROOT / package)] == []


def test_the_size_checker_finds_long_functions(tmp_path):
    """Positive control: a planted long function and a planted long parameter list are reported."""
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\ndef wide(a, b, c, d, e, f, g, h, i):\n    pass\n")
    found = _long_functions(tmp_path)
    assert len(found) == 2 and "long: 61 lines" in found[0] and "wide: 2 lines, 9 params" in found[1]


def test_the_app_keeps_at_most_ten_top_level_modules():
    """atlas/ is its stage packages (core, dataset, models, metrics, site) plus the command line around them."""
    modules = sorted(p.name for p in (ROOT / "atlas").glob("*.py"))
    assert len(modules) <= 10, modules
    assert {p.name for p in (ROOT / "atlas").iterdir() if (p / "__init__.py").is_file()} >= {
        "core", "dataset", "models", "metrics", "site"}
