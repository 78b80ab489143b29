"""A cap on jobs pending on IBM holds submits back until one of the capped jobs ends.

On the held emulator jobs stay queued until the test releases them, so the only thing keeping
the pending count down is the cap. The test releases one job at a time, and only once the
submits have filled the cap, so the submits must both stop at the cap and go on as jobs end.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from prefect import flow

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    JobRef,
    JobStatus,
    afetch_job_results,
    asubmit_sampler_job,
    await_for_jobs,
    submit_sampler_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.tags import PACKAGE_TAG, flow_run_tag
from prefect_qiskit_jobs.limits.inflight import MAX_IN_FLIGHT_VARIABLE
from prefect_qiskit_jobs.submit import call as submit_module

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, assert_bell, counts_of, run_log_event, until

JOBS = 10
CAP = 3
ENV_CAP = 2
OTHER_BACKEND = "ibm_brisbane"
FINAL = {"Completed", "Failed", "Cancelled"}


def capped(emulator: RunningEmulator, cap: int) -> IBMQuantumCredentials:
    return IBMQuantumCredentials.for_emulator(emulator).model_copy(update={"max_jobs_in_flight": cap})


async def release_one_at_a_time(
    emulator: RunningEmulator, total: int, cap: int, mine: Callable[[dict[str, Any]], bool]
) -> None:
    """Each round: await the submits filling the cap, then let the oldest queued job run to its end."""
    finished = 0
    while finished < total:
        wanted = min(cap, total - finished)

        def filled(wanted: int = wanted) -> list[dict[str, Any]]:
            jobs = [job for job in emulator.jobs() if mine(job)]
            pending = [job for job in jobs if job["status"] not in FINAL]
            return pending if len(pending) >= wanted else []

        pending = await until(filled, f"{wanted} pending jobs")
        queued = next(job["id"] for job in pending if job["status"] == "Queued")
        emulator.release(queued)
        await until(lambda job_id=queued: emulator.job(job_id)["status"] in FINAL, f"job {queued} ending")
        finished += 1


async def test_a_capped_account_never_has_more_than_three_jobs_pending_and_all_ten_complete(
    held: RunningEmulator, bell_isa: Any
) -> None:
    credentials = capped(held, CAP)

    @flow
    async def ten_jobs() -> list[dict[str, int]]:
        futures = submit_sampler_job.map(
            [[bell_isa]] * JOBS, backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
        )
        await release_one_at_a_time(held, JOBS, CAP, mine=lambda job: True)
        jobs: list[JobRef] = futures.result()
        finals = await await_for_jobs(jobs, credentials=credentials, poll=FAST_POLL)
        assert {final.status for final in finals} == {JobStatus.DONE}
        return [counts_of(result) for result in await afetch_job_results(jobs, credentials=credentials)]

    results = await ten_jobs()

    assert len(results) == JOBS
    for counts in results:
        assert_bell(counts)
    stats = held.stats()
    # Without the cap all ten would be queued at once (the control test below).
    assert stats["peak_pending"] == CAP
    assert stats["routes"]["POST /jobs"] == JOBS
    assert [job["status"] for job in held.jobs()] == ["Completed"] * JOBS


def threads_submitting() -> int:
    """Threads of this process now running the package's submit code (``submit.py``)."""
    count = 0
    for frame in sys._current_frames().values():
        walk: FrameType | None = frame
        while walk is not None:
            if walk.f_code.co_filename == submit_module.__file__:
                count += 1
                break
            walk = walk.f_back
    return count


async def test_an_async_flows_held_back_submits_wait_without_a_thread_each(
    held: RunningEmulator, bell_isa: Any
) -> None:
    credentials = capped(held, CAP)
    seen_submitting: list[int] = []

    async def watch_then_release() -> None:
        with run_log_event(r"^Waiting: 3 of cap 3") as waiting:
            await until(lambda: held.stats()["pending"] == CAP, "the cap filled")
            await waiting.wait()
        seen_submitting.append(threads_submitting())  # the other seven wait on the event loop
        await release_one_at_a_time(held, JOBS, CAP, mine=lambda job: True)

    @flow
    async def ten_jobs() -> list[JobRef]:
        submits = [
            asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS)
            for _ in range(JOBS)
        ]
        jobs, _ = await asyncio.gather(asyncio.gather(*submits), watch_then_release())
        return jobs

    jobs = await ten_jobs()

    assert len({job.job_id for job in jobs}) == JOBS
    assert seen_submitting == [0]  # submitting in a thread each, seven were seen waiting in seven
    stats = held.stats()
    assert stats["peak_pending"] == CAP
    assert [job["status"] for job in held.jobs()] == ["Completed"] * JOBS


async def test_the_environment_cap_counts_its_own_flow_runs_jobs_not_another_runs(
    held: RunningEmulator, bell_isa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another flow run's job, pending throughout (on another backend, so it holds up no queue here).
    other_tags = [PACKAGE_TAG, flow_run_tag(uuid.uuid4())]
    (other,) = held.create_jobs(1, OTHER_BACKEND, tags=other_tags)
    monkeypatch.setenv(MAX_IN_FLIGHT_VARIABLE, str(ENV_CAP))
    own = 4

    @flow
    async def capped_run() -> list[JobRef]:
        futures = [
            submit_sampler_job.submit([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(own)
        ]
        await release_one_at_a_time(held, own, ENV_CAP, mine=lambda job: job["id"] != other)
        return [future.result() for future in futures]

    jobs = await capped_run()

    assert len({job.job_id for job in jobs}) == own
    # The other run's job was pending all along and took none of this run's two places.
    assert held.job(other)["status"] == "Queued"
    assert held.stats()["peak_pending"] == ENV_CAP + 1
    assert sorted(job["status"] for job in held.jobs() if job["id"] != other) == ["Completed"] * own


async def test_without_a_cap_the_jobs_pile_up(held: RunningEmulator, bell_isa: Any) -> None:
    """The control: what the first test's cap prevents."""

    @flow
    def ten_jobs() -> list[JobRef]:
        futures = submit_sampler_job.map([[bell_isa]] * JOBS, backend=SMALL_BACKEND, options=OPTIONS)
        return futures.result()

    jobs = ten_jobs()

    assert len(jobs) == JOBS
    stats = held.stats()
    assert stats["pending"] == stats["peak_pending"] == JOBS > CAP
    # No cap: no count of pending jobs before the posts. A first run looks no key up before its
    # POST, nor after it: each POST went once, so no duplicate of a re-sent POST can exist.
    assert stats["routes"].get("GET /jobs", 0) == 0
