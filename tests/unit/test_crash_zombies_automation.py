"""The packaged zombie-run automation: what it expects, its window, and the CLI's checks of it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.server.events.schemas.automations import EventTrigger as ServerEventTrigger
from typer.testing import CliRunner

from prefect_qiskit_jobs.cancel.automations import DEFAULT_WITHIN_SECONDS, crash_zombies_automation
from prefect_qiskit_jobs.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_automation_crashes_a_run_whose_heartbeat_is_not_followed_by_any_of_its_events() -> None:
    automation = crash_zombies_automation()
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.posture == Posture.Proactive
    # The server's own reading of the trigger: which events start a window, which end it.
    evaluated = ServerEventTrigger.model_validate(trigger.model_dump(mode="json"))
    assert evaluated.starts_after("prefect.flow-run.heartbeat")
    assert not evaluated.starts_after("prefect.flow-run.Running")
    assert evaluated.expects("prefect.flow-run.heartbeat")
    assert evaluated.expects("prefect.flow-run.Completed")
    assert evaluated.expects("prefect.flow-run.Suspended"), "a suspended run stops heartbeating on purpose"
    assert not evaluated.expects("prefect.task-run.Running")
    assert trigger.for_each == {"prefect.resource.id"}
    assert trigger.threshold == 1
    assert trigger.within == timedelta(seconds=DEFAULT_WITHIN_SECONDS) == timedelta(minutes=9)
    [action] = automation.actions
    assert isinstance(action, ChangeFlowRunState)
    assert action.state == StateType.CRASHED
    assert not action.force, "a run that ended meanwhile must stay as it ended"


def test_a_window_replaces_the_files_and_must_be_longer_than_the_heartbeat_floor() -> None:
    assert crash_zombies_automation(45).trigger.within == timedelta(seconds=45)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="longer than 30 s"):
        crash_zombies_automation(30)


def test_the_deployments_copy_is_the_packaged_definition() -> None:
    packaged = ROOT / "prefect_qiskit_jobs" / "cancel" / "crash-zombie-runs.yaml"
    shipped = ROOT / "deployments" / "automations" / "crash-zombie-runs.yaml"
    assert yaml.safe_load(shipped.read_text()) == yaml.safe_load(packaged.read_text())


def test_the_cli_refuses_a_window_at_the_heartbeat_floor_before_talking_to_prefect() -> None:
    result = CliRunner().invoke(app, ["automations", "crash-zombies", "--within", "30"])
    assert result.exit_code == 2
    assert "longer than 30 s" in result.output
