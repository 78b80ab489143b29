"""The poll pace is pure: a floor, growth with the quiet time, a cap, bounded jitter, error doubling."""

from __future__ import annotations

import random

import pytest

from prefect_qiskit_jobs import PollPolicy


def test_the_pause_is_the_floor_then_a_fraction_of_the_quiet_time_up_to_the_cap() -> None:
    policy = PollPolicy(initial=1.5, growth=0.1, cap=30, jitter=0)

    assert [policy.delay(quiet) for quiet in (0, 15, 20, 100, 300, 10**9)] == [
        1.5,
        1.5,
        2.0,
        10.0,
        30.0,
        30.0,
    ]


def test_the_default_delay_is_under_2_s_after_a_20_s_queue_and_the_lag_bound_after_hours() -> None:
    policy = PollPolicy(jitter=0)

    assert policy.delay(20) <= 1.9
    assert policy.delay(4 * 3600) == 30.0  # unbounded, it would grow to the cap
    assert policy.pace(4 * 3600) == 5.0  # the watcher's pace stops at the lag bound


def test_without_a_random_source_there_is_no_jitter() -> None:
    policy = PollPolicy(initial=2, growth=0, cap=10, jitter=0.5)

    assert policy.delay(100) == 2.0


@pytest.mark.parametrize("quiet", [0, 30, 90, 4000])
def test_jitter_stays_within_its_relative_bounds(quiet: float) -> None:
    policy = PollPolicy(initial=1, growth=0.2, cap=30, jitter=0.2)
    base = PollPolicy(initial=1, growth=0.2, cap=30, jitter=0).delay(quiet)
    rng = random.Random(1234)

    delays = [policy.delay(quiet, rng) for _ in range(500)]

    assert all(0.8 * base <= d <= 1.2 * base for d in delays)
    assert max(delays) - min(delays) > 0.2 * base  # it does spread


def test_a_seeded_schedule_repeats_exactly() -> None:
    policy = PollPolicy(initial=1, growth=0.3, cap=8, jitter=0.3)

    first = [policy.delay(q, random.Random(7)) for q in range(0, 60, 10)]
    second = [policy.delay(q, random.Random(7)) for q in range(0, 60, 10)]

    assert first == second


def test_each_transient_error_doubles_the_pause_up_to_the_cap() -> None:
    policy = PollPolicy(initial=1, growth=0, cap=20, jitter=0)

    assert [policy.delay(0, errors=n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


@pytest.mark.parametrize(
    "settings",
    [
        {"initial": 0},
        {"growth": -0.5},
        {"cap": 0},
        {"jitter": 1},
        {"jitter": -0.1},
        {"error_budget": -1},
        {"multiplier": 1.6},  # the old name: refused, never silently ignored
    ],
)
def test_nonsense_policies_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        PollPolicy(**settings)


def test_the_pace_stops_growing_at_the_lag_bound_however_long_the_queue_and_errors_double_it() -> None:
    policy = PollPolicy(initial=1.5, growth=0.075, cap=30, jitter=0, lag_bound=5)

    assert [policy.pace(quiet) for quiet in (0, 20, 60, 600, 3600, 10**6)] == [1.5, 1.5, 4.5, 5, 5, 5]
    assert [policy.pace(3600, errors=n) for n in range(4)] == [5, 10, 20, 30]
    assert PollPolicy(jitter=0, lag_bound=None).pace(3600) == 30.0  # the bound turned off


def test_a_new_wait_pauses_at_most_its_age_until_that_reaches_the_pace_but_not_after_an_error() -> None:
    policy = PollPolicy(initial=1.5, jitter=0)

    assert [policy.pace(0, waited_seconds=waited) for waited in (0.0, 0.3, 0.6, 1.2, 2.4)] == [
        0.25,
        0.3,
        0.6,
        1.2,
        1.5,
    ]
    assert policy.pace(0, errors=1, waited_seconds=0.3) == 3.0  # a failed read backs off as ever
    assert PollPolicy(initial=1.5, jitter=0, first=None).pace(0, waited_seconds=0.3) == 1.5
