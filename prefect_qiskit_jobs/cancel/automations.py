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

Prefect evaluates the window on its server, and a window that ends while the server is down can
be missed: after a restart, the server sweeps away trigger buckets that ended more than
``PREFECT_SERVER_EVENTS_EXPIRED_BUCKET_BUFFER`` (60 s) ago without firing them. So the reaper
applies the installed automation's rule again, with twice its window (``missed_by_automation``),
and crashes such a run itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any
from uuid import UUID

import yaml
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.events.schemas.automations import AutomationCore, EventTrigger

DEFINITION = "crash-zombie-runs.yaml"
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
# The reaper crashes a run the automation missed only after this many of its windows of silence:
# a live run's heartbeats resume within one heartbeat of a Prefect outage's end, so an outage
# shorter than about one window never makes a live run look dead to the reaper.
BACKSTOP_WINDOWS = 2
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


async def installed_window(client: PrefectClient) -> timedelta | None:
    """The window of the enabled ``crash-zombie-runs`` automation on the server; None without one.

    Without the automation the user has not asked for silent runs to be crashed, so nothing does.
    """
    windows = [
        window
        for automation in await client.read_automations_by_name(crash_zombies_automation().name)
        if automation.enabled and (window := window_of(automation)) is not None
    ]
    return min(windows, default=None)


@dataclass(frozen=True)
class Silence:
    """How long a flow run has said nothing, and whether it ever sent a heartbeat."""

    seconds: float
    heartbeats: bool


async def _last_event(
    client: PrefectClient, flow_run_id: UUID, since: datetime, name: str | None = None
) -> datetime | None:
    """When the run's newest event (of ``name``, if given) since ``since`` occurred, as the API has it."""
    filter = EventFilter(
        resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
        occurred=EventOccurredFilter(since=since),
        event=EventNameFilter(name=[name]) if name else None,
    )
    events = (await client.read_events(filter, limit=1)).events
    return events[0].occurred if events else None


async def silence_of(client: PrefectClient, flow_run: FlowRun) -> Silence:
    """Seconds since the run's last event (or its state, whichever is newer) as the Prefect API has them."""
    since = flow_run.created or datetime.now(timezone.utc) - timedelta(days=7)
    last = await _last_event(client, flow_run.id, since)
    beat = await _last_event(client, flow_run.id, since, HEARTBEAT_EVENT)
    seen = [moment for moment in (last, flow_run.state.timestamp if flow_run.state else None) if moment]
    newest = max(seen, default=since)
    return Silence((datetime.now(timezone.utc) - newest).total_seconds(), beat is not None)


async def alive_after_crash(client: PrefectClient, flow_run: FlowRun) -> bool:
    """Whether a Crashed run's process still sends heartbeats: crashed by mistake, so not to be reaped.

    The automation crashes a live run whose heartbeats could not reach a Prefect server that was
    down for longer than its window; the run's process goes on, and its jobs with it.
    """
    state = flow_run.state
    if state is None or state.timestamp is None:
        return False
    heard = await _last_event(client, flow_run.id, state.timestamp, HEARTBEAT_EVENT)
    return heard is not None and heard > state.timestamp


def missed_by_automation(silence: Silence, window: timedelta | None) -> bool:
    """Whether a Running run is one the automation should have crashed: it sent heartbeats, then
    nothing for ``BACKSTOP_WINDOWS`` windows. A run that never sent a heartbeat is never judged
    (its worker may not send them), as the automation, which starts from a heartbeat, never does.
    """
    if window is None or not silence.heartbeats:
        return False
    return silence.seconds >= BACKSTOP_WINDOWS * window.total_seconds()
