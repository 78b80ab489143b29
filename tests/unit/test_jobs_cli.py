"""The pure parts of ``prefect-qiskit-jobs jobs``: flag parsing, what IBM is asked, what is printed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from prefect_qiskit_jobs.cli import app
from prefect_qiskit_jobs.cli.errors import BadInputError, one_line
from prefect_qiskit_jobs.cli.jobs import (
    job_row,
    parse_run_id,
    parse_since,
    parse_states,
    pending_filter,
    result_lines,
)
from prefect_qiskit_jobs.ibm.tags import deployment_tag, flow_run_tag
from prefect_qiskit_jobs.models import JobSnapshot, JobStatus

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1.5d", timedelta(days=1.5)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_since_takes_a_span_back_from_now(text: str, back: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - back


def test_since_takes_an_iso_time_and_reads_a_naive_one_as_local_time() -> None:
    assert parse_since("2026-12-01T08:00:00+02:00") == datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
    naive = parse_since("2026-12-01")
    assert naive.tzinfo is not None
    assert naive.replace(tzinfo=None) == datetime(2026, 12, 1)


@pytest.mark.parametrize("text", ["yesterday", "2x", "-1h", ""])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(BadInputError, match="neither a span"):
        parse_since(text, NOW)


def test_states_are_read_in_any_case_and_unknown_names_are_refused() -> None:
    assert parse_states(["queued", "Done"]) == {JobStatus.QUEUED, JobStatus.DONE}
    assert parse_states([]) == frozenset()
    with pytest.raises(BadInputError, match="one of QUEUED, RUNNING, DONE, ERROR, CANCELLED"):
        parse_states(["FINISHED"])


@pytest.mark.parametrize(
    ("states", "pending"),
    [
        (set(), None),
        ({JobStatus.QUEUED}, True),
        ({JobStatus.QUEUED, JobStatus.RUNNING}, True),
        ({JobStatus.DONE, JobStatus.CANCELLED}, False),
        ({JobStatus.QUEUED, JobStatus.DONE}, None),
        ({JobStatus.UNKNOWN}, None),
    ],
)
def test_ibm_is_asked_for_pending_or_final_jobs_only_when_the_states_are_all_one_kind(
    states: set[JobStatus], pending: bool | None
) -> None:
    assert pending_filter(frozenset(states)) is pending


def test_run_ids_must_be_uuids() -> None:
    run = uuid4()
    assert parse_run_id(f" {run} ", "--flow-run") == run
    with pytest.raises(BadInputError, match="--deployment 'nightly' is not a Prefect id"):
        parse_run_id("nightly", "--deployment")


def test_a_job_row_names_its_flow_run_and_deployment_from_its_tags() -> None:
    run, deployment = uuid4(), uuid4()
    job = JobSnapshot(
        job_id="d1x2c3v4b5n6m7q8w9e0",
        backend="ibm_fez",
        primitive="sampler",
        status=JobStatus.DONE,
        created=NOW,
        quantum_seconds=2.5,
        tags=("prefect-qiskit-jobs", flow_run_tag(run), deployment_tag(deployment)),
    )

    row = job_row(job)

    assert row["flow_run_id"] == str(run)
    assert row["deployment_id"] == str(deployment)
    assert row["status"] == "DONE"
    assert row["created"] == "2026-12-05T12:00:00+00:00"
    assert row["quantum_seconds"] == 2.5
    assert row["finished"] is None


def test_counts_print_most_frequent_first_and_expectation_values_with_their_errors() -> None:
    lines = result_lines(
        [
            {"pub": 0, "counts": {"meas": {"11": 97, "00": 101, "01": 2}}},
            {"pub": 1, "evs": [0.98, -0.5], "stds": [0.01, 0.02]},
        ]
    )

    assert lines == [
        "pub 0, register meas (200 shots):",
        "  11   97",
        "  00  101",
        "  01    2",
        "pub 1: expectation values [0.98, -0.5]",
        "  standard errors [0.01, 0.02]",
    ]


def test_an_error_message_becomes_one_line() -> None:
    assert one_line("IBM said:\n  no\tsuch job\n") == "IBM said: no such job"


def test_bad_flags_are_refused_before_credentials_are_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(app, ["jobs", "list", "--state", "bogus"])

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: --state 'bogus' is not a job status: one of QUEUED, RUNNING, DONE, ERROR, CANCELLED, UNKNOWN"
    ]


def test_the_jobs_group_lists_its_commands() -> None:
    result = CliRunner().invoke(app, ["jobs", "--help"])

    assert result.exit_code == 0
    for command in ("list", "show", "cancel", "result"):
        assert command in result.output
