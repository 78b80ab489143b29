"""Jobs that end without a result: typed errors carrying IBM's reason, or the snapshot on request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect import flow
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import QiskitRuntimeService

from prefect_qiskit_jobs import (
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    JobStatus,
    await_for_job,
    fetch_job_result,
    submit_sampler_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, run_log_event

# The emulator's reason code for a job that failed while running (IBM's 1500 family).
FAILED_CODE = 1500
CANCELLED_REASON = "Job cancelled by the user"


async def test_a_failed_job_raises_job_failed_error_with_ibms_reason_and_code(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def failing() -> dict[str, Any]:
        job = submit_sampler_job(
            [bell_isa], backend=SMALL_BACKEND, options=OPTIONS, tags=["emulator:fail=boom"]
        )
        with pytest.raises(JobFailedError) as raised:
            await await_for_job(job, poll=FAST_POLL)
        snapshot = await await_for_job(job, poll=FAST_POLL, raise_on_failure=False)
        with pytest.raises(JobFailedError) as fetched:
            fetch_job_result(job)
        return {"job": job, "raised": raised.value, "snapshot": snapshot, "fetched": fetched.value}

    out = await failing()
    job_id = out["job"].job_id

    error: JobFailedError = out["raised"]
    assert (error.job_id, error.reason, error.reason_code) == (job_id, "boom", FAILED_CODE)
    assert f"Job {job_id} failed: ERROR: boom (code {FAILED_CODE})" in str(error)
    assert error.snapshot.status is JobStatus.ERROR
    assert (out["snapshot"].status, out["snapshot"].reason) == (JobStatus.ERROR, "boom")
    assert "emulator:fail=boom" in out["snapshot"].tags

    # Fetching a failed job's result is the same typed error, at once: no retries of a final outcome.
    assert out["fetched"].reason == "boom"
    assert emulator.stats()["jobs"][job_id]["GET /jobs/{job_id}/results"] == 1


async def test_a_job_cancelled_while_awaited_raises_job_cancelled_error_with_ibms_reason(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def cancelled() -> dict[str, Any]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        with run_log_event(f"Job {job.job_id} on {SMALL_BACKEND} is QUEUED") as queued:
            waiting = asyncio.ensure_future(await_for_job(job, poll=FAST_POLL))
            await queued.wait()
        await asyncio.to_thread(lambda: QiskitRuntimeService().job(job.job_id).cancel())
        with pytest.raises(JobCancelledError) as raised:
            await waiting
        snapshot = await await_for_job(job, poll=FAST_POLL, raise_on_failure=False)
        return {"job": job, "raised": raised.value, "snapshot": snapshot}

    out = await cancelled()
    job_id = out["job"].job_id

    error: JobCancelledError = out["raised"]
    assert isinstance(error, JobOutcomeError)
    assert (error.job_id, error.reason, error.reason_code) == (job_id, CANCELLED_REASON, None)
    assert f"Job {job_id} was cancelled: CANCELLED: {CANCELLED_REASON}" in str(error)
    assert (out["snapshot"].status, out["snapshot"].reason) == (JobStatus.CANCELLED, CANCELLED_REASON)
    assert held.job(job_id)["status"] == "Cancelled"
    # Cancelled by the test through the client, once; the wait only watched.
    assert held.stats()["cancels"] == {job_id: 1}


async def test_a_job_deleted_on_ibm_fails_only_its_own_wait(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    # Both jobs belong to one flow run, so one watcher listing answers for both; the deleted job
    # then goes missing from it and its own read answers 404.
    @flow
    async def two_waits() -> dict[str, Any]:
        gone, kept = (submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in "ab")
        with run_log_event(f"on {SMALL_BACKEND} is QUEUED", count=2) as both_queued:
            waits = [asyncio.ensure_future(await_for_job(job, poll=FAST_POLL)) for job in (gone, kept)]
            await both_queued.wait()
        await asyncio.to_thread(lambda: QiskitRuntimeService().delete_job(gone.job_id))
        with pytest.raises(JobNotFoundError) as raised:
            await waits[0]
        held.release(kept.job_id)
        return {"gone": gone, "error": raised.value, "kept": await waits[1]}

    out = await two_waits()

    assert f"No job {out['gone'].job_id}" in str(out["error"])
    assert out["kept"].status is JobStatus.DONE
