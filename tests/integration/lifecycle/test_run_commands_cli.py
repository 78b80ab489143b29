"""``prefect-qiskit-jobs reap`` and ``resumer``: the package's errors as one line, as ``jobs`` shows them.

A person who runs the reaper without credentials, or names a block that is not saved, gets one
line saying what to fix and exit code 2, never a traceback; nothing reaches IBM. A command that
cannot reach the Prefect API says where it looked, in one line, and exits 1; one the Prefect API refuses
(a server started with an auth string) says which setting to fix, and exits 2.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner, Result

from prefect_qiskit_jobs.cli import app
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.emulator.server import free_port
from tests.e2e.conftest import PrefectServer, running_prefect_server
from tests.e2e.postgres import Postgres

from .conftest import CLIENT_VARIABLES

BAD_INPUT_EXIT = 2
FAILED_EXIT = 1
SECRET = "pr3fect-api-password"  # in the Prefect API URL or auth string: never shown
COMMANDS_ON_PREFECT = [["reap"], ["resumer", "--once"], ["automations", "crash-zombies"]]


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


@pytest.mark.parametrize("command", COMMANDS_ON_PREFECT)
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


@pytest.fixture(scope="module")
def guarded_server(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres | None
) -> Iterator[PrefectServer]:
    """``prefect server start`` with an auth string: it answers 401 to a client without that string."""
    database = postgres.create_database("guarded") if postgres is not None else None
    with running_prefect_server(
        tmp_path_factory.mktemp("guarded-home"),
        postgres,
        database_url=database,
        PREFECT_SERVER_API_AUTH_STRING=f"admin:{SECRET}-server",
    ) as server:
        yield server


@pytest.mark.parametrize("command", COMMANDS_ON_PREFECT)
@pytest.mark.parametrize("auth_string", [None, f"admin:{SECRET}"], ids=["no auth string", "a wrong one"])
def test_a_command_the_prefect_api_refuses_says_which_setting_to_fix_in_one_line(
    command: list[str], auth_string: str | None, guarded_server: PrefectServer, emulator: RunningEmulator
) -> None:
    with temporary_settings({PREFECT_API_URL: guarded_server.url, PREFECT_API_AUTH_STRING: auth_string}):
        result = run(*command)
    assert result.exit_code == BAD_INPUT_EXIT, (result.output, result.exception)
    assert result.output.splitlines()[-1:] == [
        f"Error: The Prefect API at {guarded_server.url} refused this process's credentials "
        "(401 Unauthorized): set PREFECT_API_AUTH_STRING to the server's auth string, "
        "or PREFECT_API_KEY for Prefect Cloud"
    ]
    assert "Traceback" not in result.output
    assert SECRET not in result.output
