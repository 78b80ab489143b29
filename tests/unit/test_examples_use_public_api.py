"""The example flows, deployments, README and docs use only the package's public API, and the API
reference documents all of it.

Public means a name in ``prefect_qiskit_jobs.__all__`` or in ``prefect_qiskit_jobs.emulator.__all__``;
any other module of the package is private and may change under the examples. The docs' code blocks
checked are the runnable ones (```python) and the fragments that are not run (```py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import prefect_qiskit_jobs
import prefect_qiskit_jobs.emulator

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {
    "prefect_qiskit_jobs": set(prefect_qiskit_jobs.__all__),
    "prefect_qiskit_jobs.emulator": set(prefect_qiskit_jobs.emulator.__all__),
}


def sources() -> list[tuple[str, str]]:
    found = [(str(path.relative_to(ROOT)), path.read_text()) for path in sorted(ROOT.glob("flows/*.py"))]
    found += [
        (str(path.relative_to(ROOT)), path.read_text()) for path in sorted(ROOT.glob("deployments/*.py"))
    ]
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        blocks = re.findall(r"^```py(?:thon)?\n(.*?)^```", path.read_text(), flags=re.S | re.M)
        found += [(f"{path.relative_to(ROOT)} block {index}", block) for index, block in enumerate(blocks)]
    return found


def private_uses(source: str) -> list[str]:
    uses = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prefect_qiskit_jobs"):
            public = PUBLIC.get(node.module or "")
            names = [alias.name for alias in node.names]
            uses += [f"{node.module}.{name}" for name in names if public is None or name not in public]
        elif isinstance(node, ast.Import):
            uses += [
                a.name
                for a in node.names
                if a.name.startswith("prefect_qiskit_jobs.") and a.name not in PUBLIC
            ]
    return uses


@pytest.mark.parametrize(("where", "source"), sources(), ids=[where for where, _ in sources()])
def test_examples_import_only_public_names(where: str, source: str) -> None:
    assert private_uses(source) == []


def test_the_check_sees_a_private_import() -> None:
    assert private_uses("from prefect_qiskit_jobs.ibm.gateway import gateway_for") == [
        "prefect_qiskit_jobs.ibm.gateway.gateway_for"
    ]


def reference_entries() -> set[str]:
    """The objects the API reference pages render (``::: path`` lines of docs/reference/api)."""
    pages = sorted((ROOT / "docs" / "reference" / "api").glob("*.md"))
    return {m for page in pages for m in re.findall(r"^::: (\S+)$", page.read_text(), flags=re.M)}


def test_every_public_name_has_a_reference_entry_through_its_public_module() -> None:
    public = {f"{module}.{name}" for module, names in PUBLIC.items() for name in names}
    entries = reference_entries()
    assert sorted(public - entries) == []
    # Entries name objects through the public modules only: the private ones are being moved.
    assert sorted(entries - public) == []
