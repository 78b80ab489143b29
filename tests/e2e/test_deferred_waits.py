"""Deferred waits, end to end: a deployment run suspends while its jobs queue, and resumers bring it back.

A serve process runs the ``e2e-deferred`` deployment: it submits two Bell jobs (held Queued by
the emulator) and calls ``asuspend_until_final``; its flow process exits and the run is Paused.
Two resumer processes (``prefect-qiskit-jobs resumer``) run side by side:

- once the jobs are released and done, the run is resumed exactly once, re-executes from the top
  adopting its two jobs (none is submitted again), and completes with their Bell counts;
- a suspended run cancelled through the API, and a suspension that times out, get one cancel
  request per pending job, from one of the two resumers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.wait.deferral import DEFERRED_TAG
from tests.e2e.conftest import (
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    eventually,
    final_state,
    flow_process,
    jobs_of_run,
    scenario_environment,
    serving,
    start_logged,
    stop_process,
)

pytestmark = pytest.mark.e2e

DEPLOYMENT = "e2e-deferred/e2e"
SYNC_DEPLOYMENT = "e2e-deferred-sync/e2e"
RESUMER_EVERY = "1"


@pytest.fixture(scope="module")
def deferring(prefect_server: PrefectServer, iqp: RunningEmulator) -> Iterator[subprocess.Popen[bytes]]:
    """A serve process for the deferred scenario, and two resumers, for the whole module."""
    with serving(
        prefect_server,
        iqp,
        "serve-deferred.log",
        [DEPLOYMENT, SYNC_DEPLOYMENT],
        "e2e-deferred",
        "e2e-deferred-sync",
    ) as process:
        env = scenario_environment(prefect_server, iqp)
        command = [sys.executable, "-m", "prefect_qiskit_jobs", "resumer", "--every", RESUMER_EVERY]
        resumers = [start_logged(command, env, prefect_server.home / f"resumer-{n}.log") for n in range(2)]
        try:
            yield process
        finally:
            for resumer in resumers:
                stop_process(resumer)


async def suspended(
    prefect: PrefectClient,
    emulator: RunningEmulator,
    serve: subprocess.Popen[bytes],
    deployment: str = DEPLOYMENT,
    **parameters: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """Start a deferred run; return it and its jobs once it is Paused, its process gone, both jobs queued."""
    run = await run_deployment(deployment, parameters=parameters, timeout=0)

    async def paused() -> bool:
        state = (await prefect.read_flow_run(run.id)).state
        if state is not None and state.is_final():
            raise AssertionError(f"the deferred run ended {state.type.value} before suspending")
        return state is not None and state.is_paused()

    await eventually(paused, 60, f"flow run {run.id} to suspend")

    async def exited() -> bool:  # the flow process ends once it has suspended the run
        return flow_process(serve.pid, run.id) is None

    await eventually(exited, 30, f"the flow process of {run.id} to exit")
    jobs = jobs_of_run(emulator, run.id)
    assert [job["status"] for job in jobs] == ["Queued", "Queued"]
    return run, jobs


async def untagged(prefect: PrefectClient, run_id: Any) -> None:
    """Until a resumer has finished with the run (it takes the deferral tag off)."""

    async def done() -> bool:
        return DEFERRED_TAG not in (await prefect.read_flow_run(run_id)).tags

    await eventually(done, 60, f"the resumers to finish with flow run {run_id}")


@pytest.mark.parametrize(
    ("deployment", "backend"),
    [(DEPLOYMENT, "ibmq_lima"), (SYNC_DEPLOYMENT, "ibmq_bogota")],
    ids=["async", "sync"],
)
async def test_a_deferred_run_frees_its_process_and_is_resumed_once(
    deferring: subprocess.Popen[bytes],
    iqp: RunningEmulator,
    prefect: PrefectClient,
    deployment: str,
    backend: str,
) -> None:
    run, jobs = await suspended(prefect, iqp, deferring, deployment, backend=backend)

    labels = (await prefect.read_flow_run(run.id)).labels
    assert sorted(labels["prefect-qiskit-jobs.awaiting"].split(",")) == sorted(job["id"] for job in jobs)

    for job in jobs:
        iqp.release(job["id"])

    assert await final_state(prefect, run.id, timeout=80) == StateType.COMPLETED
    history = await prefect.read_flow_run_states(run.id)
    assert [state.name for state in history].count("Resuming") == 1
    assert len(jobs_of_run(iqp, run.id)) == 2  # adopted on re-execution, never submitted again
    counts = await (await prefect.read_flow_run(run.id)).state.aresult()  # type: ignore[union-attr]
    assert len(counts) == 2
    for job_counts in counts:
        assert sum(job_counts.values()) == 16
        assert job_counts.get("00", 0) + job_counts.get("11", 0) > 8
    await untagged(prefect, run.id)


async def test_a_deferral_whose_jobs_have_ended_returns_at_once_and_leaves_no_record(
    deferring: subprocess.Popen[bytes], iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run = await run_deployment(DEPLOYMENT, parameters={"backend": "ibmq_lima", "wait_first": True}, timeout=0)

    async def submitted() -> list[dict[str, Any]]:
        jobs = jobs_of_run(iqp, run.id)
        return jobs if len(jobs) == 2 else []

    for job in await eventually(submitted, 60, f"flow run {run.id} to submit its jobs"):
        iqp.release(job["id"])

    assert await final_state(prefect, run.id, timeout=60) == StateType.COMPLETED
    ended = await prefect.read_flow_run(run.id)
    assert [state.name for state in await prefect.read_flow_run_states(run.id)].count("Suspended") == 0
    assert DEFERRED_TAG not in ended.tags  # the record made beside the read was taken off again
    assert not ended.labels.get("prefect-qiskit-jobs.awaiting")


async def test_a_suspended_run_cancelled_through_the_api_gets_its_jobs_cancelled_once(
    deferring: subprocess.Popen[bytes], iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run, jobs = await suspended(prefect, iqp, deferring, backend="ibmq_belem")

    await cancel_through_api(prefect, run.id)

    assert await final_state(prefect, run.id, timeout=30) == StateType.CANCELLED
    await untagged(prefect, run.id)
    assert [iqp.job(job["id"])["status"] for job in jobs] == ["Cancelled", "Cancelled"]
    assert cancel_requests(iqp, jobs) == [1, 1]


async def test_a_suspension_that_times_out_gets_its_jobs_cancelled_once(
    deferring: subprocess.Popen[bytes], iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run, jobs = await suspended(prefect, iqp, deferring, backend="ibmq_quito", timeout=5)

    assert await final_state(prefect, run.id, timeout=60) == StateType.FAILED  # Prefect's pause expiry
    await untagged(prefect, run.id)
    assert [iqp.job(job["id"])["status"] for job in jobs] == ["Cancelled", "Cancelled"]
    assert cancel_requests(iqp, jobs) == [1, 1]
