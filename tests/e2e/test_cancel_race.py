"""A cancel that loses the race with the job finishing is harmless: 409, no error, result intact.

Every layer decides to cancel from a status it read a moment earlier. When the job ends in
between, IBM answers 409; that must count as "already final", raise nothing, and leave the
result readable by a later fetch. Within one process, a second layer does not ask again.
"""

from __future__ import annotations

import pytest
from prefect import flow

from prefect_qiskit_jobs import IBMQuantumCredentials, JobStatus, Primitive, fetch_job_result
from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import CancelOutcome, gateway_for
from prefect_qiskit_jobs.submit.call import submit_jobs
from tests.e2e.conftest import RACE_BACKEND, cancel_requests, eventually
from tests.e2e.scenario_flows import bell_for

pytestmark = pytest.mark.e2e
SHOTS = 16


@flow(name="e2e-fetch-after-race")
def fetch_counts(job_id: str) -> dict[str, int]:
    counts: dict[str, int] = fetch_job_result(job_id)[0].data.meas.get_counts()
    return counts


async def test_a_cancel_that_arrives_after_the_job_finished_raises_nothing_and_keeps_the_result(
    iqp_env: RunningEmulator,
) -> None:
    iqp = iqp_env
    gateway = gateway_for(IBMQuantumCredentials.from_environment())
    (job,) = submit_jobs(
        Primitive.SAMPLER, [bell_for(RACE_BACKEND)], backend=RACE_BACKEND, options={"default_shots": SHOTS}
    )
    stale = gateway.read(job.job_id)  # what a layer saw when it decided to cancel
    assert stale.status is JobStatus.QUEUED

    iqp.release(job.job_id)

    async def completed() -> bool:
        return iqp.job(job.job_id)["status"] == "Completed"

    await eventually(completed, 60, f"job {job.job_id} to complete")

    lines: list[str] = []
    (report,) = cancel_jobs(gateway, [stale], Layer.HOOK, lines.append)

    assert report.sent is False
    assert report.final_status is JobStatus.DONE
    assert "already final" in report.outcome
    assert lines == [report.describe(Layer.HOOK)]
    assert "by the flow hook" in lines[0]
    assert iqp.job(job.job_id)["status"] == "Completed"
    assert cancel_requests(iqp, [iqp.job(job.job_id)]) == [1]

    # Another layer of this process working from the same stale view asks IBM nothing more...
    assert cancel_jobs(gateway, [stale], Layer.REAPER, lines.append) == []
    assert cancel_requests(iqp, [iqp.job(job.job_id)]) == [1]
    # ...and a layer of another process would get the same harmless 409.
    assert gateway.cancel(job.job_id) is CancelOutcome.ALREADY_FINAL

    counts = fetch_counts(job.job_id)
    assert sum(counts.values()) == SHOTS
    assert set(counts) <= {"00", "01", "10", "11"}
