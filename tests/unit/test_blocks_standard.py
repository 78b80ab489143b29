"""Prefect's conventions for integrations: the standard block suite, and registration without qiskit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from prefect_qiskit_jobs import IBMQuantumCredentials, IBMQuantumJob


class TestEveryBlock(BlockStandardTestSuite):
    @pytest.fixture(params=[IBMQuantumCredentials, IBMQuantumJob])
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        block: type[Block] = request.param
        return block

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """Prefect's own check downloads the logo; tests talk only to 127.0.0.1, so check the URL."""
        assert str(block._logo_url).startswith("https://")


def test_the_collection_entry_point_registers_the_blocks_without_importing_qiskit() -> None:
    script = """
import json, sys
from importlib.metadata import entry_points
from prefect.blocks.core import Block
(point,) = [p for p in entry_points(group="prefect.collections") if p.name == "prefect_qiskit_jobs"]
point.load()
blocks = [Block.get_block_class_from_key(k).__name__ for k in ("ibm-quantum-credentials", "ibm-quantum-job")]
qiskit = sorted(m for m in sys.modules if m.startswith("qiskit"))
print(json.dumps({"blocks": blocks, "qiskit": qiskit}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])

    assert found == {"blocks": ["IBMQuantumCredentials", "IBMQuantumJob"], "qiskit": []}
