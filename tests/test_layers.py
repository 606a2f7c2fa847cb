"""The import contract: the layers written in docs/architecture.md, held against the code.

Every import of a package module (type-checking imports included) runs to a lower rank or
stays inside its own part; nothing imports the package face from inside; no module imports
itself back; the core imports no I/O, clock, thread, storage or telemetry module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autoheal_otel"
FACE = "__init__"
#: The only modules outside the package the core may import: the language's own values, and
#: pydantic for the report's models. Everything else (files, clocks, threads, sockets, logging,
#: storage, telemetry, dynamic imports) is out of its reach.
CORE_MAY = frozenset({
    "__future__", "typing", "datetime", "dataclasses", "collections", "math", "bisect",
    "statistics", "enum", "json", "itertools", "functools", "types", "pydantic",
})  # fmt: skip
#: The package's modules the core may not import although their rank allows it.
CORE_NEVER = frozenset({"autoheal_otel.base._clock", "autoheal_otel.base._fs"})
#: Outside the package, the vocabulary (``base``, ``semconv``) imports none of these.
BASE_NEVER = frozenset({
    "threading", "socket", "subprocess", "sqlite3", "duckdb", "faiss", "redis",
    "opentelemetry", "importlib", "logging",
})  # fmt: skip


def ranks() -> dict[str, int]:
    """Return each part's rank, read from the ``layers`` block of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    table: dict[str, int] = {}
    for line in block.group(1).splitlines()[1:]:
        rank, _, rest = line.partition(" ")
        parts = rest.lstrip().split("  ")[0].split()  # the parts end at a double space
        for part in parts:
            assert part not in table, f"{part} is listed twice"
            table[part] = int(rank)
    return table


def part_of(module: str) -> str:
    """Return the part a module belongs to: its folder (or file) right under the package."""
    names = module.split(".")
    return names[1] if len(names) > 1 else FACE


def imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Return, per module of the package, every module it imports (package and outside)."""

    def module_of(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module_of(p): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base.split(".")[: len(base.split(".")) - node.level + 1]
                    origin = ".".join([*anchor, *([node.module] if node.module else [])])
                else:
                    origin = node.module or ""
                for alias in node.names:  # a submodule named by the import, else the module
                    sub = f"{origin}.{alias.name}"
                    targets.add(sub if sub in modules else origin)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = targets - {name}
    return graph


def violations(graph: dict[str, set[str]], table: dict[str, int]) -> list[str]:
    """Return every import that breaks the layers, as ``module -> target (why)``."""
    found = []
    for module, targets in sorted(graph.items()):
        mine = part_of(module)
        for target in sorted(targets):
            top = target.split(".")[0]
            if top != "autoheal_otel":
                if mine == "core" and top not in CORE_MAY:
                    found.append(f"{module} -> {target} (the core does no I/O)")
                elif mine in ("base", "semconv") and top in BASE_NEVER:
                    found.append(f"{module} -> {target} (the vocabulary does no I/O)")
                continue
            theirs = part_of(target)
            if theirs == FACE:
                found.append(f"{module} -> {target} (the package face is imported from inside)")
            elif theirs != mine and table[theirs] >= table[mine]:
                found.append(f"{module} -> {target} (rank {table[mine]} imports rank "
                             f"{table[theirs]})")  # fmt: skip
            elif mine == "core" and target in CORE_NEVER:
                found.append(f"{module} -> {target} (the core does no I/O)")
    return found


def dynamic_imports(package: Path = PACKAGE) -> list[str]:
    """Return every ``import_module`` / ``__import__`` call in the package (the import graph
    cannot see what they load), as ``module:line``."""
    found = []
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name.endswith("import_module") or name == "__import__":
                    found.append(f"{module}:{node.lineno}")
    return sorted(found)


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle among the package's modules, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done or name not in graph:
            return None
        for target in sorted(graph[name]):
            if (found := visit(target, [*path, name])) is not None:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        if (found := visit(name, [])) is not None:
            return found
    return None


def test_every_part_of_the_package_has_a_rank() -> None:
    """A new folder must be placed in the table before it can hold code."""
    table = ranks()
    parts = {part_of(m) for m in imports()}
    assert parts - set(table) == set(), f"parts without a rank: {parts - set(table)}"
    assert set(table) - parts == set(), f"ranked parts that do not exist: {set(table) - parts}"


def test_every_import_runs_down_the_layers() -> None:
    graph = imports()
    assert "autoheal_otel.core._ledger" in graph["autoheal_otel.core._calibration"]  # read
    assert violations(graph, ranks()) == []


def test_no_import_is_hidden_from_the_graph() -> None:
    """Every import is one the contract reads: none is made by name at run time."""
    assert dynamic_imports() == []


def test_no_import_cycle_at_all() -> None:
    """No module imports itself back, not even for type checking only."""
    assert cycle(imports()) is None


@pytest.mark.parametrize(
    ("planted", "why"),
    [
        (("autoheal_otel.core._machine", "autoheal_otel.runtime._publisher"), "rank 4 imports"),
        (("autoheal_otel.core._machine", "threading"), "the core does no I/O"),
        (("autoheal_otel.core._machine", "shutil"), "the core does no I/O"),
        (("autoheal_otel.core._machine", "importlib"), "the core does no I/O"),
        (("autoheal_otel.base._models", "duckdb"), "the vocabulary does no I/O"),
        (("autoheal_otel.semconv", "opentelemetry.trace"), "the vocabulary does no I/O"),
        (("autoheal_otel.core._machine", "autoheal_otel.base._clock"), "the core does no I/O"),
        (("autoheal_otel.sinks.jsonl", "autoheal_otel.runtime._manager"), "rank 5 imports"),
        (("autoheal_otel.runtime._manager", "autoheal_otel"), "package face"),
    ],
)
def test_the_contract_catches_a_planted_import(planted: tuple[str, str], why: str) -> None:
    """The checker is not vacuous: one forbidden import added to the real graph is named."""
    graph = imports()
    graph[planted[0]] = graph[planted[0]] | {planted[1]}
    found = violations(graph, ranks())
    assert len(found) == 1 and why in found[0] and planted[1] in found[0]


def test_the_cycle_check_catches_a_planted_cycle() -> None:
    graph = imports()
    graph["autoheal_otel.base._models"] = graph["autoheal_otel.base._models"] | {
        "autoheal_otel.core._machine"
    }
    found = cycle(graph)
    assert found is not None and found[0] == found[-1]


#: The ledger's changing methods: outside the core, only the machine's inputs may call them.
LEDGER_CHANGES = frozenset({"emit", "repeat", "move", "operator_move", "pause_all",
                            "clear_global_pause", "workflow"})  # fmt: skip
#: Modules outside the core allowed to change a ledger: the lab's lean replay machine (its own
#: ledger subclass).
LEDGER_WRITERS = {"autoheal_otel.lab.multi"}


#: Methods that change a container in place (a ledger's dict, set or deque).
MUTATORS = frozenset({"clear", "add", "update", "pop", "popitem", "append", "extend", "remove",
                      "discard", "setdefault", "appendleft", "extendleft"})  # fmt: skip


def _state(expr: str) -> bool:
    """Whether an expression reaches the machine's state: a ledger, or the machine's view."""
    return "ledger" in expr or re.search(r"\bview\b", expr) is not None


def ledger_changes(package: Path = PACKAGE) -> list[str]:
    """Return, outside the core, every change made to a ledger, as ``module:line``: a call of
    one of its changing methods, a change of one of its containers in place, an assignment
    (``=``, ``+=``, a subscript) through it or the machine's read-only ``view``, ``setattr``
    on either, and any read of a machine's private ``_ledger``."""
    found = []
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if part_of(module) == "core" or module in LEDGER_WRITERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = ast.unparse(node.func.value)
                if (node.func.attr in LEDGER_CHANGES and _state(owner)) or (
                    node.func.attr in MUTATORS and _state(owner) and "." in owner
                ):
                    found.append(f"{module}:{node.lineno}")
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "setattr":
                if node.args and _state(ast.unparse(node.args[0])):
                    found.append(f"{module}:{node.lineno}")
            elif isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute | ast.Subscript) and (
                        _state(ast.unparse(target.value))
                    ):
                        found.append(f"{module}:{node.lineno}")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr == "_ledger"
                and ast.unparse(node.value) != "self"
            ):
                found.append(f"{module}:{node.lineno}")
    return sorted(set(found))


def test_outside_the_core_the_machine_changes_only_through_its_inputs() -> None:
    """Collaborators hand a machine method to the manager's one input path; none of them
    writes to the ledger, so every change is an input, recorded in order and replayed."""
    assert ledger_changes() == []


def test_the_ledger_check_catches_a_planted_write(tmp_path: Path) -> None:
    package = tmp_path / "autoheal_otel"
    (package / "runtime").mkdir(parents=True)
    (package / "runtime" / "_x.py").write_text(
        "def f(machine):\n"
        "    machine.ledger.versioned = True\n"
        "    machine.ledger.emit([], 1)\n"
        "    machine.ledger.workflows['w'] = None\n"
        "    machine.ledger.probe_permits.clear()\n"
        "    setattr(machine.ledger, 'seq', 0)\n"
        "    self._ledger = machine.ledger\n"  # holding it is no change
        "    machine.view.glob.paused = False\n"
        "    machine.view.workflows['w'] = None\n"
        "    machine.view.probe_permits.clear()\n"
        "    machine.view.move(None)\n"
        "    state = machine._ledger\n"  # the machine's private ledger
        "    seen = machine.view.workflows.get('w')\n"  # reading is no change
    )
    assert ledger_changes(package) == sorted(
        f"autoheal_otel.runtime._x:{n}" for n in (2, 3, 4, 5, 6, 8, 9, 10, 11, 12)
    )
