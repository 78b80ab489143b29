"""The job lifecycle as Prefect tasks, against the emulator and a real Prefect API.

One temporary Prefect API server (``prefect_test_harness``) serves the whole session, with its
home and result storage in a temporary directory, so a flow in another OS process can be pointed
at the same API and the same stored results. Jobs that may run at once use the shared ``emulator``;
jobs a test must see queued use the ``held`` emulator, which runs nothing until released (faults
are set on it at runtime and cleared by the next reset); a module that needs another queue model
or account starts its own. Every fixture that hands out an emulator points the environment at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import Artifact
from prefect.client.schemas.sorting import LogSort
from prefect.context import FlowRunContext
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_LOCAL_STORAGE_PATH,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    get_current_settings,
)
from prefect.testing.utilities import prefect_test_harness
from pydantic import SecretStr
from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from prefect_qiskit_jobs import PollPolicy
from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from prefect_qiskit_jobs.emulator.config import DEFAULT_API_KEY
from tests.e2e.conftest import running_prefect_server
from tests.e2e.postgres import Postgres
from tests.prefect_servers import talking_to

SMALL_BACKEND = "ibmq_manila"
SHOTS = 200
OPTIONS = {"default_shots": SHOTS}
HELD_QUEUE_DELAY = 600.0
# The held emulator accepts a second API key, for a second set of credentials on the same instance.
SECOND_API_KEY = "emulator-second-api-key"
# The variables the client reads its credentials from; a test unsets them to have none.
CLIENT_VARIABLES = ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_URL")
# Fast enough for tests; the schedule itself is unit-tested.
FAST_POLL = PollPolicy(initial=0.2, cap=1.0, jitter=0.1)
# The harness counts its startup wait in 0.1 s steps that ignore how long each health check takes;
# a fresh SQLite database runs every migration, which takes half a minute on a busy 2-core runner.
SERVER_STARTUP_STEPS = 600
STATUS_ROUTES = ("GET /jobs", "GET /jobs/{job_id}")
GUARD = 120.0  # seconds: only a defect ever reaches this
LIFECYCLE_DATABASE = "lifecycle"  # the session server's database in the PostgreSQL cluster


@pytest.fixture(scope="session", autouse=True)
def prefect_api(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres | None
) -> Iterator[dict[str, str]]:
    """A Prefect API for the session; yields the settings another process needs to share it.

    ``prefect server start`` on a database of its own in the session's PostgreSQL cluster, where
    there is one; else Prefect's test harness on SQLite.
    """
    home = tmp_path_factory.mktemp("prefect-home")
    settings: dict[Any, Any] = {
        PREFECT_HOME: home,
        PREFECT_LOCAL_STORAGE_PATH: home / "storage",
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with contextlib.ExitStack() as stack:
        if postgres is None:
            stack.enter_context(talking_to(settings))
            stack.enter_context(prefect_test_harness(SERVER_STARTUP_STEPS))
        else:
            database = postgres.create_database(LIFECYCLE_DATABASE)
            server = stack.enter_context(running_prefect_server(home, postgres, database_url=database))
            stack.enter_context(talking_to({**settings, PREFECT_API_URL: server.url}))
        yield get_current_settings().to_environment_variables(exclude_unset=True)


@pytest.fixture(scope="session")
def held_emulator() -> Iterator[RunningEmulator]:
    """An emulator whose jobs stay Queued until released, then run eight at a time."""
    keys = (SecretStr(DEFAULT_API_KEY), SecretStr(SECOND_API_KEY))
    config = EmulatorConfig(queue_delay=HELD_QUEUE_DELAY, concurrency=8, api_keys=keys)
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture
def held(held_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """The held-queue emulator, emptied and without faults, with the environment pointing at it."""
    held_emulator.reset(jobs=True)
    return point_environment_at(held_emulator, monkeypatch)


def current_flow_run_id() -> str:
    """The id of the flow run this code runs in."""
    context = FlowRunContext.get()
    assert context is not None
    assert context.flow_run is not None
    return str(context.flow_run.id)


def point_environment_at(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """Make ``IBMQuantumCredentials.from_environment()`` (and a bare client) use ``emulator``."""
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    return emulator


@pytest.fixture(scope="session")
def bell_isa() -> QuantumCircuit:
    """A Bell circuit transpiled for ibmq_manila (the emulator serves the same fake device)."""
    circuit = QuantumCircuit(2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    isa: QuantumCircuit = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)
    return isa


def counts_of(result: Any) -> dict[str, int]:
    counts: dict[str, int] = result[0].data.meas.get_counts()
    return counts


def assert_bell(counts: dict[str, int], shots: int = SHOTS) -> None:
    assert sum(counts.values()) == shots
    assert counts.get("00", 0) + counts.get("11", 0) >= 0.85 * shots, counts


async def until(condition: Callable[[], Any], what: str) -> Any:
    """Await ``condition()`` turning truthy (the emulator's counters move as requests arrive)."""
    deadline = time.monotonic() + GUARD
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def status_reads(stats: dict[str, Any]) -> int:
    """Status requests the emulator counted: listings plus single-job reads."""
    return sum(stats["routes"].get(route, 0) for route in STATUS_ROUTES)


@contextlib.contextmanager
def run_log_event(pattern: str, count: int = 1) -> Iterator[asyncio.Event]:
    """An event set once task runs of this process have logged ``count`` lines matching ``pattern``."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    seen: list[str] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if re.search(pattern, record.getMessage()):
                seen.append(record.getMessage())
                if len(seen) >= count:
                    loop.call_soon_threadsafe(event.set)

    handler = Handler()
    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(handler)
    try:
        yield event
    finally:
        logger.removeHandler(handler)


async def drain_logs() -> None:
    """Send every buffered run log line to the API before reading logs back."""
    drained = APILogWorker.drain_all()
    if inspect.isawaitable(drained):
        await drained


async def run_logs(flow_run_id: UUID | str) -> list[str]:
    """Every log line the Prefect API holds for a flow run (its task runs included), oldest first."""
    await drain_logs()
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(str(flow_run_id))])),
            sort=LogSort.TIMESTAMP_ASC,
            limit=200,
        )
    return [log.message for log in logs]


async def artifacts(*, flow_run_id: UUID | None = None, key: str | None = None) -> list[Artifact]:
    """Artifacts of a flow run, or with a key, as the Prefect API holds them."""
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
                key=ArtifactFilterKey(any_=[key]) if key else None,
            )
        )


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]
