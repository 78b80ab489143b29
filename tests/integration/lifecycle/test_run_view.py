"""What a person watching the run sees: the job id in the wait's name, a log line per status change,
and artifacts that end showing the job DONE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, PollPolicy, await_for_job, submit_sampler_job
from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator

from .conftest import (
    HELD_QUEUE_DELAY,
    OPTIONS,
    SMALL_BACKEND,
    artifacts,
    current_flow_run_id,
    point_environment_at,
    run_log_event,
    run_logs,
    status_reads,
)

RUN_SECONDS = 3.0
# Polls far more often than the job changes, and sees it RUNNING: the pause stays below RUN_SECONDS.
POLL = PollPolicy(initial=0.1, growth=0.1, cap=0.5, jitter=0.1)
QUEUED_SECONDS = 1.5


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[RunningEmulator]:
    """Jobs stay queued until released, then run for RUN_SECONDS."""
    config = EmulatorConfig(queue_delay=HELD_QUEUE_DELAY, concurrency=2, min_run_seconds=RUN_SECONDS)
    with start_emulator(config) as emulator:
        yield emulator


def table(artifact_data: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        json.loads(artifact_data) if isinstance(artifact_data, str) else artifact_data
    )
    return rows


@contextlib.contextmanager
def task_run_names() -> Iterator[set[str]]:
    """The names of the task runs that log while this is open, as Prefect's run logger labels them.

    Read from the log records in this process: the API records task runs from events, which the
    test harness under load has been seen to drop, and the name is what is under test.
    """
    names: set[str] = set()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            name = getattr(record, "task_run_name", None)
            if name:
                names.add(str(name))

    handler = Handler()
    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(handler)
    try:
        yield names
    finally:
        logger.removeHandler(handler)


async def test_a_wait_is_named_after_its_job_logs_each_change_once_and_leaves_artifacts(
    slow_emulator: RunningEmulator, bell_isa: QuantumCircuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = point_environment_at(slow_emulator, monkeypatch)
    emulator.reset(jobs=True)

    @flow
    async def watched() -> dict[str, Any]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        with run_log_event(f"Job {job.job_id} on {SMALL_BACKEND} is QUEUED") as queued:
            # The awaitable twin: the sync wait would hold this event loop until the job ends.
            waiting = asyncio.ensure_future(await_for_job(job, poll=POLL, return_state=True))
            await queued.wait()
        # Several polls find it still queued; none of them may add a line.
        await asyncio.sleep(QUEUED_SECONDS)
        emulator.release(job.job_id)
        state = await waiting
        return {
            "job": job,
            "state": state,
            "final": await state.result(),
            "flow_run_id": current_flow_run_id(),
        }

    with task_run_names() as names:
        out = await watched()
    job_id = out["job"].job_id
    task_run_id = out["state"].state_details.task_run_id
    assert out["final"].status is JobStatus.DONE

    assert f"wait-for-{job_id}" in names

    lines = [line for line in await run_logs(out["flow_run_id"]) if line.startswith(f"Job {job_id} ")]
    said = [re.match(rf"Job {job_id} on {SMALL_BACKEND} is (\w+)", line) for line in lines]
    assert [m.group(1) for m in said if m] == ["QUEUED", "RUNNING", "DONE"], lines
    reads = status_reads(emulator.stats())  # its run's listings: the only job on the emulator
    assert reads > 2 * len(lines), "the job was polled more often than its status changed"

    (wait_table,) = await artifacts(key=f"qiskit-wait-{task_run_id}")
    [row] = table(wait_table.data)
    assert (row["job id"], row["status"], row["backend"]) == (job_id, "DONE", SMALL_BACKEND)
    assert row["started"], row
    assert row["finished"], row
    assert type(row["QPU seconds"]) is float, row

    (board,) = await artifacts(key=f"qiskit-jobs-{out['flow_run_id']}")
    assert [(r["job id"], r["status"]) for r in table(board.data)] == [(job_id, "DONE")]


async def test_a_result_fetched_from_async_code_leaves_its_counts_summary(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    from prefect_qiskit_jobs import afetch_job_result, asubmit_sampler_job

    @flow
    async def fetched_async() -> str:
        job = await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        await await_for_job(job, poll=PollPolicy(initial=0.2, cap=1.0))
        await afetch_job_result(job)
        return job.job_id

    job_id = await fetched_async()

    (summary,) = await artifacts(key=f"qiskit-result-{job_id}".lower())
    assert summary.type == "markdown"
    assert "| outcome | count | share |" in str(summary.data)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_results_fetched_in_a_batch_each_leave_their_counts_summary(
    kind: str, emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    """The batch shares one Prefect client among its fetches: each summary still reaches the API."""
    from prefect_qiskit_jobs import (
        afetch_job_results,
        asubmit_sampler_jobs,
        await_for_jobs,
        fetch_job_results,
        submit_sampler_jobs,
        wait_for_jobs,
    )

    pubs = [(bell_isa, None, 100)] * 3

    @flow
    async def fetched_async() -> list[str]:
        jobs = await asubmit_sampler_jobs(pubs, backend=SMALL_BACKEND, max_pubs_per_job=1)
        await await_for_jobs(jobs, poll=POLL)
        await afetch_job_results(jobs)
        return [job.job_id for job in jobs]

    @flow
    def fetched_sync() -> list[str]:
        jobs = submit_sampler_jobs(pubs, backend=SMALL_BACKEND, max_pubs_per_job=1)
        wait_for_jobs(jobs, poll=POLL)
        fetch_job_results(jobs)
        return [job.job_id for job in jobs]

    job_ids = await fetched_async() if kind == "async" else fetched_sync()

    assert len(set(job_ids)) == 3
    for job_id in job_ids:
        (summary,) = await artifacts(key=f"qiskit-result-{job_id}".lower())
        assert "| outcome | count | share |" in str(summary.data)
