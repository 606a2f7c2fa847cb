"""Tests use the public API and the documented seams, never a manager's private state.

A test that reads or patches ``manager._parts``, ``m._periodic`` or a store's ``_conn`` ties
itself to how a manager is built today, and shows users a way in that they cannot rely on.
What a test needs goes through ``autoheal_otel.testing``, ``run_background``, the audit log or
a public reader instead (README, "Testing what you build on it"). This test reads every test
module and fails on such a reach: an attribute of another object (not ``self``) named like a
manager's private part, read, assigned or passed by name to ``getattr``, ``setattr``,
``monkeypatch.setattr`` and the like, or written in a string other than a docstring (a
script a test runs in a child process).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
#: The modules that make up ``AutoHealManager``: every private name they use on ``self`` is
#: a manager's private part.
MANAGER = [
    ROOT / "autoheal_otel" / "runtime" / name
    for name in ("_manager.py", "_parts_view.py", "_operator_records.py")
]
#: The private parts of the other objects a manager is made of (its periodic checks, its
#: machine, the versioned store, the success store's connection, the audit sink's file).
OTHER_PARTS = frozenset({"_parts", "_periodic", "_machine", "_decide", "_store", "_conn", "_fd"})
#: (test file, function) -> why it may still reach in. Keep it empty but for a stated reason.
ALLOWED: dict[tuple[str, str], str] = {}
_BY_NAME = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def private_parts() -> frozenset[str]:
    """Return the names that are a manager's private parts (see :data:`MANAGER`)."""
    names = set(OTHER_PARTS)
    for path in MANAGER:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                names.add(node.attr)
    return frozenset(names)


def _reaches(tree: ast.AST, names: frozenset[str]) -> list[tuple[int, str, str]]:
    """Return (line, enclosing function, name) of every reach into ``names`` in ``tree``."""
    found: list[tuple[int, str, str]] = []
    # In a string: ``x._name`` where x is not self, nor a module of the package (a module
    # path names a module, not an object's part): the text of a child process's script.
    alternatives = "|".join(sorted(names))
    in_text = re.compile(
        rf"(?<![\w.])(?!self\.|cls\.|autoheal_otel\.)\w+(?:\.\w+)*\.({alternatives})\b"
    )
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            func = node.name
        if (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append((node.lineno, func, node.attr))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            found.extend((node.lineno, func, m.group(1)) for m in in_text.finditer(node.value))
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            callee = node.func
            called = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", "")
            name = node.args[1]
            if (
                called in _BY_NAME
                and isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and name.value in names
            ):
                found.append((node.lineno, func, name.value))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, "<module>")
    return found


def private_reaches(tests: Path = TESTS) -> tuple[list[str], set[tuple[str, str]]]:
    """Return the reaches not allowed (``file:line function .name``) and the allowed entries
    that were used."""
    names = private_parts()
    bad: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in sorted(tests.rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue  # its planted examples are the reaches it looks for
        rel = path.relative_to(tests).as_posix()
        for line, func, name in _reaches(ast.parse(path.read_text(), str(path)), names):
            if (rel, func) in ALLOWED:
                used.add((rel, func))
            else:
                bad.append(f"{rel}:{line} {func} .{name}")
    return bad, used


def test_no_test_reaches_into_a_managers_private_parts() -> None:
    """Every test goes through the public API or a documented seam (see the module)."""
    bad, used = private_reaches()
    assert bad == [], "use the public API or a documented seam instead:\n" + "\n".join(bad)
    stale = set(ALLOWED) - used
    assert not stale, f"no longer reaching in, remove from ALLOWED: {sorted(stale)}"


def test_the_check_catches_planted_reaches(tmp_path: Path) -> None:
    """Reads, writes and by-name access through other objects count; self and public names
    do not."""
    (tmp_path / "test_x.py").write_text(
        "import os\n"
        "def test_a(manager, m, monkeypatch, store, sink):\n"
        "    keeper = manager._parts.retention\n"  # 3
        "    m._periodic._sync_global = None\n"  # 4
        "    getattr(m, '_machine')\n"  # 5
        "    monkeypatch.setattr(m, '_decide', None)\n"  # 6
        "    store._conn.execute('x')\n"  # 7
        "    os.fsync(sink._fd)\n"  # 8
        "    m._artifacts\n"  # 9: a private name the manager uses on itself
        "    manager.policy, manager.run_background('retention')\n"
        "    os._exit(0)\n"
        "    setattr(m, 'policy', None)\n"
        "class Helper:\n"
        "    def f(self):\n"
        "        return self._parts, self._store\n"
        "def _running(manager):\n"  # allowed in another file only
        "    return manager._parts\n"  # 17
        'SCRIPT = f"""\n'
        "m = AutoHealManager({1})\n"
        "m._parts.retention.run_once()\n"  # 20: in a child process's script
        "self._store, text._private, '._parts in prose', 'autoheal_otel.core._machine'\n"
        '"""\n'
        "def test_b():\n"
        '    """Nothing reads manager._parts (a docstring says so)."""\n'
    )
    bad, used = private_reaches(tmp_path)
    assert bad == [
        "test_x.py:3 test_a ._parts",
        "test_x.py:4 test_a ._periodic",
        "test_x.py:5 test_a ._machine",
        "test_x.py:6 test_a ._decide",
        "test_x.py:7 test_a ._conn",
        "test_x.py:8 test_a ._fd",
        "test_x.py:9 test_a ._artifacts",
        "test_x.py:17 _running ._parts",
        "test_x.py:18 <module> ._parts",
    ]
    assert used == set()
