"""Job rows and result summaries, built from values alone (no Prefect API, no emulator)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult, SamplerPubResult

from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, Primitive
from prefect_qiskit_jobs.results.summaries import counts_markdown, expectation_rows
from prefect_qiskit_jobs.wait.display import (
    BOARD_COLUMNS,
    artifact_key,
    board_rows,
    job_row,
    run_progress,
    short_stamp,
)

JOB = JobRef(
    job_id="d1x2c3v4b5n6m7q8w9e0",
    backend="ibm_brisbane",
    primitive=Primitive.SAMPLER,
    tags=("prefect-qiskit-jobs", "prefect-flow-run:abc", "circuit:bell"),
    created_at=datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc),
)


def test_a_job_row_shows_status_queue_position_and_only_the_users_tags() -> None:
    queued = JobSnapshot(job_id=JOB.job_id, status=JobStatus.QUEUED, position_in_queue=4)
    row = job_row(JOB, queued)
    assert row["status"] == "QUEUED"
    assert row["queue position"] == 4
    assert row["created"] == "2026-11-22 01:02:03"
    assert row["tags"] == "circuit:bell"
    assert job_row(JOB, None)["status"] == "SUBMITTED"


def test_a_job_row_names_a_status_ibm_added_since() -> None:
    paused = JobSnapshot(job_id=JOB.job_id, status=JobStatus.UNKNOWN, unrecognised_status="Paused")
    assert job_row(JOB, paused)["status"] == "UNKNOWN (Paused)"


def test_a_failed_job_row_carries_the_reason() -> None:
    failed = JobSnapshot(job_id=JOB.job_id, status=JobStatus.ERROR, reason="ran too long", reason_code=1305)
    assert job_row(JOB, failed)["reason"] == "ran too long"


def test_a_done_job_row_shows_when_it_started_and_finished_and_its_qpu_seconds() -> None:
    done = JobSnapshot(
        job_id=JOB.job_id,
        status=JobStatus.DONE,
        running=datetime(2026, 11, 22, 1, 5, 0, tzinfo=timezone.utc),
        finished=datetime(2026, 11, 22, 1, 5, 7, tzinfo=timezone.utc),
        quantum_seconds=4.25,
    )
    row = job_row(JOB, done)
    assert (row["started"], row["finished"], row["QPU seconds"]) == (
        "2026-11-22 01:05:00",
        "2026-11-22 01:05:07",
        4.25,
    )


def test_qpu_seconds_are_shown_once_the_job_is_final() -> None:
    # IBM reports usage as pending (0) until the job ends.
    running = JobSnapshot(job_id=JOB.job_id, status=JobStatus.RUNNING, quantum_seconds=0.0)
    assert job_row(JOB, running)["QPU seconds"] == ""


def _rows(*snapshots: JobSnapshot, job: JobRef = JOB) -> list[dict[str, object]]:
    return [job_row(job.model_copy(update={"job_id": s.job_id}), s) for s in snapshots]


def test_the_board_has_its_first_columns_and_the_others_only_where_they_say_something() -> None:
    plain = JOB.model_copy(update={"tags": ("prefect-qiskit-jobs",)})
    done = _rows(JobSnapshot(job_id="d1", status=JobStatus.DONE), job=plain)
    first = ["status", "backend", "job id", "started", "finished", "QPU seconds"]
    assert [list(row) for row in board_rows(done)] == [first]

    queued = _rows(JobSnapshot(job_id="d2", status=JobStatus.QUEUED, position_in_queue=2), job=plain)
    failed = _rows(JobSnapshot(job_id="d3", status=JobStatus.ERROR, reason="ran too long"), job=plain)
    estimator = plain.model_copy(update={"job_id": "d4", "primitive": Primitive.ESTIMATOR})
    board = board_rows([*done, *queued, *failed, job_row(estimator, None)])
    assert list(board[0]) == list(BOARD_COLUMNS)
    assert [row["queue position"] for row in board] == ["", 2, "", ""]
    assert [row["reason"] for row in board] == ["", "", "ran too long", ""]
    assert [row["primitive"] for row in board] == ["sampler", "sampler", "sampler", "estimator"]


def test_the_board_shows_times_without_the_year() -> None:
    done = JobSnapshot(
        job_id=JOB.job_id, status=JobStatus.DONE, running=datetime(2026, 12, 6, 4, 20, 7, tzinfo=timezone.utc)
    )
    assert job_row(JOB, done, short_stamp)["started"] == "Dec 06 04:20:07"


def test_the_run_progress_counts_final_jobs_and_says_each_status_with_failed_jobs_reasons() -> None:
    rows = [
        *_rows(
            JobSnapshot(job_id="d1", status=JobStatus.DONE),
            JobSnapshot(job_id="d2", status=JobStatus.DONE),
            JobSnapshot(job_id="d3", status=JobStatus.ERROR, reason="ran too long", reason_code=1305),
            JobSnapshot(job_id="d4", status=JobStatus.CANCELLED, reason="cancelled by the user"),
            JobSnapshot(job_id="d5", status=JobStatus.QUEUED),
        ),
        job_row(JOB.model_copy(update={"job_id": "d6"}), None),
    ]
    share, summary = run_progress(rows)
    assert share == 100.0 * 4 / 6
    assert summary.splitlines() == [
        "**4 of 6 jobs final**",
        "",
        "- SUBMITTED: 1",
        "- QUEUED: 1",
        "- DONE: 2",
        "- ERROR: 1 — `d3` ran too long",
        "- CANCELLED: 1 — `d4` cancelled by the user",
    ]


def test_artifact_keys_are_lowercase_letters_digits_and_dashes() -> None:
    key = artifact_key("qiskit-jobs", "0192-AB_cd/ef")
    assert key == "qiskit-jobs-0192-ab-cd-ef"


def _sampler_result(counts: dict[str, int]) -> PrimitiveResult[SamplerPubResult]:
    bits = BitArray.from_counts(counts)
    return PrimitiveResult([SamplerPubResult(DataBin(meas=bits, shape=()))])


def test_the_counts_histogram_lists_the_most_frequent_outcomes_first() -> None:
    text = counts_markdown("job-1", _sampler_result({"00": 480, "11": 470, "01": 30, "10": 20}))
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    assert lines[0].startswith("| `00` | 480 | 48.0% |")
    assert lines[1].startswith("| `11` | 470 | 47.0% |")
    assert "1000 shots, 4 distinct outcomes" in text


def test_expectation_rows_pair_each_value_with_its_standard_error() -> None:
    data = DataBin(evs=np.array([0.5, -0.25]), stds=np.array([0.01, 0.02]), shape=(2,))
    rows = expectation_rows(PrimitiveResult([PubResult(data)]))
    assert rows == [
        {"pub": 0, "index": "0", "expectation value": 0.5, "± standard error": 0.01},
        {"pub": 0, "index": "1", "expectation value": -0.25, "± standard error": 0.02},
    ]
