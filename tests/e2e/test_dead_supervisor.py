"""A run whose worker died with it is crashed by the heartbeat automation, and then reaped.

A process worker runs a flow run that awaits three held jobs; the worker and the flow process
are SIGKILLed together, as when their node is lost. Nothing is left to end the run: only the
``crash-zombie-runs`` automation (installed by ``prefect-qiskit-jobs automations crash-zombies``,
with a short window) sees its heartbeats stop and marks it Crashed; one ``prefect-qiskit-jobs
reap`` then cancels its jobs, once each. Meanwhile a run of another supervisor (``prefect
flow-run execute``), started earlier and heartbeating, is not crashed.

Flow runs here heartbeat every 30 s (the floor); the window is 40 s. The automation would crash
any long run of the shared server's other tests (they heartbeat every 180 s), so it lives only
as long as this module.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.e2e.conftest import (
    ROOT,
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    cli,
    create_process_pool,
    eventually,
    final_state,
    flow_process,
    jobs_of_run,
    kill_tree,
    scenario_environment,
    start_logged,
    stop_process,
    until_awaited,
    worker,
)
from tests.prefect_servers import talking_to

pytestmark = pytest.mark.e2e

WINDOW = 40
HEARTBEATS = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
DOOMED_POOL = "e2e-zombie-pool"
IDLE_POOL = "e2e-zombie-idle"  # no worker: its run is executed by `prefect flow-run execute`
AUTOMATION = "crash-zombie-runs"


@dataclass
class Seen:
    cli: list[str] = field(default_factory=list)
    automations: list[Any] = field(default_factory=list)
    doomed_state: Any = None
    doomed_jobs_crashed: list[dict[str, Any]] = field(default_factory=list)
    doomed_cancels_crashed: list[int] = field(default_factory=list)
    doomed_jobs_reaped: list[dict[str, Any]] = field(default_factory=list)
    doomed_cancels_reaped: list[int] = field(default_factory=list)
    flow_process_killed: bool = False
    reaper_output: str = ""
    live_states: list[StateType | None] = field(default_factory=list)
    live_jobs_reaped: list[dict[str, Any]] = field(default_factory=list)
    live_cancels_reaped: list[int] = field(default_factory=list)
    heartbeats: dict[str, list[datetime]] = field(default_factory=dict)


@dataclass
class Setup:
    worker: subprocess.Popen[bytes]
    env: dict[str, str]
    cli: list[str]


def install_three_times(env: dict[str, str]) -> list[str]:
    """Create, install again (kept), replace: what each call said."""
    command = ["automations", "crash-zombies", "--within"]
    return [
        cli(env, *command, "60"),
        cli(env, *command, str(WINDOW)),
        cli(env, *command, str(WINDOW), "--replace"),
    ]


async def delete_automations() -> None:
    async with get_client() as prefect:
        for automation in await prefect.read_automations_by_name(AUTOMATION):
            await prefect.delete_automation(automation.id)


@pytest.fixture(scope="module")
def setup(prefect_server: PrefectServer, iqp: RunningEmulator) -> Iterator[Setup]:
    """The automation (installed by the CLI meanwhile), the awaited scenario deployed to two pools,
    and a worker (30 s heartbeats) for the first only."""
    from prefect.flows import Flow

    env = {**scenario_environment(prefect_server, iqp), **HEARTBEATS}
    settings = {PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}
    with ThreadPoolExecutor(max_workers=1) as background:
        installing = background.submit(install_three_times, env)
        try:
            with talking_to(settings):
                flow = Flow.from_source(source=str(ROOT), entrypoint="tests/e2e/scenario_flows.py:awaited")
                for pool, name in [(DOOMED_POOL, "e2e-zombie"), (IDLE_POOL, "e2e-heartbeating")]:
                    create_process_pool(pool)
                    flow.deploy(
                        name=name, work_pool_name=pool, print_next_steps=False, build=False, push=False
                    )
            with worker(prefect_server, iqp, DOOMED_POOL, "zombie-worker.log", HEARTBEATS) as process:
                yield Setup(process, env, installing.result())
        finally:
            installing.result()
            with talking_to(settings):
                asyncio.run(delete_automations())


async def heartbeats_of(prefect: PrefectClient, run_id: Any) -> list[datetime]:
    """When the server saw the run's heartbeats occur, in order."""
    page = await prefect.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=datetime(2020, 1, 1)),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        ),
        limit=50,  # the server's most (the client's default, 100, is refused)
    )
    return sorted(event.occurred for event in page.events)


