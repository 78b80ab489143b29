"""A served run cancelled while its jobs run: one cancel request per job, whatever IBM's cancel latency.

IBM accepts a running job's cancel at once but stops the job seconds, sometimes minutes, later; a
queued job is cancelled on the spot. Here the emulator keeps each running job Running for its
backend's cancel latency after accepting its cancel: 5 s on ibmq_manila, 45 s on ibmq_lima,
120 s on ibmq_belem. The flow process's sensor sends the cancels; Prefect's runner kills that
process after its 30 s grace and runs the ``on_cancellation`` hook, and the reaper comes later:
every later layer must see that IBM already accepted each cancel, and only confirm.

- 30 jobs running at 5 s: when Prefect shows the run Cancelled, every job already is, each after
  exactly one cancel request.
- One run per latency, side by side, two jobs each: each job gets exactly one cancel request,
  from every layer together and a reaper run afterwards; a run ends Cancelled either with its
  jobs Cancelled or with a line in its log naming the jobs still stopping and saying that the
  reaper will confirm them.

The tests have an emulator of their own (enough slots for 30 running jobs per backend, each
running for ten minutes unless cancelled), and a serve process of its own pointed at it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.e2e.conftest import (
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    cli,
    eventually,
    final_state,
    jobs_of_run,
    run_log_lines,
    scenario_environment,
    serving,
    until_awaited,
)

pytestmark = pytest.mark.e2e

JOBS = 30
# Seconds IBM takes to stop a running job after accepting its cancel, per backend: under the
# runner's 30 s grace, over it, and over the grace plus the time a hook confirms.
LATENCIES = {"ibmq_manila": 5.0, "ibmq_lima": 45.0, "ibmq_belem": 120.0}
JOBS_PER_LATENCY = 2
FLOW = "e2e-swept"
DEPLOYMENT = f"{FLOW}/e2e"


@pytest.fixture(scope="module")
def slow_to_cancel() -> Iterator[RunningEmulator]:
    """An emulator that runs 30 jobs per backend at once, for ten minutes each, slow to stop them.

    Jobs queue until released, so that the wait has read each one before any runs.
    """
    config = EmulatorConfig(
        queue_delay=600,
        concurrency=JOBS,
        min_run_seconds=600,
        cancel_latency=LATENCIES["ibmq_manila"],
        backend_cancel_latency=LATENCIES,
        backends=("manila", "lima", "belem"),
    )
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def served_slow(
    prefect_server: PrefectServer, slow_to_cancel: RunningEmulator
) -> Iterator[subprocess.Popen[bytes]]:
    """A serve process of the swept flow whose runs submit to ``slow_to_cancel``."""
    with serving(prefect_server, slow_to_cancel, "serve-cancel-latency.log", [DEPLOYMENT], FLOW) as process:
        yield process


async def all_running(iqp: RunningEmulator, run_ids: list[Any], count: int) -> None:
    async def running() -> bool:
        return all(
            [job["status"] for job in jobs_of_run(iqp, run_id)] == ["Running"] * count for run_id in run_ids
        )

    await eventually(running, 60, f"the {count} jobs of each of flow runs {run_ids} running")


async def test_a_run_cancelled_while_its_jobs_run_is_cancelled_only_after_ibm_stopped_each_job_once(
    served_slow: subprocess.Popen[bytes], slow_to_cancel: RunningEmulator, prefect: PrefectClient
) -> None:
    iqp = slow_to_cancel
    run = await run_deployment(DEPLOYMENT, parameters={"count": JOBS}, timeout=0)
    await until_awaited(prefect, iqp, run.id, count=JOBS)
    iqp.release()
    await all_running(iqp, [run.id], JOBS)

    await cancel_through_api(prefect, run.id)

    # Seen final within a tick, and the jobs read right then: what IBM had stopped by the run's end.
    assert await final_state(prefect, run.id, every=0.05) == StateType.CANCELLED
    jobs = jobs_of_run(iqp, run.id)
    cancels = cancel_requests(iqp, jobs)
    assert [job["status"] for job in jobs] == ["Cancelled"] * JOBS
    assert cancels == [1] * JOBS


@pytest.mark.timeout(600)  # IBM takes 120 s to stop the slowest jobs
async def test_each_job_gets_one_cancel_request_whether_ibm_stops_it_in_5_45_or_120_seconds(
    served_slow: subprocess.Popen[bytes],
    slow_to_cancel: RunningEmulator,
    prefect_server: PrefectServer,
    prefect: PrefectClient,
) -> None:
    iqp = slow_to_cancel
    runs = {
        backend: await run_deployment(
            DEPLOYMENT, parameters={"count": JOBS_PER_LATENCY, "backend": backend}, timeout=0
        )
        for backend in LATENCIES
    }
    for run in runs.values():
        await until_awaited(prefect, iqp, run.id, count=JOBS_PER_LATENCY)
    iqp.release()
    await all_running(iqp, [run.id for run in runs.values()], JOBS_PER_LATENCY)

    for run in runs.values():
        await cancel_through_api(prefect, run.id)

    async def ending(run_id: Any) -> tuple[StateType, list[str]]:
        """The run's final state, and its jobs IBM had not stopped yet when it was seen final."""
        state = await final_state(prefect, run_id, timeout=300, every=0.05)
        return state, [job["id"] for job in jobs_of_run(iqp, run_id) if job["status"] != "Cancelled"]

    endings = dict(zip(runs, await asyncio.gather(*(ending(run.id) for run in runs.values())), strict=True))
    # A reaper run after every run ended: it may confirm the jobs still stopping, never cancel them again.
    reaper_said = await anyio.to_thread.run_sync(
        cli, scenario_environment(prefect_server, iqp), "reap", "--grace-seconds", "0"
    )

    async def all_cancelled() -> bool:
        return all(job["status"] == "Cancelled" for run in runs.values() for job in jobs_of_run(iqp, run.id))

    await eventually(all_cancelled, 300, "every job of the three runs Cancelled")
    requests = {backend: cancel_requests(iqp, jobs_of_run(iqp, run.id)) for backend, run in runs.items()}
    assert requests == {backend: [1] * JOBS_PER_LATENCY for backend in LATENCIES}, reaper_said
    assert {backend: state for backend, (state, _) in endings.items()} == dict.fromkeys(
        LATENCIES, StateType.CANCELLED
    )
    for backend, (_, stopping) in endings.items():
        if not stopping:
            continue

        async def said_still_stopping(run_id: Any = runs[backend].id, ids: list[str] = stopping) -> bool:
            lines = await run_log_lines(prefect, run_id)
            return any(
                "still stopping" in line and "reaper will confirm" in line and all(i in line for i in ids)
                for line in lines
            )

        await eventually(
            said_still_stopping, 30, f"a line in the {backend} run's log naming {stopping} still stopping"
        )
