"""Waits of one flow run on several threads (``.map()``) leave its board and their tables final.

Each mapped wait runs on a worker thread with an event loop of its own, and all of them write the
run's one job board. Their jobs are released together, so their final writes meet; once the waits
have returned, the Prefect API must hold every job DONE on the board and in each wait's table,
with when it started and finished and its QPU seconds.

A released job runs in moments, so a wait that last read it QUEUED may next read it DONE, never
having seen it RUNNING; either way its timestamps must come from the job's own record.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from prefect import flow, unmapped
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, await_for_job, submit_sampler_job, wait_for_job
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import (
    FAST_POLL,
    OPTIONS,
    SMALL_BACKEND,
    artifacts,
    current_flow_run_id,
    run_log_event,
    run_logs,
)

MAPPED = 6


def table(artifact_data: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        json.loads(artifact_data) if isinstance(artifact_data, str) else artifact_data
    )
    return rows


WAIT_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # the detailed table of a wait
BOARD_STAMP = r"[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d"  # the board: no year, to fit


def assert_ran(row: dict[str, Any], stamp: str = WAIT_STAMP) -> None:
    """A DONE job's row tells when it started and finished, and its QPU seconds as a number."""
    assert row["status"] == "DONE", row
    assert re.fullmatch(stamp, row["started"]), row
    assert re.fullmatch(stamp, row["finished"]), row
    assert row["started"] <= row["finished"], row
    assert type(row["QPU seconds"]) in (int, float), row


async def test_mapped_waits_leave_the_board_and_each_wait_table_showing_every_job_final(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def mapped() -> dict[str, Any]:
        submits = submit_sampler_job.map(
            [[bell_isa]] * MAPPED, backend=SMALL_BACKEND, options=unmapped(OPTIONS)
        )
        jobs = submits.result()
        with run_log_event(f"on {SMALL_BACKEND} is QUEUED", count=MAPPED) as all_queued:
            waits = wait_for_job.map(jobs, poll=unmapped(FAST_POLL))
            await all_queued.wait()
        held.release()  # every job ends at once: their waits write the board together
        return {
            "jobs": jobs,
            "finals": waits.result(),
            "waits": [str(wait.task_run_id) for wait in waits],
            "flow_run_id": current_flow_run_id(),
        }

    out = await mapped()
    job_ids = {job.job_id for job in out["jobs"]}
    assert len(job_ids) == MAPPED
    assert {final.status for final in out["finals"]} == {JobStatus.DONE}

    (board,) = await artifacts(key=f"qiskit-jobs-{out['flow_run_id']}")
    rows = table(board.data)
    assert {row["job id"]: row["status"] for row in rows} == dict.fromkeys(job_ids, "DONE")
    for row in rows:
        assert_ran(row, BOARD_STAMP)
    for task_run_id in out["waits"]:
        (wait_table,) = await artifacts(key=f"qiskit-wait-{task_run_id}")
        [row] = table(wait_table.data)
        assert row["job id"] in job_ids
        assert_ran(row)


async def test_a_job_read_queued_then_done_shows_when_it_started_and_finished_and_its_qpu_seconds(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def one() -> dict[str, Any]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        with run_log_event(f"Job {job.job_id} on {SMALL_BACKEND} is QUEUED") as queued:
            waiting = asyncio.ensure_future(await_for_job(job, poll=FAST_POLL, return_state=True))
            await queued.wait()
        held.release(job.job_id)  # it may run and end between two reads of its wait
        state = await waiting
        return {"job": job, "state": state, "flow_run_id": current_flow_run_id()}

    out = await one()
    job_id = out["job"].job_id
    record = held.job(job_id)
    assert record["status"] == "Completed"

    (board,) = await artifacts(key=f"qiskit-jobs-{out['flow_run_id']}")
    [row] = table(board.data)
    assert_ran(row, BOARD_STAMP)
    (wait_table,) = await artifacts(key=f"qiskit-wait-{out['state'].state_details.task_run_id}")
    [wait_row] = table(wait_table.data)
    assert_ran(wait_row)
    assert wait_row["started"].endswith(row["started"][-8:]), (wait_row, row)

    done = [line for line in await run_logs(out["flow_run_id"]) if line.startswith(f"Job {job_id} ")]
    assert done[-1] == (
        f"Job {job_id} on {SMALL_BACKEND} is DONE (started {wait_row['started']}, "
        f"finished {wait_row['finished']}, {wait_row['QPU seconds']} QPU seconds)"
    ), done
