"""The layout rules of docs/architecture.md, checked on the import graph (stdlib ``ast``, no import of ours).

Every import counts: at module level, inside functions, under ``TYPE_CHECKING``. Each rule returns the list of
its violations; the test prints them all, so one run shows everything a change broke.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = "arbiter_ops"
SANDBOX = "arbiter_sandbox"
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 12
# The one product module that may import the sandbox: it starts, finds or stops one.
SANDBOX_SEAM = "arbiter_ops.local"
# What the sandbox, a guest, may import of the product.
SANDBOX_ALLOWED = {
    "arbiter_ops.core.config",
    "arbiter_ops.core.errors",
    "arbiter_ops.ecs.taskdef",  # rendering the seed's task definitions
    "arbiter_ops.state.table",  # the state table's schema
    "arbiter_ops.billing.fingerprint",  # the webhook secret's fingerprint
}
CONCERNS = ("ecs", "images", "secrets", "billing", "db", "state", "checks", "commands")


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: dict[str, set[str]] = field(default_factory=dict)

    def lines(self, module: str) -> int:
        return len(self.modules[module].read_text(encoding="utf-8").splitlines())


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build_graph(root: Path, packages: Iterable[str] = (PRODUCT, SANDBOX)) -> Graph:
    graph = Graph()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph.modules[_module_name(root, path)] = path
    for name, path in graph.modules.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, is_package, node)
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    deps.add(child if child in graph.modules else base)
        graph.imports[name] = {d for d in deps if d in graph.modules and d != name}
    return graph


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# -- the rules ----------------------------------------------------------------------------------
def import_cycles(graph: Graph) -> list[str]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[str] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.imports.get(v, ())):
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
                found.append("import cycle: " + " -> ".join(sorted(component)))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def commands_not_leaves(graph: Graph) -> list[str]:
    cli = f"{PRODUCT}.cli"
    out = []
    for module, deps in sorted(graph.imports.items()):
        for dep in sorted(deps):
            if _in(dep, f"{PRODUCT}.commands") and dep != f"{PRODUCT}.commands" and module != cli:
                out.append(f"{module} imports the command {dep}: commands are leaves that only {cli} imports")
    return out


def sandbox_seams(graph: Graph) -> list[str]:
    importers = sorted(
        m for m, deps in graph.imports.items() if _in(m, PRODUCT) and any(_in(d, SANDBOX) for d in deps)
    )
    return [f"{m} imports the sandbox: only {SANDBOX_SEAM} may" for m in importers if m != SANDBOX_SEAM]


def sandbox_allow_list(graph: Graph) -> list[str]:
    out = []
    for module, deps in sorted(graph.imports.items()):
        if _in(module, SANDBOX):
            for dep in sorted(deps):
                if _in(dep, PRODUCT) and dep not in SANDBOX_ALLOWED and dep != PRODUCT:
                    out.append(f"{module} imports {dep}, which is not on the sandbox's allow-list")
    return out


def core_imports_concerns(graph: Graph) -> list[str]:
    out = []
    for module, deps in sorted(graph.imports.items()):
        if _in(module, f"{PRODUCT}.core"):
            for dep in sorted(deps):
                outside = not _in(dep, f"{PRODUCT}.core") and dep != PRODUCT
                if outside:
                    out.append(f"{module} imports {dep}: core/ imports nothing of the product outside core/")
    return out


def long_modules(graph: Graph) -> list[str]:
    return [
        f"{m} has {graph.lines(m)} lines (at most {MAX_LINES}: split it by meaning)"
        for m in sorted(graph.modules)
        if _in(m, PRODUCT) and graph.lines(m) > MAX_LINES
    ]


def crowded_top_level(graph: Graph) -> list[str]:
    top = [m for m, p in graph.modules.items() if m.count(".") == 1 and p.name != "__init__.py" and _in(m, PRODUCT)]
    top = sorted(top) + ([PRODUCT] if PRODUCT in graph.modules else [])
    if len(top) > MAX_TOP_LEVEL_MODULES:
        return [f"{PRODUCT}/ holds {len(top)} modules (at most {MAX_TOP_LEVEL_MODULES}): {', '.join(top)}"]
    return []


RULES = (
    import_cycles,
    commands_not_leaves,
    sandbox_seams,
    sandbox_allow_list,
    core_imports_concerns,
    long_modules,
    crowded_top_level,
)


def violations(graph: Graph) -> list[str]:
    return [v for rule in RULES for v in rule(graph)]


def test_the_tree_keeps_every_rule() -> None:
    graph = build_graph(ROOT)
    assert f"{PRODUCT}.cli" in graph.modules and SANDBOX in graph.modules  # the graph really was read
    found = violations(graph)
    for line in found:
        print(line)
    assert not found, f"{len(found)} layout violation(s):\n" + "\n".join(found)


# -- the rules catch what they should (a small tree with one violation of each) -----------------
def _tree(root: Path, files: dict[str, str]) -> Graph:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return build_graph(root)


GOOD = {
    "arbiter_ops/__init__.py": "",
    "arbiter_ops/cli.py": "def f():\n    from .commands import deploy\n",
    "arbiter_ops/local.py": "import arbiter_sandbox.runtime\n",
    "arbiter_ops/core/__init__.py": "",
    "arbiter_ops/core/errors.py": "",
    "arbiter_ops/core/config.py": "from .errors import X\n",
    "arbiter_ops/ecs/__init__.py": "",
    "arbiter_ops/ecs/taskdef.py": "from ..core.config import C\n",
    "arbiter_ops/commands/__init__.py": "",
    "arbiter_ops/commands/deploy.py": "from arbiter_ops.ecs import taskdef\n",
    "arbiter_sandbox/__init__.py": "",
    "arbiter_sandbox/runtime.py": "from arbiter_ops.core.config import C\nfrom arbiter_ops.ecs.taskdef import render\n",
}


def test_a_clean_tree_has_no_violation(tmp_path: Path) -> None:
    assert violations(_tree(tmp_path, GOOD)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # a cycle, through an import inside a function
        ({"arbiter_ops/core/errors.py": "def f():\n    from . import config\n"}, "import cycle"),
        # a cycle through a TYPE_CHECKING import
        (
            {"arbiter_ops/core/errors.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
             "    from .config import C\n"},
            "import cycle",
        ),
        ({"arbiter_ops/ecs/api.py": "from ..commands.deploy import plan\n"}, "commands are leaves"),
        ({"arbiter_ops/commands/render.py": "from .deploy import x\n"}, "commands are leaves"),
        ({"arbiter_ops/core/context.py": "def f():\n    import arbiter_sandbox.runtime\n"}, "only arbiter_ops.local"),
        (
            {"arbiter_ops/core/context.py": "", "arbiter_sandbox/seed.py": "from arbiter_ops.core.context import C\n"},
            "allow-list",
        ),
        ({"arbiter_ops/core/output.py": "from arbiter_ops.ecs import taskdef\n"}, "core/ imports nothing"),
        ({"arbiter_ops/ecs/big.py": "x = 1\n" * (MAX_LINES + 1)}, "lines (at most"),
        ({f"arbiter_ops/m{i}.py": "" for i in range(MAX_TOP_LEVEL_MODULES)}, "modules (at most"),
    ],
)
def test_each_rule_catches_its_violation(tmp_path: Path, change: dict[str, str], expected: str) -> None:
    found = violations(_tree(tmp_path, {**GOOD, **change}))
    assert any(expected in v for v in found), found
