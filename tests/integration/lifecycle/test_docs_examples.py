"""Every ```python block of README.md and of the docs runs as a user would run it, against the emulator.

Which blocks run: those fenced ```python (exactly that info string) in README.md and in
``docs/**/*.md``. A fragment that cannot run alone (made-up IBM credentials, one call out of a
flow) is fenced ```py instead: it renders the same and is not run. Each block is checked by
``tests/unit/test_examples_use_public_api.py`` for private imports either way.

Each runnable block is written to a file and run with ``python`` in a fresh process, pointed at the
session's Prefect API, with a block named ``ibm-quantum`` saved there for the emulator and no
``QISKIT_IBM_*`` or emulator variables in its environment: the examples find IBM only through the
saved block's name, as the docs tell users to. A docs change that breaks an example fails, and so
does a block whose output no longer matches what ``EXPECTED_OUTPUT`` says it prints.
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
RUNNABLE = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def runnable_blocks() -> list[tuple[str, str]]:
    """(where, source) of every runnable block, ``where`` naming its file and its place there."""
    found = []
    for path in documents():
        for index, block in enumerate(RUNNABLE.findall(path.read_text())):
            found.append((f"{path.relative_to(ROOT)}#{index}", block))
    return found


BLOCKS = runnable_blocks()
SAVED_NAME = "ibm-quantum"
# What the environment of an example must not hold: it finds IBM through the saved block only.
UNSET = ("QISKIT_IBM_", "IAM_URL", "GLOBAL_SEARCH_URL", "GLOBAL_CATALOG_URL")
# Counts of a Bell circuit: both 00 and 11 appear, in whatever order the dict holds them.
BELL_COUNTS = r"(?s)(?=.*'00': \d+)(?=.*'11': \d+)"
# What a block prints, when it prints results (checked beside its exit status): a block holding
# the marker must print something matching the pattern.
EXPECTED_OUTPUT = {
    "async def bells": BELL_COUNTS,
    "def ghz_sizes": r"\{2: 0\.\d+, 3: 0\.\d+, 4: 0\.\d+\}",
    "start_emulator(": r"'ibm_brisbane'",
    "IBMQuantumJob(": BELL_COUNTS,
    "ibm_batch(backend": BELL_COUNTS,
    'to_deployment(name="nightly")': r"nightly",
    "cache_policy=IBMJobCache()": r"same job: True same counts: True",
    "clean_up_jobs(": r"Would delete \d+ stored result\(s\) \(\d+ bytes\) and 0 IBM job\(s\); skipped \d+",
    "def within_budget": (
        r"seconds=5\.0 scope='flow-run'\nsubmitted d\w+\n"
        r"refused: budget 5\.0 s, spent \d\.\d\d s, estimate 7\.\d\d s"
    ),
}


def test_the_docs_have_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("marker", sorted(EXPECTED_OUTPUT))
def test_each_expected_output_belongs_to_a_block(marker: str) -> None:
    """A check whose block was removed or renamed would pass silently; it must be removed too."""
    assert any(marker in source for _, source in BLOCKS), f"no runnable block holds {marker!r}"


@pytest.fixture
async def saved_credentials(emulator: RunningEmulator) -> str:
    await IBMQuantumCredentials.for_emulator(emulator).save(SAVED_NAME, overwrite=True)
    return SAVED_NAME


@pytest.mark.parametrize(("where", "source"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_each_python_block_runs(
    where: str, source: str, saved_credentials: str, prefect_api: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
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

    failed = f"{where} failed:\n{source}\n{done.stdout}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, failed
    for marker, pattern in EXPECTED_OUTPUT.items():
        if marker in source:
            assert re.search(pattern, done.stdout), f"{where} printed {done.stdout!r}"
