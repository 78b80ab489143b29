"""Fixtures shared by every test: emulators on 127.0.0.1 and clients pointed at them.

The session emulator is shared and reset between tests; a test that needs another queue model or
faults starts its own with ``make_emulator``. The client finds IAM and Global Search through
process environment variables, so every fixture that hands out an emulator also points the
environment at it for the test's duration.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.e2e.postgres import Postgres, PostgresUnavailable, throwaway_cluster

# Tests talk to 127.0.0.1 only: no proxy may intercept them.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

SMALL_BACKEND = "ibmq_manila"
EmulatorFactory = Callable[..., RunningEmulator]

# The files that take longest, longest first (seconds each on a fresh-clone run of December 6,
# 2 cores). pytest-xdist hands each worker whole files in collection order (dev.py turns off its
# reordering by test count, which sent these last), so the long files start first and the many
# short ones fill the tail: on that run one worker sat idle for minutes at the end, waiting for
# the other to finish the end-to-end files it had been given last.
LONGEST_FILES = (
    "tests/e2e/test_scale_out.py",  # 362 s
    "tests/e2e/test_deferred_waits.py",  # 188 s
    "tests/e2e/test_cancel_latency.py",  # 169 s
    "tests/e2e/test_prefect_outage.py",  # 155 s
    "tests/integration/lifecycle/test_job_rate_limit.py",  # 141 s
    "tests/e2e/test_killed_holders.py",  # 113 s
    "tests/e2e/test_cancel_stress.py",  # 107 s
    "tests/integration/lifecycle/test_reaper_missed_zombies.py",  # 106 s
    "tests/e2e/test_dead_supervisor.py",  # 97 s
    "tests/e2e/test_run_endings.py",  # 69 s
    "tests/integration/lifecycle/test_docs_examples.py",  # 66 s
    "tests/integration/emulator/test_sessions.py",  # 61 s
    "tests/integration/lifecycle/test_result_cache.py",  # 59 s
    "tests/integration/lifecycle/test_ibm_outage.py",  # 59 s
    "tests/integration/lifecycle/test_submit_threads.py",  # 49 s
    "tests/integration/lifecycle/test_qpu_budget.py",  # 45 s
    "tests/integration/lifecycle/test_bad_input.py",  # 42 s
    "tests/integration/emulator/test_faults.py",  # 41 s
    "tests/integration/lifecycle/test_jobs_cli.py",  # 39 s
    "tests/e2e/test_deployments.py",  # 38 s
    "tests/e2e/test_ui.py",  # 36 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest files first, in ``LONGEST_FILES``' order; the rest keep theirs."""
    rank = {path: index for index, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres | None]:
    """A throwaway PostgreSQL cluster for the session's Prefect servers; None where there is none.

    Prefect's servers run on it as a team's do: on SQLite one writer holds the whole database, and
    a write that meets another is answered 503 and sent again by the client 2 s later.
    """
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        warnings.warn(f"{exc}; the Prefect servers run on SQLite", stacklevel=1)
        yield None


@pytest.fixture(scope="session")
def session_emulator() -> Iterator[RunningEmulator]:
    """One emulator for the whole run: no queue delay, two execution slots per backend."""
    with start_emulator(EmulatorConfig(concurrency=2)) as emulator:
        yield emulator


@pytest.fixture
def emulator(session_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """The shared emulator, emptied of jobs and counters, with the environment pointing at it."""
    session_emulator.reset(jobs=True)
    for name, value in session_emulator.environment().items():
        monkeypatch.setenv(name, value)
    return session_emulator


@pytest.fixture
def make_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorFactory]:
    """Start emulators with their own settings; the environment points at the last one started."""
    started: list[RunningEmulator] = []

    def factory(**settings: Any) -> RunningEmulator:
        emulator = start_emulator(EmulatorConfig(**settings))
        started.append(emulator)
        for name, value in emulator.environment().items():
            monkeypatch.setenv(name, value)
        return emulator

    yield factory
    for emulator in started:
        emulator.close()
