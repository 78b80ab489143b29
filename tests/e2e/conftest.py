"""End-to-end fixtures: a real ``prefect server start`` on PostgreSQL, an emulator, and a serve process.

Everything runs as separate OS processes on 127.0.0.1, as in production: PostgreSQL (a throwaway
cluster of Debian's ``postgresql``, see ``postgres``; without it the server falls back to SQLite
with a warning, except in CI, where that is an error), the Prefect server on it, the
emulator (long queue delay, so jobs stay Queued until released or cancelled), and the process
that serves the scenario flows (``flow.serve``), which launches each flow run as its own child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from prefect_qiskit_jobs.emulator.server import free_port
from tests.e2e.postgres import Postgres
from tests.prefect_servers import talking_to

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
RUN_SECONDS = 3.0
SPARE_BACKENDS = ("lima", "belem", "quito", "bogota")
# The cancel-race test's own backend: a released job there never waits behind another test's
# unreleased ones, whatever order the test files run in (one worker runs them in any order).
RACE_BACKEND = "ibmq_jakarta"
# The serve process and the worker look for scheduled runs every second, not every ten.
POLL_QUICKLY = {"PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_WORKER_QUERY_SECONDS": "1"}
# Seconds a stopped ``prefect worker start`` is given before it is killed (see ``stop_worker``).
WORKER_STOP_GRACE = 5.0

pytestmark = pytest.mark.e2e


@dataclass
class PrefectServer:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    postgres: Postgres | None = None  # None: SQLite

    def environment(self) -> dict[str, str]:
        return {
            "PREFECT_API_URL": self.url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }


def _healthy(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            url + "/health", timeout=2
        ) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres | None
) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port, on ``postgres`` (else its own SQLite database)."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-home"), postgres) as server:
        yield server


@contextmanager
def running_prefect_server(
    home: Path, postgres: Postgres | None = None, database_url: str | None = None, **settings: str
) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port; ``settings``: more of the server's environment.

    On ``postgres`` (its own database, or ``database_url``), else on SQLite under ``home``.
    """
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **settings}
    env["PREFECT_API_LOG_RETRYABLE_ERRORS"] = "true"  # a 503 (e.g. SQLite locked) says why in server.log
    env.pop("PREFECT_API_URL", None)
    if postgres is not None:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url or postgres.url
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, _start_server(port, env, home), postgres)
    try:
        yield server
    finally:
        # Send the logs of in-process flow runs now: at interpreter exit the server would be gone.
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        stop_process(server.process, timeout=30)


