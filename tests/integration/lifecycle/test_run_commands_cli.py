"""``prefect-qiskit-jobs reap`` and ``resumer``: the package's errors as one line, as ``jobs`` shows them.

A person who runs the reaper without credentials, or names a block that is not saved, gets one
line saying what to fix and exit code 2, never a traceback; nothing reaches IBM.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from prefect_qiskit_jobs.cli import app
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import CLIENT_VARIABLES

BAD_INPUT_EXIT = 2


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["reap"], "QISKIT_IBM_TOKEN"),
        (["resumer", "--once", "--credentials", "no-such-block"], "no-such-block"),
    ],
)
def test_a_run_command_without_usable_credentials_says_so_in_one_line(
    command: list[str], named: str, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    result = run(*command)
    assert result.exit_code == BAD_INPUT_EXIT, (result.output, result.exception)
    [error] = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert named in error
    assert "Traceback" not in result.output
    assert emulator.stats()["routes"] == {}
