"""The Prefect API unreachable: its server stopped, then started again on the same database and port.

One outage, four situations set up before it, on a Prefect server of this module's own (stopping
the session's would stop every other test's serve process and worker): a serve process and a
resumer, as users run them, and the job creation limit at 5 jobs per 120 s, so that the three runs'
five jobs take every slot of the window.

- a run **waiting** (sensor) for two jobs, which the emulator holds Queued through the outage
  and releases after it: the wait goes on and the run completes with their results;
- a deferred run **resuming**: suspended with two jobs, which end during the outage; the resumer
  (its Prefect client's retries cut to 2, about 6 s, so that its requests fail during the outage
  as they would at the defaults in an outage longer than their ~62 s) resumes it once when the
  API returns, and it adopts its jobs and completes (before the fix the resumer exited at its
  first failed cycle and the run stayed suspended);
- a deferred run **cancelled** just before the stop: its job is cancelled, with one request;
- **submitting**: every slot of the limit is held when the server stops; the next submit, by a
  run started after the restart, proceeds once the leases of the slots end, and no job is created twice.

The outage lasts until the resumer has logged a failed cycle, then as long as the server takes to
start again (10-40 s in all here, with the machine's load). Leases must outlive the restart:
Prefect's default lease storage is the server's memory, while the slots they hold are counted in
its database, so a slot held at a restart stays taken for good (checked by hand against
``prefect server start`` on PostgreSQL: a slot leased for 60 s was still taken 150 s after a
restart; with file storage it was free 66-76 s after). The server here keeps its leases in files,
as the crash-safety guide asks of every Prefect server the package's limits run on.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from prefect_qiskit_jobs.limits.rate import LIMIT_PREFIX
from tests.e2e.conftest import (
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    eventually,
    final_state,
    flow_process,
    jobs_of_run,
    running_prefect_server,
    scenario_environment,
    server_stopped,
    serving,
    start_logged,
    stop_process,
    until_awaited,
)
from tests.e2e.postgres import Postgres
from tests.prefect_servers import talking_to

pytestmark = pytest.mark.e2e

LIMIT, LIMIT_JOBS = "5/120", 5
RESUMER_LOG = "resumer-outage.log"
SETUP_GUARD = 300.0  # seconds for three flow processes to start on a loaded 2-core machine
DURABLE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"
FLOWS = ("e2e-awaited", "e2e-deferred", "e2e-detached")
DEPLOYMENTS = [f"{name}/e2e" for name in FLOWS]
DEFERRED = "e2e-deferred/e2e"


@pytest.fixture(scope="module")
def own_server(
    postgres: Postgres | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectServer]:
    """A Prefect server of this module's own, on its own database of the session's cluster."""
    home = tmp_path_factory.mktemp("prefect-outage-home")
    database = postgres.create_database("prefect_outage") if postgres is not None else None
    with running_prefect_server(
        home, postgres, database, PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=DURABLE_LEASES
    ) as server:
        yield server


@pytest.fixture(scope="module")
def held_iqp() -> Iterator[RunningEmulator]:
    """An emulator of this module's own: jobs stay Queued until released, each run on a backend of
    its own (a backend's queue is FIFO: a released job would wait behind another run's held one)."""
    config = EmulatorConfig(queue_delay=600, concurrency=4, backends=("manila", "lima", "belem", "quito"))
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def serve(own_server: PrefectServer, held_iqp: RunningEmulator) -> Iterator[subprocess.Popen[bytes]]:
    """A serve process of the scenario flows, and a resumer, on the module's server and emulator."""
    limited = {"PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT": LIMIT}
    with serving(own_server, held_iqp, "serve-outage.log", DEPLOYMENTS, *FLOWS, extra_env=limited) as process:
        env = {**scenario_environment(own_server, held_iqp), **limited, "PREFECT_CLIENT_MAX_RETRIES": "2"}
        command = [sys.executable, "-m", "prefect_qiskit_jobs", "resumer", "--every", "1"]
        resumer = start_logged(command, env, own_server.home / RESUMER_LOG)
        try:
            yield process
        finally:
            stop_process(resumer)


