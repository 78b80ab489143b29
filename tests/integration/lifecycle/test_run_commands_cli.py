"""``prefect-qiskit-jobs reap`` and ``resumer``: the package's errors as one line, as ``jobs`` shows them.

A person who runs the reaper without credentials, or names a block that is not saved, gets one
line saying what to fix and exit code 2, never a traceback; nothing reaches IBM. A command that
cannot reach the Prefect API says where it looked, in one line, and exits 1.
"""

from __future__ import annotations

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner, Result

from prefect_qiskit_jobs.cli import app
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.emulator.server import free_port

from .conftest import CLIENT_VARIABLES

BAD_INPUT_EXIT = 2
FAILED_EXIT = 1
SECRET = "pr3fect-api-password"  # in the Prefect API URL: never shown


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
    assert SECRET not in result.output
    assert emulator.stats()["routes"] == {}


@pytest.mark.parametrize(
    "command",
    [
        ["reap"],
        ["resumer", "--once"],
        ["automations", "crash-zombies"],
    ],
)
def test_a_command_that_cannot_reach_the_prefect_api_says_so_in_one_line(
    command: list[str], emulator: RunningEmulator
) -> None:
    port = free_port()  # nothing listens there
    nowhere = f"http://127.0.0.1:{port}/api"
    with temporary_settings({PREFECT_API_URL: f"http://someone:{SECRET}@127.0.0.1:{port}/api"}):
        result = run(*command)
    assert result.exit_code == FAILED_EXIT, (result.output, result.exception)
    assert result.output.splitlines()[-1:] == [
        f"Error: Cannot reach the Prefect API at {nowhere}: start a server (prefect server start) "
        "or point PREFECT_API_URL at yours"
    ]
    assert "Traceback" not in result.output
    assert SECRET not in result.output
