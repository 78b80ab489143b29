"""A POST that created its job and then failed (5xx, or a dropped connection) leaves one live job.

On IBM the client re-sends a POST answered 5xx, which can create the job twice; a dropped answer
leaves the submit not knowing the job exists. The emulator's faults *after handling* make both
happen for real, and the submit's idempotency key is what finds the job again.
"""

from __future__ import annotations

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobRef, submit_sampler_job
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator

from .conftest import OPTIONS, SMALL_BACKEND

LIVE = {"Queued", "Running"}


@pytest.mark.parametrize(("fault", "posts"), [("server_error_after", 2), ("drop_after", 1)])
def test_a_post_that_created_its_job_and_then_failed_leaves_exactly_one_live_job(
    held: RunningEmulator, bell_isa: QuantumCircuit, fault: str, posts: int
) -> None:
    held.set_faults(FaultRule(route="POST /jobs", limit=1, **{fault: 1.0}))

    @flow
    def one_submit() -> JobRef:
        return submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)

    job = one_submit()

    stats = held.stats()
    assert stats["faults"]["POST /jobs"] == {fault: 1}
    assert stats["routes"]["POST /jobs"] == posts  # the client re-sent the POST after the 5xx
    assert [j["id"] for j in held.jobs() if j["status"] in LIVE] == [job.job_id]
    assert len(held.jobs()) == posts
