"""The automation that marks a flow run Crashed once its heartbeats stop, so the reaper can act.

When the serve process or the worker dies with a flow run (SIGKILL, a lost node), no process is
left to end the run: it looks Running forever, and the reaper, which cancels the IBM jobs of
Cancelled and Crashed runs only, leaves its jobs running. Prefect's flow runs send heartbeat
events (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, 180 s by default, never more often than every
30 s); the automation defined in ``crash-zombie-runs.yaml`` crashes a run whose next heartbeat
(or any other event of the run) does not come within its window.

The default window is three of Prefect's default heartbeats (540 s), as Prefect Cloud's managed
"unresponsive run detection" uses: a run is crashed after missing three heartbeats in a row, not
for one late heartbeat or a short outage of the Prefect server. Crashing a live run by mistake
costs more than waiting: the reaper then cancels jobs that may have queued for hours on IBM.
Workers that set ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30`` can use ``--within 90``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any
from uuid import UUID

import yaml
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore, EventTrigger

DEFINITION = "crash-zombie-runs.yaml"
# Prefect sends flow-run heartbeats at most this often (``flows.heartbeat_frequency`` is ``ge=30``).
HEARTBEAT_FLOOR_SECONDS = 30
DEFAULT_HEARTBEAT_SECONDS = 180
DEFAULT_WITHIN_SECONDS = 3 * DEFAULT_HEARTBEAT_SECONDS


def crash_zombies_automation(within: float | None = None) -> AutomationCore:
    """The packaged automation, with a window of ``within`` seconds instead of the file's.

    A window no longer than the heartbeat floor would crash healthy runs between two heartbeats.
    """
    data: dict[str, Any] = yaml.safe_load(
        resources.files(__package__).joinpath(DEFINITION).read_text(encoding="utf-8")
    )
    if within is not None:
        if within <= HEARTBEAT_FLOOR_SECONDS:
            raise ValueError(
                f"the window must be longer than {HEARTBEAT_FLOOR_SECONDS} s, the shortest interval "
                f"between flow-run heartbeats; got {within:g} s"
            )
        data["trigger"]["within"] = within
    return AutomationCore.model_validate(data)


def window_of(automation: AutomationCore) -> timedelta | None:
    trigger = automation.trigger
    return trigger.within if isinstance(trigger, EventTrigger) else None


@dataclass(frozen=True)
class Installed:
    """What ``install`` did: ``action`` is "created", "updated" or "kept"."""

    automation_id: UUID
    action: str
    within: timedelta | None


async def install(automation: AutomationCore, replace: bool = False) -> Installed:
    """Create ``automation`` on the connected Prefect server unless one of its name is there.

    With ``replace``, an existing one is updated to ``automation`` (and any other of the same name
    deleted), so the server ends with exactly one either way.
    """
    async with get_client() as client:
        existing = await client.read_automations_by_name(automation.name)
        if not existing:
            created = await client.create_automation(automation)
            return Installed(created, "created", window_of(automation))
        first, *others = existing
        if not replace:
            return Installed(first.id, "kept", window_of(first))
        await client.update_automation(first.id, automation)
        for other in others:
            await client.delete_automation(other.id)
        return Installed(first.id, "updated", window_of(automation))