async def paused_and_gone(prefect: PrefectClient, serve: Any, run_id: Any) -> None:
    """Until the deferred run is Paused and its flow process has exited."""

    async def paused() -> bool:
        state = (await prefect.read_flow_run(run_id)).state
        if state is not None and state.is_final():
            raise AssertionError(f"the deferred run ended {state.type.value} before suspending")
        return state is not None and state.is_paused() and flow_process(serve.pid, run_id) is None

    await eventually(paused, SETUP_GUARD, f"flow run {run_id} to suspend")


async def held_slots(prefect: PrefectClient) -> int:
    """Slots taken now in the job creation limit (the only one of this server with that prefix)."""
    limits = await prefect.read_global_concurrency_limits(limit=100)
    return sum(limit.active_slots for limit in limits if limit.name.startswith(LIMIT_PREFIX))


@pytest.mark.timeout(900)  # two Prefect servers to start, one of them twice, and leases to end
async def test_runs_waiting_resuming_cancelled_and_submitting_come_through_a_prefect_server_restart(
    own_server: PrefectServer, held_iqp: RunningEmulator, serve: subprocess.Popen[bytes]
) -> None:
    emu = held_iqp
    with talking_to({PREFECT_API_URL: own_server.url, PREFECT_HOME: str(own_server.home)}):
        async with get_client() as prefect:
            waiting = await run_deployment(
                "e2e-awaited/e2e", parameters={"count": 2, "backend": "ibmq_lima"}, timeout=0
            )
            resuming = await run_deployment(
                DEFERRED, parameters={"count": 2, "backend": "ibmq_belem"}, timeout=0
            )
            cancelled = await run_deployment(
                DEFERRED, parameters={"count": 1, "backend": "ibmq_quito"}, timeout=0
            )
            await until_awaited(prefect, emu, waiting.id, count=2, timeout=SETUP_GUARD)
            await paused_and_gone(prefect, serve, resuming.id)
            await paused_and_gone(prefect, serve, cancelled.id)
            assert await held_slots(prefect) == LIMIT_JOBS  # the window is full: the next submit waits
            await cancel_through_api(prefect, cancelled.id)

        with server_stopped(own_server):
            for job in jobs_of_run(emu, resuming.id):
                emu.release(job["id"])
            # The outage lasts until the resumer's requests have failed past its client's retries:
            # a failed cycle logged (or, as before the fix, the resumer's exit).
            resumer_log = own_server.home / RESUMER_LOG

            async def resumer_cut_off() -> bool:
                said = resumer_log.read_text()
                return "Resumer cycle failed" in said or "Traceback" in said

            await eventually(resumer_cut_off, SETUP_GUARD, "a resumer cycle to fail", every=0.5)

        async with get_client() as prefect:
            submitted_after = await run_deployment("e2e-detached/e2e", parameters={"count": 1}, timeout=0)
            for job in jobs_of_run(emu, waiting.id):
                emu.release(job["id"])

            assert await final_state(prefect, waiting.id, timeout=120) == StateType.COMPLETED
            assert await final_state(prefect, resuming.id, timeout=120) == StateType.COMPLETED
            history = [state.name for state in await prefect.read_flow_run_states(resuming.id)]
            assert history.count("Resuming") == 1
            # The next submit waits for the slots the stopped server's leases held, no longer.
            assert await final_state(prefect, submitted_after.id, timeout=180) == StateType.COMPLETED
            cancelled_jobs = jobs_of_run(emu, cancelled.id)

            async def cancelled_once() -> bool:
                return [emu.job(job["id"])["status"] for job in cancelled_jobs] == ["Cancelled"]

            await eventually(cancelled_once, 60, f"the job of flow run {cancelled.id} to be cancelled")
            assert cancel_requests(emu, cancelled_jobs) == [1]

    # No job created twice: one POST per job, each run with exactly the jobs it asked for.
    runs = {waiting.id: 2, resuming.id: 2, cancelled.id: 1, submitted_after.id: 1}
    assert {run_id: len(jobs_of_run(emu, run_id)) for run_id in runs} == runs
    assert emu.stats()["routes"]["POST /jobs"] == len(emu.jobs()) == sum(runs.values())
