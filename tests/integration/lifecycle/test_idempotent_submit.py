"""One IBM job per submit call, whatever Prefect re-runs: task retries, flow-run retries, fresh asks.

The jobs stay queued on the held emulator, so "live" here means queued on the server, and the
server's own job list and POST count are the evidence.
"""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow, task
from prefect.context import FlowRunContext, TaskRunContext
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    JobRef,
    JobStatus,
    await_for_job,
    resolve_credentials,
    submit_sampler_job,
    submit_sampler_jobs,
    wait_for_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import gateway_for

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND

LIVE = {"Queued", "Running"}
# IBM's job listing: a submit lists its key once after the POST (duplicates of a re-sent POST), and
# once before it when an earlier execution may have submitted under the key.
LISTINGS = "GET /jobs"


class WorkerLost(RuntimeError):
    """Stands for whatever kills a run between IBM accepting the job and the run recording it."""


def live_jobs(emulator: RunningEmulator) -> list[dict[str, Any]]:
    return [job for job in emulator.jobs() if job["status"] in LIVE]


def first_attempt() -> bool:
    context = FlowRunContext.get()
    assert context is not None
    assert context.flow_run is not None
    return context.flow_run.run_count == 1


@task(retries=1, retry_delay_seconds=0)
def submit_then_crash_once(pubs: list[QuantumCircuit]) -> JobRef:
    job = submit_sampler_job(pubs, backend=SMALL_BACKEND, options=OPTIONS)
    context = TaskRunContext.get()
    assert context is not None
    if context.task_run.run_count == 1:
        raise WorkerLost(f"lost after IBM accepted {job.job_id}")
    return job


async def test_a_retried_task_adopts_the_job_its_first_attempt_submitted(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def retried() -> dict[str, Any]:
        job = submit_then_crash_once.submit([bell_isa]).result()
        final = await await_for_job(job, poll=FAST_POLL)
        return {"job": job, "final": final}

    out = await retried()

    assert [job["id"] for job in emulator.jobs()] == [out["job"].job_id]
    assert emulator.stats()["routes"]["POST /jobs"] == 1
    assert emulator.stats()["cancels"] == {}
    assert out["final"].status is JobStatus.DONE


def test_a_flow_run_retry_adopts_every_job_of_the_first_attempt(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    attempts: list[list[JobRef]] = []

    @flow(retries=1, retry_delay_seconds=0)
    def experiment() -> list[JobRef]:
        direct = [submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(2)]
        submitted = submit_sampler_job.submit([bell_isa], backend=SMALL_BACKEND, options=OPTIONS).result()
        mapped = submit_sampler_job.map([[bell_isa]] * 2, backend=SMALL_BACKEND, options=OPTIONS).result()
        batch = submit_sampler_jobs(
            [bell_isa] * 3, backend=SMALL_BACKEND, max_pubs_per_job=2, options=OPTIONS
        )
        jobs = [*direct, submitted, *mapped, *batch]
        attempts.append(jobs)
        if first_attempt():
            raise WorkerLost("the flow failed after submitting")
        return jobs

    experiment()

    first, retry = attempts
    assert len(first) == 7
    assert retry == first
    assert len({job.job_id for job in first}) == 7
    assert held.stats()["routes"]["POST /jobs"] == 7
    # the first attempt lists nothing (each POST went once); the retry looks each key up
    assert held.stats()["routes"][LISTINGS] == 7
    assert sorted(job["id"] for job in live_jobs(held)) == sorted(job.job_id for job in first)


def test_two_submits_in_one_task_run_are_two_live_jobs(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @task
    def prepare_and_submit() -> list[JobRef]:
        return [submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(2)]

    @flow
    def two() -> list[JobRef]:
        return prepare_and_submit()

    jobs = two()

    assert len({job.job_id for job in jobs}) == 2
    assert sorted(job["id"] for job in live_jobs(held)) == sorted(job.job_id for job in jobs)
    assert held.stats()["cancels"] == {}


@pytest.mark.parametrize("ending", ["cancelled", "failed"])
def test_a_retry_resubmits_when_the_adopted_job_ended_cancelled_or_failed(
    held: RunningEmulator, bell_isa: QuantumCircuit, ending: str
) -> None:
    attempts: list[JobRef] = []

    @flow(retries=1, retry_delay_seconds=0)
    def experiment() -> JobRef:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        attempts.append(job)
        if first_attempt():
            if ending == "cancelled":
                gateway_for(resolve_credentials(None)).cancel(job.job_id)
            else:
                held.fail(job.job_id, "calibration drifted")
                held.release(job.job_id)
                wait_for_job(job, poll=FAST_POLL, raise_on_failure=False)
            raise WorkerLost("the flow failed after its job ended badly")
        return job

    experiment()

    first, retry = attempts
    assert retry.job_id != first.job_id
    assert held.stats()["routes"]["POST /jobs"] == 2
    assert [job["id"] for job in live_jobs(held)] == [retry.job_id]


def test_fresh_asks_for_a_new_job_on_every_attempt(held: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    attempts: list[JobRef] = []

    @flow(retries=1, retry_delay_seconds=0)
    def experiment() -> JobRef:
        attempts.append(submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS, fresh=True))
        if first_attempt():
            raise WorkerLost("the flow failed after submitting")
        return attempts[-1]

    experiment()

    assert len({job.job_id for job in attempts}) == 2
    assert held.stats()["routes"]["POST /jobs"] == 2


# Outside a flow run Prefect warns that its task runs' log lines have no flow run to go to.
@pytest.mark.filterwarnings(
    "ignore:Logger 'prefect.task_runs' attempted to send logs to the API without a flow run id:UserWarning"
)
def test_outside_any_flow_run_every_call_is_a_new_job(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    jobs = [submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(2)]

    assert len({job.job_id for job in jobs}) == 2
    assert len(live_jobs(held)) == 2
    # each POST went once, answered: nothing to look up, before or after
    assert held.stats()["routes"].get(LISTINGS, 0) == 0
