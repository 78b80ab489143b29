"""IBM's slow and hung answers, and many jobs outside a flow run, against the process's one watcher.

The emulator holds a request unanswered (a ``hang`` fault, narrowed by its query string to one
group's listing) for as long as the test needs; the client's read timeout is far longer. So the
order of events is exact: nothing here waits for a timer. The waits run outside any flow run, as
in a script, where Prefect warns that a task run's logs have no flow run to go to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prefect import flow
from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    JobRef,
    JobStatus,
    await_for_job,
    await_for_jobs,
    submit_sampler_job,
    submit_sampler_jobs,
)
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator
from prefect_qiskit_jobs.ibm.tags import FLOW_RUN_PREFIX, PROCESS_TAG

from .conftest import FAST_POLL, GUARD, OPTIONS, SMALL_BACKEND, until


@pytest.fixture(autouse=True)
def logs_outside_runs_stay_local() -> Iterator[None]:
    with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):
        yield


def run_id_of(job: JobRef) -> str:
    return next(t for t in job.tags if t.startswith(FLOW_RUN_PREFIX)).removeprefix(FLOW_RUN_PREFIX)


async def test_a_hung_listing_of_one_group_does_not_delay_another_groups_job_reaching_done(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def submit_one() -> JobRef:
        return submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)

    stuck, moving = await submit_one(), await submit_one()  # two flow runs: two groups
    held.set_faults(FaultRule(route="GET /jobs", query=f"*{run_id_of(stuck)}*", hang=1.0, limit=1))

    stuck_wait = asyncio.ensure_future(await_for_job(stuck, poll=FAST_POLL))
    await until(lambda: held.stats()["hanging"] == 1, "the stuck group's listing to hang")
    moving_wait = asyncio.ensure_future(await_for_job(moving, poll=FAST_POLL))
    held.release()  # both run (the queue is first in, first out) and end DONE

    try:
        done = await asyncio.wait_for(moving_wait, GUARD)

        assert done.status is JobStatus.DONE
        assert held.stats()["hanging"] == 1  # the other group's listing is still unanswered
        assert not stuck_wait.done()
    finally:
        held.reset()  # the hung listing is answered now
    assert (await asyncio.wait_for(stuck_wait, GUARD)).status is JobStatus.DONE


async def test_a_hundred_jobs_submitted_outside_a_flow_run_are_awaited_with_listings(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    jobs = submit_sampler_jobs(
        [bell_isa] * 100, backend=SMALL_BACKEND, options={"default_shots": 16}, max_pubs_per_job=1
    )
    assert len(jobs) == 100
    assert all(PROCESS_TAG in job.tags for job in jobs)
    held.reset()  # count from here

    waiting = asyncio.ensure_future(await_for_jobs(jobs, poll=FAST_POLL))
    await until(lambda: held.stats()["routes"].get("GET /jobs", 0) >= 3, "three rounds of listings")
    held.release()
    finals = await asyncio.wait_for(waiting, GUARD)

    assert [s.status for s in finals] == [JobStatus.DONE] * 100
    routes = held.stats()["routes"]
    assert routes.get("GET /jobs/{job_id}", 0) == 0  # no job was read on its own
    assert routes["GET /jobs"] < 100  # a listing answers for all of them at once
    # Metrics: the queue's head each round, and each job's own record once, when first seen final
    # (its start, end and QPU seconds for the board); never one per job per round.
    assert routes.get("GET /jobs/{job_id}/metrics", 0) <= routes["GET /jobs"] + len(jobs)