@pytest.fixture(scope="module")
async def seen(setup: Setup, iqp: RunningEmulator, prefect_server: PrefectServer) -> AsyncIterator[Seen]:
    seen = Seen(cli=setup.cli)
    settings = {PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}
    with talking_to(settings):
        async with get_client() as prefect:
            seen.automations = await prefect.read_automations_by_name(AUTOMATION)
            live = await run_deployment("e2e-awaited/e2e-heartbeating", timeout=0)
            executor = start_logged(
                [sys.executable, "-m", "prefect", "flow-run", "execute", str(live.id)],
                setup.env,
                prefect_server.home / "zombie-live.log",
            )
            try:
                # The live run's first window opens before the doomed run's last: see the last test.
                await eventually(lambda: heartbeats_of(prefect, live.id), 60, "the live run's heartbeat")
                doomed = await run_deployment("e2e-awaited/e2e-zombie", timeout=0)
                await until_awaited(prefect, iqp, doomed.id)
                # A run killed before its first heartbeat reaches the server is never crashed.
                await eventually(lambda: heartbeats_of(prefect, doomed.id), 30, "the doomed run's heartbeat")
                process = flow_process(setup.worker.pid, doomed.id)
                seen.flow_process_killed = process is not None and process.pid in kill_tree(setup.worker.pid)
                await until_awaited(prefect, iqp, live.id)

                assert await final_state(prefect, doomed.id, timeout=WINDOW + 60) == StateType.CRASHED
                seen.doomed_state = (await prefect.read_flow_run(doomed.id)).state
                seen.doomed_jobs_crashed = jobs_of_run(iqp, doomed.id)
                seen.doomed_cancels_crashed = cancel_requests(iqp, seen.doomed_jobs_crashed)
                seen.live_states.append(await state_of(prefect, live.id))

                seen.reaper_output = await anyio.to_thread.run_sync(
                    cli, setup.env, "reap", "--grace-seconds", "0"
                )
                seen.doomed_jobs_reaped = jobs_of_run(iqp, doomed.id)
                seen.doomed_cancels_reaped = cancel_requests(iqp, seen.doomed_jobs_reaped)
                seen.live_states.append(await state_of(prefect, live.id))
                seen.live_jobs_reaped = jobs_of_run(iqp, live.id)
                seen.live_cancels_reaped = cancel_requests(iqp, seen.live_jobs_reaped)
                seen.heartbeats = {
                    "live": await heartbeats_of(prefect, live.id),
                    "doomed": await heartbeats_of(prefect, doomed.id),
                }
                yield seen
            finally:
                await cancel_through_api(prefect, live.id)  # its sensor cancels its jobs
                await final_state(prefect, live.id)
                stop_process(executor)


async def state_of(prefect: PrefectClient, run_id: Any) -> StateType | None:
    state = (await prefect.read_flow_run(run_id)).state
    return state.type if state else None


async def test_the_cli_installs_the_automation_once_and_replaces_it_only_when_asked(seen: Seen) -> None:
    created, kept, updated = seen.cli
    assert f"Automation '{AUTOMATION}' created" in created
    assert "window 60 s" in created
    assert "kept" in kept
    assert "window 60 s (pass --replace to update it)" in kept
    assert f"updated: id {seen.automations[0].id}, window {WINDOW} s" in updated
    assert len(seen.automations) == 1
    assert seen.automations[0].trigger.within.total_seconds() == WINDOW


async def test_a_run_whose_worker_died_with_it_is_crashed_by_the_automation_then_reaped_once(
    seen: Seen,
) -> None:
    assert seen.flow_process_killed, "the flow process was not under the worker, or was not killed"
    state = seen.doomed_state
    assert state.type == StateType.CRASHED
    assert "No heartbeat from the flow run's process" in state.message
    assert [job["status"] for job in seen.doomed_jobs_crashed] == ["Queued"] * 3
    assert seen.doomed_cancels_crashed == [0, 0, 0], "nothing in the dead run could cancel"
    for job in seen.doomed_jobs_reaped:
        assert job["id"] in seen.reaper_output
    assert [job["status"] for job in seen.doomed_jobs_reaped] == ["Cancelled"] * 3
    assert seen.doomed_cancels_reaped == [1, 1, 1]


async def test_a_heartbeating_run_is_not_crashed_nor_reaped(seen: Seen) -> None:
    live, doomed = seen.heartbeats["live"], seen.heartbeats["doomed"]
    # The live run's first window closed no later than the dead run's last one, which fired:
    # only its later heartbeats kept it from being crashed in that same evaluation.
    assert live[0] <= doomed[-1]
    assert len(live) >= 2
    assert seen.live_states == [StateType.RUNNING, StateType.RUNNING]
    assert [job["status"] for job in seen.live_jobs_reaped] == ["Queued"] * 3
    assert seen.live_cancels_reaped == [0, 0, 0]
