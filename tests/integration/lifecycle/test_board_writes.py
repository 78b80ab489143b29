"""Waits of one flow run on several threads (``.map()``) leave its board and their tables final.

Each mapped wait runs on a worker thread with an event loop of its own, and all of them write the
run's one job board. Their jobs are released together, so their final writes meet; once the waits
have returned, the Prefect API must hold every job DONE on the board and in each wait's table.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import flow, unmapped
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, submit_sampler_job, wait_for_job
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, artifacts, current_flow_run_id, run_log_event

MAPPED = 6


def table(artifact_data: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        json.loads(artifact_data) if isinstance(artifact_data, str) else artifact_data
    )
    return rows


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
    assert {row["job id"]: row["status"] for row in table(board.data)} == dict.fromkeys(job_ids, "DONE")
    for task_run_id in out["waits"]:
        (wait_table,) = await artifacts(key=f"qiskit-wait-{task_run_id}")
        [row] = table(wait_table.data)
        assert row["job id"] in job_ids
        assert (row["status"], bool(row["finished"])) == ("DONE", True)
