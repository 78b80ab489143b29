"""A result that is in neither Prefect's storage nor IBM's is a clear error naming the job.

IBM gives a private job's result once (``environment.private``); every later read is empty. A
fetch that finds nothing stored then meets that empty answer: it raises ``JobResultExpired``
with the job id and the reason, never a raw HTTP error and never ``None``.
"""

from __future__ import annotations

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    JobRef,
    JobResultExpired,
    fetch_job_result,
    submit_sampler_job,
    wait_for_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, SMALL_BACKEND, counts_of

PRIVATE = {"default_shots": 20, "environment": {"private": True}}


def test_a_private_jobs_result_read_elsewhere_first_is_a_clear_expired_error(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def private_run() -> JobRef:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=PRIVATE)
        wait_for_job(job, poll=FAST_POLL)
        return job

    @flow
    def fetch_later(job: JobRef) -> object:
        return fetch_job_result(job)

    job = private_run()
    # Another reader (the raw client) takes the one read IBM gives a private job's result.
    service = IBMQuantumCredentials.from_environment().get_client()
    assert sum(service.job(job.job_id).result()[0].data.meas.get_counts().values()) == 20

    with pytest.raises(JobResultExpired, match=job.job_id) as raised:
        fetch_later(job)

    assert "private" in raised.value.why


def test_a_private_jobs_result_fetched_by_the_package_stays_readable(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def private_run() -> tuple[JobRef, dict[str, int]]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=PRIVATE)
        wait_for_job(job, poll=FAST_POLL)
        return job, counts_of(fetch_job_result(job))

    @flow
    def fetch_later(job: JobRef) -> dict[str, int]:
        return counts_of(fetch_job_result(job))

    job, first = private_run()

    # The one read IBM gave went to Prefect's storage, keyed by the job id: a later run reads it there.
    assert fetch_later(job) == first
