"""The layout's rules, read from the source (AST), so they hold without importing anything.

- The emulator imports nothing from the plugin, so it can ship as a package of its own.
- The plugin imports the emulator only where a user asks for it: the CLI's emulator commands and
  ``IBMQuantumCredentials.for_emulator`` (deferred imports inside those functions).
- No plugin module reaches into another module's private names.
- Every lazily exported name is imported under ``TYPE_CHECKING`` too, where editors see it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import prefect_qiskit_jobs

PACKAGE = Path(prefect_qiskit_jobs.__file__).parent
EMULATOR = PACKAGE / "emulator"
# Where the plugin may import the emulator: functions a user calls to start or use one.
EMULATOR_USERS = {PACKAGE / "cli" / "emulator.py", PACKAGE / "blocks.py"}


def imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module, names, at module level) for every import in ``path``, relative ones made absolute."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module or ""]).strip(".")
            found.append((module, [alias.name for alias in node.names], id(node) in top_level))
    return found


def plugin_files() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if EMULATOR not in path.parents]


def test_the_emulator_imports_nothing_from_the_plugin() -> None:
    offending = [
        (path.name, module)
        for path in EMULATOR.rglob("*.py")
        for module, _, _ in imports(path)
        if module.startswith("prefect_qiskit_jobs") and not module.startswith("prefect_qiskit_jobs.emulator")
    ]

    assert offending == []


def test_the_plugin_imports_the_emulator_only_where_a_user_asks_for_it() -> None:
    offending = []
    for path in plugin_files():
        for module, names, at_top in imports(path):
            uses_emulator = module.startswith("prefect_qiskit_jobs.emulator") or "emulator" in names
            if (
                uses_emulator
                and module.startswith("prefect_qiskit_jobs")
                and (path not in EMULATOR_USERS or at_top)
            ):
                offending.append((str(path.relative_to(PACKAGE)), module))

    assert offending == []


def test_no_module_imports_another_modules_private_names() -> None:
    offending = [
        (str(path.relative_to(PACKAGE)), module, name)
        for path in plugin_files()
        for module, names, _ in imports(path)
        if module.startswith("prefect_qiskit_jobs")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]

    assert offending == []


def test_every_lazy_name_is_visible_to_type_checkers() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for item in node.body:
                if isinstance(item, ast.ImportFrom) and item.module:
                    typed |= {
                        alias.name: item.module.removeprefix("prefect_qiskit_jobs.") for alias in item.names
                    }
    lazy = {name: module for module, names in prefect_qiskit_jobs._LAZY.items() for name in names}

    assert typed == lazy
