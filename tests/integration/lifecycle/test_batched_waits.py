"""Many jobs awaited together are read in batches, and transient errors only slow the waits down."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, unmapped
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, await_for_jobs, fetch_job_result, submit_sampler_job
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator

from .conftest import (
    FAST_POLL,
    OPTIONS,
    SMALL_BACKEND,
    assert_bell,
    counts_of,
    run_log_event,
    status_reads,
)

MANY = 50
FEW = 6
FEW_SHOTS = 20
QUEUED_SECONDS = 2.0


async def test_fifty_jobs_of_a_flow_run_are_read_in_batches_not_one_by_one(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    emulator = held

    @flow
    async def many() -> dict[str, Any]:
        futures = submit_sampler_job.map(
            [[bell_isa]] * MANY, backend=SMALL_BACKEND, options=unmapped({"default_shots": FEW_SHOTS})
        )
        jobs = futures.result()
        before = emulator.stats()
        with run_log_event(f"on {SMALL_BACKEND} is QUEUED", count=MANY) as all_queued:
            waiting = asyncio.ensure_future(await_for_jobs(jobs, poll=FAST_POLL))
            await all_queued.wait()
        # Let the jobs sit in the queue for a few polling cycles, then let them all run.
        await asyncio.sleep(QUEUED_SECONDS)
        emulator.release()
        finals = await waiting
        return {"jobs": jobs, "finals": finals, "before": before, "after": emulator.stats()}

    out = await many()
    jobs, before, after = out["jobs"], out["before"], out["after"]

    assert len({job.job_id for job in jobs}) == MANY
    assert [s.job_id for s in out["finals"]] == [job.job_id for job in jobs]
    assert {s.status for s in out["finals"]} == {JobStatus.DONE}
    listings = after["routes"]["GET /jobs"] - before["routes"].get("GET /jobs", 0)  # submits list nothing
    reads = status_reads(after) - status_reads(before)
    # One listing per polling cycle answers for every job of the run, final states included; read
    # one by one, every cycle would cost 50 reads.
    assert listings >= 2
    assert reads == listings
    assert all(after["jobs"].get(job.job_id, {}).get("GET /jobs/{job_id}", 0) == 0 for job in jobs)


async def test_waits_and_fetches_finish_with_right_results_when_a_fifth_of_reads_fail(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    # With this seed the 2nd and 4th matching requests are answered 503 and 429: both kinds happen
    # however the requests interleave. The client retries 5xx itself; the watcher sees the 429s.
    held.set_faults(FaultRule(route="GET /jobs*", server_error=0.1, rate_limit=0.1), seed=7)
    # Fetches retry only what may pass later (429/5xx); shorten their pause, not their logic.
    fetch = fetch_job_result.with_options(retry_delay_seconds=0.2)

    @flow
    async def flaky() -> list[dict[str, int]]:
        jobs = [submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(FEW)]
        with run_log_event(f"on {SMALL_BACKEND} is QUEUED", count=FEW) as all_queued:
            waiting = asyncio.ensure_future(await_for_jobs(jobs, poll=FAST_POLL))
            await all_queued.wait()
        await asyncio.sleep(QUEUED_SECONDS)  # poll through the faults a while
        held.release()
        finals = await waiting
        assert {s.status for s in finals} == {JobStatus.DONE}
        return [counts_of(fetch(job)) for job in jobs]

    results = await flaky()

    assert len(results) == FEW
    for counts in results:
        assert_bell(counts)
    faults = held.stats()["faults"]
    assert sum(by_kind.get("rate_limit", 0) for by_kind in faults.values()) > 0
    assert sum(by_kind.get("server_error", 0) for by_kind in faults.values()) > 0
    assert [job["status"] for job in held.jobs()] == ["Completed"] * FEW
