"""What cleanup may delete, decided without I/O; and a stored result deleted once however often asked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType
from prefect.filesystems import LocalFileSystem

from prefect_qiskit_jobs.cleanup import cutoff_of, decide
from prefect_qiskit_jobs.errors import InvalidJobInputError
from prefect_qiskit_jobs.ibm.tags import PACKAGE_TAG, flow_run_tag
from prefect_qiskit_jobs.models import JobSnapshot, JobStatus
from prefect_qiskit_jobs.results.storage import delete_stored, stored_size

NOW = datetime(2026, 12, 6, tzinfo=timezone.utc)
CUTOFF = NOW - timedelta(days=30)
RUN = "8700d957-1247-4791-a086-1d6666cff508"


def job(status: JobStatus = JobStatus.DONE, days_ago: float = 40, run: str | None = RUN) -> JobSnapshot:
    tags = (PACKAGE_TAG, flow_run_tag(run)) if run else (PACKAGE_TAG,)
    ended = NOW - timedelta(days=days_ago)
    return JobSnapshot(job_id="d0000000000000000001", status=status, created=ended, finished=ended, tags=tags)


@pytest.mark.parametrize(
    "state", [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
)
def test_a_final_old_job_of_an_ended_run_goes(state: StateType) -> None:
    assert decide(job(), state, CUTOFF)[0] is True


def test_a_job_without_a_flow_run_goes_on_its_age_alone() -> None:
    assert decide(job(run=None), None, CUTOFF)[0] is True


@pytest.mark.parametrize(
    "state",
    [StateType.RUNNING, StateType.PAUSED, StateType.SCHEDULED, StateType.PENDING, StateType.CANCELLING],
)
def test_a_job_whose_flow_run_is_not_over_stays(state: StateType) -> None:
    assert decide(job(), state, CUTOFF) == (False, f"its flow run {RUN} is {state.value}")


def test_a_job_whose_flow_run_this_api_does_not_know_stays() -> None:
    delete, why = decide(job(), None, CUTOFF)

    assert delete is False
    assert "unknown to this Prefect API" in why


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.UNKNOWN])
def test_a_job_that_has_not_ended_stays(status: JobStatus) -> None:
    assert decide(job(status=status), StateType.COMPLETED, CUTOFF) == (False, f"{status.value}, not final")


def test_a_job_that_ended_after_the_cutoff_stays() -> None:
    assert decide(job(days_ago=29), StateType.COMPLETED, CUTOFF)[0] is False


def test_the_cutoff_is_a_span_back_and_anything_else_is_refused() -> None:
    assert cutoff_of("30d", NOW) == CUTOFF
    with pytest.raises(InvalidJobInputError, match="is not a span"):
        cutoff_of("a month", NOW)


def test_a_stored_result_is_deleted_and_counted_once(tmp_path: Path) -> None:
    storage = LocalFileSystem(basepath=str(tmp_path))
    (tmp_path / "qiskit-result-d1").write_bytes(b"x" * 123)

    assert stored_size(storage, "qiskit-result-d1") == 123
    assert delete_stored(storage, "qiskit-result-d1") == 123
    assert delete_stored(storage, "qiskit-result-d1") is None
    assert stored_size(storage, "qiskit-result-d1") is None
    assert list(tmp_path.iterdir()) == []
