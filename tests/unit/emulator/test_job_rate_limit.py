"""The emulator's job-creation rate limit: a rolling window per account, read from its CLI form."""

from __future__ import annotations

import pytest

from prefect_qiskit_jobs.emulator.config import EmulatorConfig, JobRateLimitSpec
from prefect_qiskit_jobs.emulator.ratelimit import JobRateLimit


def test_spec_reads_jobs_per_window_and_the_header_switch() -> None:
    assert JobRateLimitSpec.parse("5/60") == JobRateLimitSpec(jobs=5, window_seconds=60)
    assert JobRateLimitSpec.parse("10/6.5:no-retry-after") == JobRateLimitSpec(
        jobs=10, window_seconds=6.5, retry_after=False
    )
    assert EmulatorConfig(job_rate_limit="2/3").job_rate_limit == JobRateLimitSpec(jobs=2, window_seconds=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["5", "five/60", "0/60", "5/0", "5/60:retry", "-1/60"])
def test_spec_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"job rate limit|greater than"):
        JobRateLimitSpec.parse(text)


def test_window_rolls_per_account_and_answers_seconds_until_a_place_frees() -> None:
    now = [100.0]
    limit = JobRateLimit(JobRateLimitSpec(jobs=2, window_seconds=10), clock=lambda: now[0])
    assert limit.admit("a") is None
    now[0] = 103.0
    assert limit.admit("a") is None
    assert limit.admit("b") is None  # another key has its own window
    now[0] = 104.5
    assert limit.admit("a") == 6  # the first place frees at 110: 5.5 s, rounded up
    now[0] = 110.0
    assert limit.admit("a") is None
    assert limit.admit("a") == 3


def test_a_place_given_back_is_free_again() -> None:
    limit = JobRateLimit(JobRateLimitSpec(jobs=1, window_seconds=60), clock=lambda: 0.0)
    assert limit.admit("a") is None
    limit.give_back("a")
    assert limit.admit("a") is None
    assert limit.admit("a") == 60
