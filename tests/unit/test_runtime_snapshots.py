"""IBM's job JSON becomes a ``JobSnapshot`` in one place; the metrics add what only they know."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect_qiskit_jobs import JobStatus
from prefect_qiskit_jobs.ibm.mapping import apply_metrics, snapshot_from_api


def job_json(**changes: Any) -> dict[str, Any]:
    """A job as ``GET /jobs/{id}`` answers it."""
    job: dict[str, Any] = {
        "id": "d1x2c3v4b5n6m7q8w9e0",
        "backend": "ibm_brisbane",
        "state": {"status": "Completed", "reason": None, "reason_code": None},
        "status": "Completed",
        "program": {"id": "sampler"},
        "created": "2026-03-01T10:00:00.123456Z",
        "ended": "2026-03-01T10:05:30Z",
        "tags": ["prefect-qiskit-jobs", "prefect-flow-run:f-1"],
        "usage": {"quantum_seconds": 4.5, "seconds": 4.5},
    }
    job.update(changes)
    return job


def test_a_finished_job() -> None:
    snapshot = snapshot_from_api(job_json())

    assert snapshot.job_id == "d1x2c3v4b5n6m7q8w9e0"
    assert (snapshot.backend, snapshot.primitive, snapshot.status) == (
        "ibm_brisbane",
        "sampler",
        JobStatus.DONE,
    )
    assert snapshot.created == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert snapshot.finished == datetime(2026, 3, 1, 10, 5, 30, tzinfo=timezone.utc)
    assert snapshot.quantum_seconds == 4.5
    assert snapshot.tags == ("prefect-qiskit-jobs", "prefect-flow-run:f-1")


def test_a_job_cancelled_for_running_too_long_carries_its_reason_as_an_error() -> None:
    state = {"status": "Cancelled", "reason": "Ran too long", "reasonCode": 1305}

    snapshot = snapshot_from_api(job_json(state=state, status="Cancelled"))

    assert (snapshot.status, snapshot.reason, snapshot.reason_code) == (JobStatus.ERROR, "Ran too long", 1305)


def test_a_sparse_list_entry_falls_back_to_the_top_level_status() -> None:
    snapshot = snapshot_from_api({"id": "d1x2c3v4b5n6m7q8w9e0", "status": "Queued", "created": "garbage"})

    assert snapshot.status is JobStatus.QUEUED
    assert (snapshot.backend, snapshot.primitive, snapshot.created, snapshot.tags) == (None, None, None, ())


def test_metrics_add_queue_position_start_estimate_and_run_times() -> None:
    queued = snapshot_from_api(job_json(state={"status": "Queued"}, status="Queued", ended=None))
    metrics = {
        "position_in_queue": 4,
        "estimated_start_time": "2026-03-01T11:00:00Z",
        "timestamps": {"running": None, "finished": None},
        "usage": {},
    }

    with_metrics = apply_metrics(queued, metrics)

    assert with_metrics.position_in_queue == 4
    assert with_metrics.estimated_start == datetime(2026, 3, 1, 11, 0, tzinfo=timezone.utc)
    assert with_metrics.describe() == "QUEUED (position 4)"


def test_a_job_no_longer_queued_has_no_queue_position() -> None:
    done = snapshot_from_api(job_json())
    metrics = {
        "position_in_queue": 2,
        "timestamps": {"running": "2026-03-01T10:01:00Z", "finished": "2026-03-01T10:05:00Z"},
        "usage": {"quantum_seconds": 3.0},
    }

    with_metrics = apply_metrics(done, metrics)

    assert with_metrics.position_in_queue is None
    assert with_metrics.running == datetime(2026, 3, 1, 10, 1, tzinfo=timezone.utc)
    assert with_metrics.finished == datetime(2026, 3, 1, 10, 5, tzinfo=timezone.utc)
    assert with_metrics.quantum_seconds == 3.0


def test_a_status_ibm_added_since_makes_an_unknown_snapshot_that_names_it() -> None:
    paused = snapshot_from_api(job_json(state={"status": "Paused"}, status="Paused", ended=None))

    assert (paused.status, paused.unrecognised_status) == (JobStatus.UNKNOWN, "Paused")
    assert paused.describe() == "UNKNOWN (IBM says 'Paused')"
    assert snapshot_from_api(job_json()).unrecognised_status is None
