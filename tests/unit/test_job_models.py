"""Job statuses, ids and references: IBM's strings mapped in one place, ids checked before any request."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from prefect_qiskit_jobs import InvalidJobInputError, JobRef, JobSnapshot, JobStatus, Primitive
from prefect_qiskit_jobs.models import check_job_id


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        ("Queued", JobStatus.QUEUED),
        ("INITIALIZING", JobStatus.QUEUED),
        ("Validating", JobStatus.QUEUED),
        ("Running", JobStatus.RUNNING),
        ("Completed", JobStatus.DONE),
        ("DONE", JobStatus.DONE),
        ("Failed", JobStatus.ERROR),
        ("ERROR", JobStatus.ERROR),
        ("Cancelled", JobStatus.CANCELLED),
        ("  completed ", JobStatus.DONE),
    ],
)
def test_ibms_status_strings_map_to_the_clients_statuses(wire: str, status: JobStatus) -> None:
    assert JobStatus.from_api(wire) is status


def test_a_job_cancelled_for_running_too_long_is_an_error_not_a_cancel() -> None:
    assert JobStatus.from_api("Cancelled", 1305) is JobStatus.ERROR
    assert JobStatus.from_api("Cancelled", 1300) is JobStatus.CANCELLED
    assert JobStatus.from_api("Failed", 1305) is JobStatus.ERROR


def test_a_status_ibm_added_since_is_unknown_not_final_and_warned_about_once_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Strings no other test uses: the warning is given once per string per process.
    with caplog.at_level(logging.WARNING, logger="prefect_qiskit_jobs.models"):
        statuses = [JobStatus.from_api(s) for s in ("Hibernating", "Hibernating", " hibernating", "Thawing")]

    assert statuses == [JobStatus.UNKNOWN] * 4
    assert not JobStatus.UNKNOWN.is_final
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "IBM Quantum Platform answered a job status this package does not know, 'Hibernating'",
        "IBM Quantum Platform answered a job status this package does not know, 'Thawing'",
    ]


def test_only_done_error_and_cancelled_are_final() -> None:
    assert {s for s in JobStatus if s.is_final} == {JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED}


@pytest.mark.parametrize("job_id", ["d1x2c3v4b5n6m7q8w9e0", "cmz8k2j1qf3g000834a0", "a_b-c_d-", "x" * 64])
def test_job_ids_in_ibms_shape_pass(job_id: str) -> None:
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    "job_id", ["", "short", "x" * 65, "has space in it", "../../etc/passwd", "é" * 10, None, 12345678]
)
def test_anything_else_is_refused_before_a_request(job_id: object) -> None:
    with pytest.raises(InvalidJobInputError, match="is not an IBM Quantum job id"):
        check_job_id(job_id)  # type: ignore[arg-type]


def test_a_job_ref_is_plain_json_and_comes_back_equal() -> None:
    ref = JobRef(
        job_id="d1x2c3v4b5n6m7q8w9e0",
        backend="ibmq_manila",
        primitive=Primitive.SAMPLER,
        instance="crn:v1:bluemix:public:quantum-computing:us-east:a/x::y",
        tags=("prefect-qiskit-jobs", "prefect-flow-run:f"),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )

    data = json.loads(ref.model_dump_json())

    assert data["primitive"] == "sampler"
    assert data["tags"] == ["prefect-qiskit-jobs", "prefect-flow-run:f"]
    assert JobRef.model_validate(data) == ref
    assert not ref.detached
    assert ref.model_copy(update={"tags": ("prefect-detached",)}).detached


def test_a_job_ref_refuses_a_malformed_id() -> None:
    with pytest.raises(ValidationError, match="is not an IBM Quantum job id"):
        JobRef(job_id="nope", backend="ibmq_manila", primitive="sampler")


@pytest.mark.parametrize(
    ("snapshot", "text"),
    [
        (JobSnapshot(job_id="j" * 8, status=JobStatus.QUEUED, position_in_queue=3), "QUEUED (position 3)"),
        (JobSnapshot(job_id="j" * 8, status=JobStatus.RUNNING), "RUNNING"),
        (
            JobSnapshot(job_id="j" * 8, status=JobStatus.ERROR, reason="ran too long", reason_code=1305),
            "ERROR: ran too long (code 1305)",
        ),
    ],
)
def test_a_snapshot_describes_itself_in_one_line(snapshot: JobSnapshot, text: str) -> None:
    assert snapshot.describe() == text


def test_two_references_to_one_job_are_equal_whatever_creation_time_each_builder_saw() -> None:
    now = datetime.now(timezone.utc)
    posted = JobRef(job_id="d1x2c3v4b5n6m7q8w9e0", backend="b", primitive=Primitive.SAMPLER, created_at=now)
    adopted = posted.model_copy(update={"created_at": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    other = posted.model_copy(update={"tags": ("x",)})

    assert posted == adopted
    assert hash(posted) == hash(adopted)
    assert len({posted, adopted, other}) == 2
    assert posted != other
