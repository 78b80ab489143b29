"""The poll schedule is pure: exponential backoff, a cap, bounded jitter, reset on change, Retry-After."""

from __future__ import annotations

import random

import pytest

from prefect_qiskit_jobs import JobStatus, PollPolicy
from prefect_qiskit_jobs.models import PollState


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    policy = PollPolicy(initial=1, multiplier=2, cap=30, jitter=0)

    assert [policy.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_very_long_wait_stays_at_the_cap_without_overflowing() -> None:
    policy = PollPolicy(initial=0.5, multiplier=1.6, cap=30, jitter=0)

    assert policy.delay(10_000) == 30.0


def test_without_a_random_source_there_is_no_jitter() -> None:
    policy = PollPolicy(initial=2, multiplier=1.5, cap=10, jitter=0.5)

    assert policy.delay(1) == 3.0


@pytest.mark.parametrize("polls", [0, 3, 9, 40])
def test_jitter_stays_within_its_relative_bounds(polls: int) -> None:
    policy = PollPolicy(initial=1, multiplier=1.6, cap=30, jitter=0.2)
    base = PollPolicy(initial=1, multiplier=1.6, cap=30, jitter=0).delay(polls)
    rng = random.Random(1234)

    delays = [policy.delay(polls, rng) for _ in range(500)]

    assert all(0.8 * base <= d <= 1.2 * base for d in delays)
    assert max(delays) - min(delays) > 0.2 * base  # it does spread


def test_a_seeded_schedule_repeats_exactly() -> None:
    policy = PollPolicy(initial=1, multiplier=2, cap=8, jitter=0.3)

    first = [policy.delay(n, random.Random(7)) for n in range(6)]
    second = [policy.delay(n, random.Random(7)) for n in range(6)]

    assert first == second


@pytest.mark.parametrize(
    "settings",
    [{"initial": 0}, {"multiplier": 0.5}, {"cap": 0}, {"jitter": 1}, {"jitter": -0.1}, {"error_budget": -1}],
)
def test_nonsense_policies_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        PollPolicy(**settings)


def test_the_backoff_starts_over_when_the_status_changes() -> None:
    state = PollState()

    assert state.observe(JobStatus.QUEUED) is True
    assert [state.observe(JobStatus.QUEUED) for _ in range(3)] == [False, False, False]
    assert state.polls_since_change == 3
    assert state.observe(JobStatus.RUNNING) is True
    assert state.polls_since_change == 0
    assert state.status is JobStatus.RUNNING


def test_transient_errors_are_counted_back_off_and_are_forgotten_after_a_good_read() -> None:
    policy = PollPolicy(initial=1, multiplier=2, cap=100, jitter=0)
    state = PollState()
    state.observe(JobStatus.QUEUED)

    state.fail()
    state.fail()

    assert state.consecutive_errors == 2
    assert state.next_delay(policy, random.Random(0)) == 4.0  # two polls further along the schedule
    state.observe(JobStatus.QUEUED)
    assert state.consecutive_errors == 0


def test_retry_after_is_honoured_but_never_shortens_the_pause() -> None:
    policy = PollPolicy(initial=1, multiplier=2, cap=100, jitter=0)
    state = PollState()
    state.observe(JobStatus.QUEUED)
    rng = random.Random(0)

    assert state.next_delay(policy, rng, retry_after=7) == 7
    assert state.next_delay(policy, rng, retry_after=0.1) == 1.0
    assert state.next_delay(policy, rng, retry_after=None) == 1.0
