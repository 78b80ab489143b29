"""A submit task run that is retried after its POST adopts the job it created instead of submitting again."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.context import TaskRunContext
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobRef, JobStatus, Primitive, wait_for_job
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.submit import submit_job

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, run_logs


class WorkerLost(RuntimeError):
    """Stands for whatever kills a task run between IBM accepting the job and the run recording it."""


@task(retries=1, retry_delay_seconds=0)
def submit_then_crash_once(pubs: list[QuantumCircuit]) -> JobRef:
    job = submit_job(Primitive.SAMPLER, pubs, backend=SMALL_BACKEND, options=OPTIONS)
    context = TaskRunContext.get()
    assert context is not None
    if context.task_run.run_count == 1:
        raise WorkerLost(f"lost after IBM accepted {job.job_id}")
    return job


async def test_a_retried_submit_adopts_the_job_of_its_first_attempt(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def retried() -> dict[str, Any]:
        future = submit_then_crash_once.submit([bell_isa])
        job = future.result()
        final = await wait_for_job(job, poll=FAST_POLL)
        return {"job": job, "task_run_id": str(future.task_run_id), "final": final}

    state = await retried(return_state=True)
    out = await state.result()

    task_run_tag = f"prefect-task-run:{out['task_run_id']}"
    tagged = [job for job in emulator.jobs() if task_run_tag in job["tags"]]
    assert [job["id"] for job in tagged] == [out["job"].job_id]
    assert emulator.stats()["routes"]["POST /jobs"] == 1
    assert emulator.stats()["cancels"] == {}
    assert out["final"].status is JobStatus.DONE
    logs = await run_logs(state.state_details.flow_run_id)
    assert any(f"Adopted job {out['job'].job_id}" in line for line in logs), logs