def _start_server(port: int, env: dict[str, str], home: Path) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` on ``port``; return it once it answers."""
    env = {**env, "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}  # the UI asks the API here, not :4200
    with (home / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 180
    while not _healthy(f"http://127.0.0.1:{port}/api"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"prefect server did not start; see {home / 'server.log'}")
        time.sleep(0.25)
    return process


@contextmanager
def server_stopped(server: PrefectServer) -> Iterator[None]:
    """The server stopped for the block, then started again on its database and port (same URL).

    Its environment is taken from the stopped process, so it comes back exactly as it was.
    """
    env = psutil.Process(server.process.pid).environ()
    stop_process(server.process, timeout=30)
    try:
        yield
    finally:
        server.process = _start_server(int(server.url.split(":")[-1].split("/")[0]), env, server.home)


@pytest.fixture(autouse=True)
def _talk_to_the_e2e_server(prefect_server: PrefectServer) -> Iterator[None]:
    """Every e2e test's Prefect client talks to the real server, whatever other suites set up."""
    with talking_to({PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}):
        yield


@pytest.fixture(scope="session")
def iqp() -> Iterator[RunningEmulator]:
    """An emulator whose jobs stay Queued for ten minutes unless released or cancelled.

    A released job runs for at least ``RUN_SECONDS`` (long enough to be caught Running), and
    enough jobs run at once that releasing never leaves one waiting for a slot. Each backend has
    its own FIFO queue, in which a released job still waits for the unreleased ones ahead of it:
    tests that release jobs while other runs' jobs queue use a spare backend of their own.
    """
    config = EmulatorConfig(
        queue_delay=600,
        concurrency=4,
        min_run_seconds=RUN_SECONDS,
        backends=("manila", *SPARE_BACKENDS, "jakarta"),
    )
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture
def iqp_env(iqp: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    for name, value in iqp.environment().items():
        monkeypatch.setenv(name, value)
    return iqp


def scenario_environment(server: PrefectServer, emulator: RunningEmulator) -> dict[str, str]:
    env = {**os.environ, **server.environment(), **emulator.environment(), **POLL_QUICKLY}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextmanager
def serving(
    server: PrefectServer,
    emulator: RunningEmulator,
    log_name: str,
    deployments: list[str],
    *args: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A serve process (``serve_scenarios`` with ``args``) for ``emulator``, once it serves ``deployments``.

    A test whose emulator differs from ``iqp`` needs flow runs that submit to it: a serve process of its own.
    """
    process = start_logged(
        [sys.executable, "-m", "tests.e2e.serve_scenarios", *args],
        {**scenario_environment(server, emulator), **(extra_env or {})},
        server.home / log_name,
    )
    try:
        with talking_to({PREFECT_API_URL: server.url, PREFECT_HOME: str(server.home)}):
            asyncio.run(_until_deployments(deployments, process))
        yield process
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def served(prefect_server: PrefectServer, iqp: RunningEmulator) -> Iterator[subprocess.Popen[bytes]]:
    """A process serving the scenario flows' deployments, as ``flow.serve`` users run it."""
    names = ["e2e-awaited/e2e", "e2e-threaded/e2e", "e2e-unhooked/e2e", "e2e-detached/e2e", "e2e-synced/e2e"]
    with serving(prefect_server, iqp, "serve.log", names) as process:
        yield process


async def _until_deployments(names: list[str], process: subprocess.Popen[bytes]) -> None:
    async with get_client() as client:
        for name in names:

            async def exists(name: str = name) -> bool:
                if process.poll() is not None:
                    raise RuntimeError("the serve process exited")
                try:
                    await client.read_deployment_by_name(name)
                except Exception:
                    return False
                return True

            await eventually(exists, timeout=120, what=f"deployment {name}")


@pytest.fixture
async def prefect(prefect_server: PrefectServer) -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


async def eventually(check: Callable[[], Awaitable[T]], timeout: float, what: str, every: float = 0.25) -> T:
    """Await until ``check()`` returns something truthy: the state of another process we observe."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


def jobs_of_run(emulator: RunningEmulator, run_id: Any) -> list[dict[str, Any]]:
    tag = f"prefect-flow-run:{run_id}"
    return [job for job in emulator.jobs() if tag in job["tags"]]


def cli(env: dict[str, str], *args: str) -> str:
    """``prefect-qiskit-jobs ARGS`` in a fresh process; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect_qiskit_jobs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def start_logged(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    stop_processes([process], timeout)


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Stop a ``prefect worker start`` process: SIGTERM, then after a short grace kill it with its children.

    Prefect 3.9's worker turns a SIGTERM into a SIGINT to itself; at times (even idle) it then goes
    on polling and never exits, and ``stop_process`` killed it only after waiting its whole minute.
    A worker that does stop on SIGTERM does so within about two seconds.
    """
    stop_process(process, timeout=WORKER_STOP_GRACE)


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """SIGTERM them all at once, wait ``timeout`` in all, then SIGKILL what is left, with its children."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(psutil.NoSuchProcess):
                kill_tree(process.pid)
            process.wait()


POOL = "e2e-process-pool"
WORKER_DEPLOYMENT = "e2e-awaited/e2e-worker"


def create_process_pool(name: str) -> None:
    """A process work pool (replacing one of that name); call with the e2e server's settings."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    async def create() -> None:
        async with get_client() as client:
            template = ProcessWorker.get_default_base_job_template()
            await client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template), overwrite=True
            )

    asyncio.run(create())


@contextmanager
def worker(
    server: PrefectServer,
    emulator: RunningEmulator,
    pool: str,
    log_name: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``prefect worker start`` for ``pool``, once the server lists it polling; stopped after."""
    process = start_logged(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
        {**scenario_environment(server, emulator), **(extra_env or {})},
        server.home / log_name,
    )

    async def worker_polling() -> None:
        async with get_client() as client:

            async def polled() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {server.home / log_name}")
                return bool(await client.read_workers_for_work_pool(pool))

            await eventually(polled, timeout=120, what=f"a worker polling {pool}")

    try:
        with talking_to({PREFECT_API_URL: server.url, PREFECT_HOME: str(server.home)}):
            asyncio.run(worker_polling())
        yield process
    finally:
        stop_worker(process)


@pytest.fixture(scope="session")
def process_worker(prefect_server: PrefectServer, iqp: RunningEmulator) -> Iterator[str]:
    """A process work pool, the awaited scenario deployed to it from local source, and a worker.

    Returns the deployment's name. The worker runs each flow run as ``python -m prefect.engine``
    in the source directory, and runs ``on_cancellation`` hooks in yet another process.
    """
    from prefect.flows import Flow

    with talking_to({PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}):
        create_process_pool(POOL)
        flow = Flow.from_source(source=str(ROOT), entrypoint="tests/e2e/scenario_flows.py:awaited")
        flow.deploy(name="e2e-worker", work_pool_name=POOL, print_next_steps=False, build=False, push=False)
    with worker(prefect_server, iqp, POOL, "worker.log"):
        yield WORKER_DEPLOYMENT


async def cancel_through_api(prefect: PrefectClient, run_id: Any) -> None:
    """Cancel a run as the UI's Cancel button does: propose CANCELLING."""
    from prefect.client.schemas.objects import StateType
    from prefect.states import State

    await prefect.set_flow_run_state(run_id, State(type=StateType.CANCELLING, name="Cancelling"))


async def final_state(prefect: PrefectClient, run_id: Any, timeout: float = 120, every: float = 0.25) -> Any:
    """The run's final state type, once it has one; ``every``: how often to look."""

    async def ended() -> Any:
        state = (await prefect.read_flow_run(run_id)).state
        return state.type if state is not None and state.is_final() else None

    return await eventually(ended, timeout, f"flow run {run_id} to end", every)


async def until_awaited(
    prefect: PrefectClient, emulator: RunningEmulator, run_id: Any, count: int = 3, timeout: float = 120
) -> None:
    """Wait until the run's ``count`` jobs are queued and its log says the sensor saw each one queued.

    The run's log is what a user watching the run sees; it fails at once if the run ends first.
    """

    async def awaited() -> bool:
        jobs = jobs_of_run(emulator, run_id)
        if len(jobs) == count:
            lines = await run_log_lines(prefect, run_id)
            seen = [f"Job {job['id']} on {job['backend']} is QUEUED" for job in jobs]
            if all(any(line.startswith(said) for line in lines) for said in seen):
                return True
        state = (await prefect.read_flow_run(run_id)).state
        if state is not None and state.is_final():
            raise AssertionError(f"flow run {run_id} ended {state.type.value} before awaiting its jobs")
        return False

    await eventually(awaited, timeout, f"{count} jobs of flow run {run_id} queued and awaited")


PENDING = frozenset({"Queued", "Running"})


def cancel_requests(emulator: RunningEmulator, jobs: list[dict[str, Any]]) -> list[int]:
    """How many cancel requests the emulator received for each job (409s included)."""
    cancels = emulator.stats()["cancels"]
    return [cancels.get(job["id"], 0) for job in jobs]


async def run_log_lines(prefect: PrefectClient, run_id: Any) -> list[str]:
    """Every log line the run has in the Prefect API (hooks and the reaper log there too)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = await prefect.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return [log.message for log in logs]


async def each_cancel_logged(
    prefect: PrefectClient, run_id: Any, jobs: list[dict[str, Any]], layer: str, timeout: float = 30
) -> None:
    """Wait until the run's log says, for each job, that ``layer`` sent its cancel."""

    async def all_there() -> bool:
        lines = await run_log_lines(prefect, run_id)
        return all(any(f"job {j['id']}: cancel sent by the {layer}" in ln for ln in lines) for j in jobs)

    await eventually(all_there, timeout, f"the {layer}'s log line for each job in the run's log")


def flow_process(parent_pid: int, run_id: Any) -> psutil.Process | None:
    """The process a runner started for this flow run (it carries the run id in its environment)."""
    for child in psutil.Process(parent_pid).children(recursive=True):
        try:
            if child.environ().get("PREFECT__FLOW_RUN_ID") == str(run_id):
                return child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every process under it at once, as a lost node would; their pids.

    Children are found first: once the parent is gone they are reparented and out of reach.
    """
    parent = psutil.Process(pid)
    doomed = [parent, *parent.children(recursive=True)]
    for process in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(doomed, timeout=30)
    return [process.pid for process in doomed]
