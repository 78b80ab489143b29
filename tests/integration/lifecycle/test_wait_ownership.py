"""A wait cancels only the jobs its own run submitted, and only when it is interrupted.

The jobs stay queued on the held emulator; the emulator's cancel counters are the evidence.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    JobRef,
    JobSnapshot,
    JobWaitTimeoutError,
    Primitive,
    await_for_job,
    await_for_jobs,
    resolve_credentials,
    submit_sampler_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import gateway_for
from prefect_qiskit_jobs.wait.display import WaitMonitor
from prefect_qiskit_jobs.wait.sensor import await_jobs

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, run_log_event


def submitted_by_a_person(pubs: list[QuantumCircuit]) -> str:
    """A job someone submitted by hand, outside this package: no run or process tag."""
    gateway = gateway_for(resolve_credentials(None))
    return gateway.submit(Primitive.SAMPLER, pubs, SMALL_BACKEND, OPTIONS, ["by-hand"]).job_id


def status_of(emulator: RunningEmulator, job_id: str) -> str:
    return str(emulator.job(job_id)["status"])


async def test_an_interrupted_wait_cancels_its_runs_job_and_leaves_one_handed_over_by_id(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    foreign = submitted_by_a_person([bell_isa])

    @flow
    async def interrupted() -> str:
        own = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        with run_log_event(f"on {SMALL_BACKEND} is QUEUED", count=2) as both_queued:
            waiting = asyncio.ensure_future(await_for_jobs([own, foreign], poll=FAST_POLL))
            await both_queued.wait()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return own.job_id

    own = await interrupted()

    assert status_of(held, own) == "Cancelled"
    assert status_of(held, foreign) == "Queued"
    assert held.stats()["cancels"] == {own: 1}


async def test_a_timed_out_wait_leaves_a_job_of_another_run_running(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def submitter() -> JobRef:
        return submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)

    @flow
    async def waiter(job_id: str) -> str:
        with pytest.raises(JobWaitTimeoutError) as raised:
            await await_for_job(job_id, poll=FAST_POLL, timeout=0.5)
        return str(raised.value)

    job = await submitter()
    message = await waiter(job.job_id)

    assert f"left running {job.job_id}" in message
    assert status_of(held, job.job_id) == "Queued"
    assert held.stats()["cancels"] == {}


async def test_a_timed_out_wait_cancels_the_job_its_own_run_submitted(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def impatient() -> tuple[str, str]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        with pytest.raises(JobWaitTimeoutError) as raised:
            await await_for_job(job, poll=FAST_POLL, timeout=0.5)
        return job.job_id, str(raised.value)

    job_id, message = await impatient()

    assert f"cancelled {job_id}" in message
    assert status_of(held, job_id) == "Cancelled"
    assert held.stats()["cancels"] == {job_id: 1}


class BrokenDisplay(WaitMonitor):
    """A monitor whose display fails on the first status it is shown: an error, not an interrupt."""

    async def observe(self, snapshot: JobSnapshot) -> None:
        raise RuntimeError("the artifact API is down")


async def test_an_error_inside_the_wait_cancels_nothing(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def failing() -> dict[str, Any]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        monitor = BrokenDisplay([job], _logger(), None, None)
        with pytest.raises(RuntimeError, match="artifact API is down"):
            await await_jobs([job], poll=FAST_POLL, monitor=monitor)
        return {"job_id": job.job_id}

    out = await failing()

    assert status_of(held, out["job_id"]) == "Queued"
    assert held.stats()["cancels"] == {}


def _logger() -> Any:
    import logging

    return logging.getLogger("tests.wait_ownership")
