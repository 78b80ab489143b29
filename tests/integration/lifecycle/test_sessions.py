"""Submit tasks inside ``ibm_batch``/``ibm_session`` put their jobs in it; the run's end cancels both.

Evidence is the emulator's record of each job (its ``session_id``), the ``JobRef`` the task
returned, and the emulator's request counters: one ``POST /jobs/{id}/cancel`` per job and one
``DELETE /sessions/{id}/close`` per session, whichever layer sends them.
"""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    InvalidJobInputError,
    JobFailedError,
    JobRef,
    asubmit_sampler_job,
    await_for_job,
    await_for_jobs,
    cancel_jobs_on_exit,
    ibm_batch,
    ibm_session,
    reap_orphaned_jobs,
    submit_sampler_job,
    submit_sampler_jobs,
    wait_for_jobs,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, run_log_event

SESSION_CANCEL = "DELETE /sessions/{session_id}/close"
SESSION_CLOSE = "PATCH /sessions/{session_id}"


def session_of(emulator: RunningEmulator, job: JobRef) -> str | None:
    session_id: str | None = emulator.job(job.job_id)["session_id"]
    return session_id


def test_jobs_submitted_inside_a_batch_carry_its_id_and_leaving_it_closes_the_batch(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def batched() -> tuple[str, list[JobRef], JobRef]:
        with ibm_batch(SMALL_BACKEND) as batch:
            direct = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            split = submit_sampler_jobs(
                [bell_isa] * 3, backend=SMALL_BACKEND, max_pubs_per_job=2, options=OPTIONS
            )
            future = submit_sampler_job.submit([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            mapped = submit_sampler_job.map([[bell_isa], [bell_isa]], backend=SMALL_BACKEND, options=OPTIONS)
        # Futures resolved only after the block: leaving it waited for their submits first.
        inside = [direct, *split, future.result(), *mapped.result()]
        outside = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        wait_for_jobs([*inside, outside], poll=FAST_POLL)
        return batch.session_id, inside, outside

    session_id, inside, outside = batched()

    assert len(inside) == 6
    assert {job.session_id for job in inside} == {session_id}
    assert {session_of(emulator, job) for job in inside} == {session_id}
    assert all(f"prefect-session:{session_id}" in job.tags for job in inside)
    assert outside.session_id is None
    assert session_of(emulator, outside) is None
    stats = emulator.stats()
    assert stats["routes"][SESSION_CLOSE] == 1
    assert SESSION_CANCEL not in stats["routes"]
    assert stats["routes"]["POST /jobs"] == 7


async def test_jobs_submitted_inside_an_async_session_carry_its_id(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def iterative() -> tuple[str, list[JobRef]]:
        async with ibm_session(SMALL_BACKEND, max_time=600) as session:
            first = await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            await await_for_job(first, poll=FAST_POLL)
            second = await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            await await_for_job(second, poll=FAST_POLL)
        return session.session_id, [first, second]

    session_id, jobs = await iterative()

    assert {job.session_id for job in jobs} == {session_id}
    assert {session_of(emulator, job) for job in jobs} == {session_id}
    assert emulator.stats()["routes"][SESSION_CLOSE] == 1


def test_bad_use_of_a_session_fails_before_anything_is_submitted(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def misused() -> tuple[str, str]:
        with ibm_batch(SMALL_BACKEND):
            with pytest.raises(InvalidJobInputError, match="detached") as detached:
                submit_sampler_job([bell_isa], backend=SMALL_BACKEND, detached=True)
            with pytest.raises(InvalidJobInputError, match="ibm_nairobi") as elsewhere:
                submit_sampler_job([bell_isa], backend="ibm_nairobi")
        return str(detached.value), str(elsewhere.value)

    misused()

    assert "POST /jobs" not in held.stats()["routes"]


async def test_an_interrupted_wait_cancels_the_sessions_jobs_and_the_session_once_each(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def interrupted() -> tuple[str, list[str]]:
        async with ibm_batch(SMALL_BACKEND) as batch:
            jobs = [
                await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
                for _ in range(3)
            ]
            with run_log_event(f"on {SMALL_BACKEND} is QUEUED", count=2) as queued:
                # The wait awaits two of the three: the session's third job is cancelled too.
                waiting = asyncio.ensure_future(await_for_jobs(jobs[:2], poll=FAST_POLL))
                await queued.wait()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        return batch.session_id, [job.job_id for job in jobs]

    _, job_ids = await interrupted()

    stats = held.stats()
    assert stats["cancels"] == dict.fromkeys(job_ids, 1)
    assert stats["routes"][SESSION_CANCEL] == 1
    assert {held.job(job_id)["status"] for job_id in job_ids} == {"Cancelled"}


class Boom(RuntimeError):
    """The flow fails after submitting, so its (opted-in) failure hook must clean up."""


def test_the_flow_hook_cancels_the_runs_jobs_and_its_session_once_each(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    submitted: list[JobRef] = []

    @cancel_jobs_on_exit(on_failure=True)
    @flow
    def failing() -> None:
        with ibm_session(SMALL_BACKEND):
            submitted.extend(
                submit_sampler_jobs(
                    [bell_isa] * 2, backend=SMALL_BACKEND, max_pubs_per_job=1, options=OPTIONS
                )
            )
            raise Boom("after submitting")

    state = failing(return_state=True)

    assert state.is_failed()
    stats = held.stats()
    assert stats["cancels"] == {job.job_id: 1 for job in submitted}
    assert stats["routes"][SESSION_CANCEL] == 1
    assert {held.job(job.job_id)["status"] for job in submitted} == {"Cancelled"}


async def test_the_reaper_cancels_a_dead_runs_jobs_and_its_session_once_each(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def left_behind() -> None:
        async with ibm_batch(SMALL_BACKEND):
            for _ in range(2):
                await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            raise Boom("no hook: the reaper must find these")

    await left_behind(return_state=True)
    job_ids = [job["id"] for job in held.jobs()]

    reaped = await reap_orphaned_jobs(include_failed=True, grace_seconds=0)

    assert sorted(reaped) == sorted(job_ids)
    stats = held.stats()
    assert stats["cancels"] == dict.fromkeys(job_ids, 1)
    assert stats["routes"][SESSION_CANCEL] == 1


async def test_a_job_queued_when_its_session_expires_fails_its_wait_with_a_clear_message(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def too_long() -> tuple[str, str]:
        async with ibm_session(SMALL_BACKEND, max_time=2) as session:
            job = await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        with pytest.raises(JobFailedError) as failed:
            await await_for_job(job, poll=FAST_POLL)
        return session.session_id, str(failed.value)

    session_id, message = await too_long()

    assert f"session {session_id}" in message
    assert "maximum TTL of 2 s" in message
