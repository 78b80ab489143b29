"""Every Python block of the README runs as a user would run it, against the emulator.

Each block is written to a file and run with ``python`` in a fresh process, pointed at the
session's Prefect API, with a block named ``ibm-quantum`` saved there for the emulator and no
``QISKIT_IBM_*`` or emulator variables in its environment: the examples find IBM only through the
saved block's name, as the README tells users to. A README change that breaks an example fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_qiskit_jobs import IBMQuantumCredentials
from prefect_qiskit_jobs.emulator import RunningEmulator

ROOT = Path(__file__).resolve().parents[3]
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)
SAVED_NAME = "ibm-quantum"
# What the environment of an example must not hold: it finds IBM through the saved block only.
UNSET = ("QISKIT_IBM_", "IAM_URL", "GLOBAL_SEARCH_URL", "GLOBAL_CATALOG_URL")
# Counts of a Bell circuit: both 00 and 11 appear, in whatever order the dict holds them.
BELL_COUNTS = r"(?s)(?=.*'00': \d+)(?=.*'11': \d+)"
# What a block prints, when it prints results (checked beside its exit status).
EXPECTED_OUTPUT = {
    "async def bells": BELL_COUNTS,
    "def ghz_sizes": r"\{2: 0\.\d+, 3: 0\.\d+, 4: 0\.\d+\}",
    "start_emulator(": r"'ibm_brisbane'",
    "IBMQuantumJob(": BELL_COUNTS,
    "ibm_batch(backend": BELL_COUNTS,
}


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.fixture
async def saved_credentials(emulator: RunningEmulator) -> str:
    await IBMQuantumCredentials.for_emulator(emulator).save(SAVED_NAME, overwrite=True)
    return SAVED_NAME


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_readme_python_block_runs(
    index: int, saved_credentials: str, prefect_api: dict[str, str], tmp_path: Path
) -> None:
    source = BLOCKS[index]
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(source)
    env = {name: value for name, value in os.environ.items() if not name.startswith(UNSET)}
    env.update(prefect_api)
    env["PYTHONPATH"] = str(ROOT)

    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    failed = f"README block {index} failed:\n{source}\n{done.stdout}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, failed
    for marker, pattern in EXPECTED_OUTPUT.items():
        if marker in source:
            assert re.search(pattern, done.stdout), f"README block {index} printed {done.stdout!r}"
