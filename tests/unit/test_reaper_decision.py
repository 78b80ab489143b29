"""The reaper's decision, alone: which ended runs' jobs it may cancel, and when."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prefect.client.schemas.objects import StateType

from prefect_qiskit_jobs.cancel.automations import Silence, missed_by_automation
from prefect_qiskit_jobs.cancel.reaper import decide


@pytest.mark.parametrize("state", [StateType.CANCELLED, StateType.CRASHED])
def test_jobs_of_cancelled_and_crashed_runs_are_reaped_after_the_grace(state: StateType) -> None:
    assert decide(state, state_age_seconds=31, include_failed=False, grace_seconds=30).cancel
    assert not decide(state, state_age_seconds=5, include_failed=False, grace_seconds=30).cancel


@pytest.mark.parametrize(
    "state",
    [StateType.RUNNING, StateType.COMPLETED, StateType.PENDING, StateType.SCHEDULED, StateType.CANCELLING],
)
def test_jobs_of_live_or_completed_runs_are_never_touched(state: StateType) -> None:
    decision = decide(state, state_age_seconds=10_000, include_failed=True, grace_seconds=0)
    assert not decision.cancel
    assert state.value in decision.why


def test_failed_runs_only_when_opted_in() -> None:
    assert not decide(StateType.FAILED, 100, include_failed=False, grace_seconds=0).cancel
    assert decide(StateType.FAILED, 100, include_failed=True, grace_seconds=0).cancel


def test_a_run_unknown_to_this_prefect_api_is_left_alone() -> None:
    decision = decide(None, 0, include_failed=True, grace_seconds=0)
    assert not decision.cancel
    assert "unknown" in decision.why


def test_a_run_the_automation_missed_is_one_silent_for_two_windows_after_a_heartbeat() -> None:
    window = timedelta(seconds=100)
    assert missed_by_automation(Silence(seconds=200, heartbeats=True), window)
    assert not missed_by_automation(Silence(seconds=199, heartbeats=True), window)
    # a run that never sent a heartbeat proves nothing by silence; without the automation, nothing is judged
    assert not missed_by_automation(Silence(seconds=10_000, heartbeats=False), window)
    assert not missed_by_automation(Silence(seconds=10_000, heartbeats=True), None)
