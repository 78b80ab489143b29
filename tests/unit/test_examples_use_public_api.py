"""The example flows, deployments and README use only the package's public API.

Public means a name in ``prefect_qiskit_jobs.__all__`` or in ``prefect_qiskit_jobs.emulator.__all__``;
any other module of the package is private and may change under the examples.
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
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)
    found += [(f"README.md python block {index}", block) for index, block in enumerate(blocks)]
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
