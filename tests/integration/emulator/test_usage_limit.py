"""An instance's usage limit as the unmodified client meets it: usage read, then a 409 creating nothing."""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import IBMRuntimeError

from prefect_qiskit_jobs.emulator.config import EmulatorConfig, parse_span

from .conftest import SMALL_BACKEND, EmulatorFactory, bell_for


def test_usage_reports_the_limit_and_the_seconds_each_finished_job_was_charged(
    make_emulator: EmulatorFactory,
) -> None:
    make_emulator(backends=("manila",), usage_limit_seconds="10s", job_qpu_seconds=4.0)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)

    before = service.usage()
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    job.result()
    after = service.usage()

    assert before["usage_consumed_seconds"] == 0
    assert before["usage_limit_seconds"] == 10
    assert before["usage_remaining_seconds"] == 10  # added by the client from the limit
    assert before["usage_limit_reached"] is False
    assert job.usage() == 4.0
    assert after["usage_consumed_seconds"] == 4.0
    assert after["usage_remaining_seconds"] == 6.0


def test_a_deleted_job_still_counts_in_the_usage(make_emulator: EmulatorFactory) -> None:
    make_emulator(backends=("manila",), usage_limit_seconds="10s", job_qpu_seconds=4.0)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    job.result()

    service.delete_job(job.job_id())

    assert service.usage()["usage_consumed_seconds"] == 4.0


def test_at_the_limit_post_jobs_answers_409_and_creates_nothing(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(backends=("manila",), usage_limit_seconds=8, job_qpu_seconds=4.0)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    for _ in range(2):
        SamplerV2(mode=backend).run([bell_for(backend)], shots=10).result()
    assert service.usage()["usage_limit_reached"] is True

    with (
        pytest.warns(UserWarning, match="usage limit"),
        pytest.raises(IBMRuntimeError, match="409") as refused,
    ):
        SamplerV2(mode=backend).run([bell_for(backend)], shots=10)

    response = refused.value.__context__.__cause__.response  # type: ignore[union-attr]
    assert response.json()["errors"][0]["message"] == "Usage exceeds instance limit"
    assert len(emulator.jobs()) == 2
    assert emulator.stats()["routes"]["POST /jobs"] == 3


def test_without_a_limit_usage_has_none() -> None:
    assert EmulatorConfig().usage_limit_seconds is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600.0), ("600s", 600.0), ("10m", 600.0), ("1h", 3600.0)]
)
def test_usage_limit_text(text: str, seconds: float) -> None:
    assert parse_span(text) == seconds
    assert EmulatorConfig(usage_limit_seconds=text).usage_limit_seconds == seconds  # type: ignore[arg-type]


def test_a_malformed_usage_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a span"):
        parse_span("ten minutes")
