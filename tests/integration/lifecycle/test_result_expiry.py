"""A result that is in neither Prefect's storage nor IBM's is a clear error naming the job.

IBM gives a private job's result once (``environment.private``); every later read is empty. A
fetch that finds nothing stored then meets that empty answer: it raises ``JobResultExpired``
with the job id and the reason, never a raw HTTP error and never ``None``. A job IBM deleted, or
kept past its retention, answers 404: a fetch that finds nothing stored raises the same error.
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
from tests.conftest import EmulatorFactory

from .conftest import FAST_POLL, OPTIONS, SHOTS, SMALL_BACKEND, counts_of

PRIVATE = {"default_shots": 20, "environment": {"private": True}}


def test_a_private_jobs_result_read_elsewhere_first_is_a_clear_expired_error(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def private_run() -> JobRef:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=PRIVATE)
        wait_for_job(job, poll=FAST_POLL)
        return job

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

    job, first = private_run()

    # The one read IBM gave went to Prefect's storage, keyed by the job id: a later run reads it there.
    assert fetch_later(job) == first


@flow
def done_job(bell: QuantumCircuit, fetch: bool) -> JobRef:
    job = submit_sampler_job([bell], backend=SMALL_BACKEND, options=OPTIONS)
    wait_for_job(job, poll=FAST_POLL)
    if fetch:
        fetch_job_result(job)
    return job


@flow
def fetch_later(job: JobRef | str) -> dict[str, int]:
    return counts_of(fetch_job_result(job))


def test_a_job_deleted_on_ibm_before_its_result_was_stored_is_a_clear_expired_error(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    job = done_job(bell_isa, fetch=False)
    IBMQuantumCredentials.from_environment().get_client().delete_job(job.job_id)

    for handle in (job, job.job_id):
        with pytest.raises(JobResultExpired, match=job.job_id) as raised:
            fetch_later(handle)
        assert "deleted" in raised.value.why
        assert "404" not in str(raised.value)


def test_a_job_past_ibms_retention_is_a_clear_expired_error(
    make_emulator: EmulatorFactory, bell_isa: QuantumCircuit
) -> None:
    emulator = make_emulator(result_retention="30d")
    job = done_job(bell_isa, fetch=False)
    emulator.age(job.job_id, 31 * 86400)

    with pytest.raises(JobResultExpired, match=job.job_id) as raised:
        fetch_later(job)

    assert "retention" in raised.value.why


def test_a_stored_result_is_read_from_prefect_after_ibm_deleted_the_job(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    job = done_job(bell_isa, fetch=True)
    IBMQuantumCredentials.from_environment().get_client().delete_job(job.job_id)
    emulator.reset()  # counters only

    assert sum(fetch_later(job).values()) == SHOTS
    assert not [route for route in emulator.stats()["routes"] if "/jobs" in route], "IBM was not asked"
