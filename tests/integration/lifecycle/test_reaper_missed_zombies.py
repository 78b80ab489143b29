"""Runs the crash-zombie-runs automation missed are crashed, then reaped, by the reaper.

Prefect's server evaluates the automation's window; when the window ends while the server is down
(a restart during a deploy), the restarted server sweeps the expired trigger bucket without firing
it, and the run, whose worker died with it, reads Running for ever: the chaos benchmark's full run
left 14 such runs with 126 jobs queued. The reaper applies the installed automation's rule again,
with twice its window, so those jobs are cancelled all the same.

The dead run is arranged as the server would hold it: Running, a heartbeat, then silence for
two windows, and jobs on IBM tagged with the run; the automation is installed after its last
heartbeat, so it holds no bucket for the run, as after the sweep. The same reaper run must leave
alone a run that sent a heartbeat a moment ago and one that never sent any (its worker sends no
heartbeats, so silence proves nothing), and without the automation it crashes nothing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.events.worker import EventsWorker
from prefect.states import Crashed, Running
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2

from prefect_qiskit_jobs.cancel.automations import crash_zombies_automation, install
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.tags import PACKAGE_TAG, flow_run_tag

from .conftest import GUARD, SMALL_BACKEND

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
AUTOMATION_MESSAGE = "No heartbeat from the flow run's process: its serve process or worker died with it"
# The shortest window the automation accepts, so the reaper's two windows pass in about a minute.
WINDOW_SECONDS = 31.0


@flow
def worker_run() -> None:
    """Stands for a deployment's flow; its runs are created through the API, never called."""


@pytest.fixture
async def install_automation() -> AsyncIterator[Callable[[], Awaitable[object]]]:
    """Installs the automation as ``automations crash-zombies --within 31`` does; removed after.

    Installed after the runs' heartbeats, it holds no trigger bucket for them: as after a restarted
    server swept their expired buckets, the automation itself will never crash them.
    """
    installed: list[UUID] = []

    async def install_now() -> object:
        done = await install(crash_zombies_automation(WINDOW_SECONDS))
        installed.append(done.automation_id)
        return done

    yield install_now
    async with get_client() as client:
        for automation_id in installed:
            await client.delete_automation(automation_id)


async def running_run() -> UUID:
    async with get_client() as client:
        return (await client.create_flow_run(worker_run, state=Running())).id


async def heartbeat(*run_ids: UUID) -> None:
    """A heartbeat of each run, as its flow process sends them; returns once the API has stored them."""
    sent = datetime.now(timezone.utc)
    for run_id in run_ids:
        emit_event(HEARTBEAT_EVENT, resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"})
    EventsWorker.drain_all()
    async with get_client() as client:
        filter = EventFilter(
            occurred=EventOccurredFilter(since=sent),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}" for run_id in run_ids]),
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
        )
        deadline = time.monotonic() + GUARD
        while (await client.read_events(filter, limit=50)).total < len(run_ids):
            if time.monotonic() > deadline:
                raise AssertionError("the Prefect API never stored the heartbeats")
            await asyncio.sleep(0.2)


def submit_tagged(run_id: UUID, bell: QuantumCircuit) -> list[str]:
    """Two jobs as the run's submit task made them."""
    sampler = SamplerV2(mode=QiskitRuntimeService().backend(SMALL_BACKEND))
    sampler.options.environment.job_tags = [PACKAGE_TAG, flow_run_tag(run_id)]
    return [sampler.run([bell], shots=64).job_id() for _ in range(2)]


def reap(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "prefect_qiskit_jobs", "reap", "--grace-seconds", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


async def state_of(run_id: UUID) -> Any:
    async with get_client() as client:
        return (await client.read_flow_run(run_id)).state


async def test_a_running_run_silent_for_twice_the_window_is_crashed_and_its_jobs_cancelled_once(
    held: RunningEmulator,
    bell_isa: QuantumCircuit,
    prefect_api: dict[str, str],
    install_automation: Callable[[], Awaitable[object]],
) -> None:
    dead, beating, no_heartbeats = [await running_run() for _ in range(3)]
    await heartbeat(dead, beating)
    last_heard = time.monotonic()
    jobs = {run_id: submit_tagged(run_id, bell_isa) for run_id in (dead, beating, no_heartbeats)}
    # Nothing to await here but time itself: the dead run's silence must outlast two windows.
    await asyncio.sleep(2 * WINDOW_SECONDS + 1 - (time.monotonic() - last_heard))
    await heartbeat(beating)
    env = {**os.environ, **prefect_api}

    without = await asyncio.to_thread(reap, env)
    await install_automation()
    reaper = await asyncio.to_thread(reap, env)

    assert without.stdout.strip().endswith("Cancelled 0 job(s)"), without.stdout
    assert f"Cancelled 2 job(s): {', '.join(sorted(jobs[dead]))}" in sorted_ids(reaper.stdout)
    crashed = await state_of(dead)
    assert crashed.type is StateType.CRASHED
    assert "twice the crash-zombie-runs window of 31 s" in crashed.message
    assert {held.job(job_id)["status"] for job_id in jobs[dead]} == {"Cancelled"}
    assert held.stats()["cancels"] == dict.fromkeys(jobs[dead], 1)
    for alive in (beating, no_heartbeats):
        assert (await state_of(alive)).type is StateType.RUNNING
        assert {held.job(job_id)["status"] for job_id in jobs[alive]} == {"Queued"}


def sorted_ids(output: str) -> str:
    """The reaper's summary line with its job ids sorted, so the assertion does not depend on order."""
    head, _, ids = output.strip().splitlines()[-1].partition(": ")
    return f"{head}: {', '.join(sorted(ids.split(', ')))}" if ids else head


async def test_a_run_crashed_while_its_process_still_sends_heartbeats_keeps_its_jobs(
    held: RunningEmulator, bell_isa: QuantumCircuit, prefect_api: dict[str, str]
) -> None:
    """The automation crashes a live run whose heartbeats a Prefect outage longer than its window
    kept from the server (the chaos benchmark's full run: a live run crashed, then reaped, failed
    on its own cancelled job). Its heartbeats after the Crashed state say the process lives."""
    alive, dead = [await running_run() for _ in range(2)]
    await heartbeat(alive, dead)
    async with get_client() as client:
        for run_id in (alive, dead):
            await client.set_flow_run_state(run_id, Crashed(message=AUTOMATION_MESSAGE))
    await heartbeat(alive)
    jobs = {run_id: submit_tagged(run_id, bell_isa) for run_id in (alive, dead)}

    reaper = await asyncio.to_thread(reap, {**os.environ, **prefect_api})

    assert f"Cancelled 2 job(s): {', '.join(sorted(jobs[dead]))}" in sorted_ids(reaper.stdout)
    assert "still sends heartbeats" in reaper.stderr
    assert {held.job(job_id)["status"] for job_id in jobs[alive]} == {"Queued"}
    assert {held.job(job_id)["status"] for job_id in jobs[dead]} == {"Cancelled"}
    assert held.stats()["cancels"] == dict.fromkeys(jobs[dead], 1)
