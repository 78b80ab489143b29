"""Runs of one serve process end in different ways at once; each cancellation layer does its part only.

- A run that awaits its jobs from ``.map()`` worker threads is cancelled through the API. Prefect
  interrupts only the flow's own thread: the waits go on, so the flow process cannot exit until
  the runner SIGKILLs it after its 30 s grace. The sensor layer never acts; the
  ``on_cancellation`` hook, run by the serve process once the child is gone, cancels each job.
- The flow process of a run without hooks is SIGKILLed. Nothing inside the run can act; the serve
  process sees its child die and marks the run Crashed; one reaper cycle cancels that run's jobs,
  once each, but not the detached job the run also submitted.
- Meanwhile a run still awaiting its jobs, a run that ended Completed with its jobs still queued,
  and the detached jobs are left alone by every layer (the reaper runs while the threaded run is
  still Cancelling, and leaves that run to its hook, too).

The scenario runs once for the module (the 30 s grace overlaps everything else); each test checks
one part of what it recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from prefect_qiskit_jobs import reap_orphaned_jobs
from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.e2e.conftest import (
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    eventually,
    final_state,
    flow_process,
    jobs_of_run,
    run_log_lines,
    until_awaited,
)
from tests.prefect_servers import talking_to

pytestmark = pytest.mark.e2e

DETACHED_TAG = "prefect-detached"


@dataclass
class Snapshot:
    """A run's state and its jobs as the emulator had them at one moment."""

    state: StateType | None
    jobs: list[dict[str, Any]]
    cancels: list[int]

    @property
    def statuses(self) -> list[str]:
        return [job["status"] for job in self.jobs]


@dataclass
class Endings:
    runs: dict[str, Any] = field(default_factory=dict)
    after_kill: dict[str, Snapshot] = field(default_factory=dict)
    after_reap: dict[str, Snapshot] = field(default_factory=dict)
    reaped: list[str] = field(default_factory=list)
    threaded: Snapshot | None = None
    threaded_log: list[str] = field(default_factory=list)
    killed_log: list[str] = field(default_factory=list)
    running: Snapshot | None = None


@pytest.fixture(scope="module")
async def endings(
    served: subprocess.Popen[bytes], iqp: RunningEmulator, prefect_server: PrefectServer
) -> AsyncIterator[Endings]:
    seen = Endings()
    settings = {PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}
    with talking_to(settings), pytest.MonkeyPatch.context() as env:
        for name, value in iqp.environment().items():
            env.setenv(name, value)
        async with get_client() as prefect:

            async def snapshot(run: Any) -> Snapshot:
                state = (await prefect.read_flow_run(run.id)).state
                jobs = jobs_of_run(iqp, run.id)
                return Snapshot(state.type if state else None, jobs, cancel_requests(iqp, jobs))

            threaded = await run_deployment("e2e-threaded/e2e", timeout=0)
            killed = await run_deployment("e2e-unhooked/e2e", parameters={"detached": 1}, timeout=0)
            running = await run_deployment("e2e-awaited/e2e", timeout=0)
            completed = await run_deployment("e2e-detached/e2e", parameters={"attached": 2}, timeout=0)
            seen.runs = {"threaded": threaded, "killed": killed, "running": running, "completed": completed}

            await until_awaited(prefect, iqp, threaded.id)
            await until_awaited(prefect, iqp, killed.id, count=4)
            await until_awaited(prefect, iqp, running.id)
            assert await final_state(prefect, completed.id) == StateType.COMPLETED

            await cancel_through_api(prefect, threaded.id)  # the runner's 30 s grace starts
            process = flow_process(served.pid, killed.id)
            assert process is not None, "no child of the serve process runs the unhooked flow run"
            os.kill(process.pid, signal.SIGKILL)
            await final_state(prefect, killed.id)
            seen.after_kill = {name: await snapshot(run) for name, run in seen.runs.items()}

            seen.reaped = await reap_orphaned_jobs(grace_seconds=0)
            seen.after_reap = {name: await snapshot(run) for name, run in seen.runs.items()}

            await final_state(prefect, threaded.id, timeout=150)
            seen.threaded = await snapshot(threaded)

            async def logged(run: Any, layer: str, jobs: list[dict[str, Any]]) -> list[str]:
                """The run's log once it names each job's cancel by ``layer`` (or all of it after 30 s)."""
                lines = await run_log_lines(prefect, run.id)

                async def complete() -> list[str] | None:
                    nonlocal lines
                    lines = await run_log_lines(prefect, run.id)
                    done = all(
                        any(f"job {j['id']}: cancel sent by the {layer}" in ln for ln in lines) for j in jobs
                    )
                    return lines if done else None

                try:
                    return await eventually(complete, 30, f"the {layer}'s log lines")
                except AssertionError:
                    return lines

            seen.threaded_log = await logged(threaded, "flow hook", seen.threaded.jobs)
            attached = [j for j in seen.after_kill["killed"].jobs if DETACHED_TAG not in j["tags"]]
            seen.killed_log = await logged(killed, "reaper", attached)

            # Leave nothing behind: cancelling the running run lets its sensor cancel its jobs.
            await cancel_through_api(prefect, running.id)
            await final_state(prefect, running.id)
            seen.running = await snapshot(running)
            yield seen


def part(snapshot: Snapshot, *, detached: bool) -> Snapshot:
    """Only the detached jobs of a snapshot, or only the others."""
    pairs = [
        (j, c)
        for j, c in zip(snapshot.jobs, snapshot.cancels, strict=True)
        if (DETACHED_TAG in j["tags"]) is detached
    ]
    return Snapshot(snapshot.state, [j for j, _ in pairs], [c for _, c in pairs])


async def test_a_cancelled_run_waiting_on_worker_threads_has_its_jobs_cancelled_once_by_the_hook(
    endings: Endings,
) -> None:
    threaded = endings.threaded
    assert threaded is not None
    assert threaded.state == StateType.CANCELLED
    assert threaded.statuses == ["Cancelled"] * 3
    assert threaded.cancels == [1, 1, 1]
    for job in threaded.jobs:
        assert any(f"job {job['id']}: cancel sent by the flow hook" in line for line in endings.threaded_log)
    assert not any("by the sensor" in line for line in endings.threaded_log), (
        "worker threads are not interrupted"
    )


async def test_a_sigkilled_run_is_crashed_and_one_reaper_cycle_cancels_its_jobs_once(
    endings: Endings,
) -> None:
    before, after = endings.after_kill["killed"], endings.after_reap["killed"]
    assert before.state == StateType.CRASHED
    assert before.statuses == ["Queued"] * 4, "nothing may cancel the jobs of a SIGKILLed, hookless run"
    assert before.cancels == [0] * 4
    orphans = part(after, detached=False)
    assert {job["id"] for job in orphans.jobs} <= set(endings.reaped)
    assert orphans.statuses == ["Cancelled"] * 3
    assert orphans.cancels == [1, 1, 1]
    for job in orphans.jobs:
        assert any(f"job {job['id']}: cancel sent by the reaper" in line for line in endings.killed_log)


async def test_the_reaper_leaves_running_completed_cancelling_and_detached_jobs_alone(
    endings: Endings,
) -> None:
    after = endings.after_reap
    untouchable = [
        after["running"],
        after["completed"],
        after["threaded"],  # Cancelling while the runner waits for its process: the hook's to handle
        part(after["killed"], detached=True),
    ]
    assert [s.state for s in untouchable[:3]] == [
        StateType.RUNNING,
        StateType.COMPLETED,
        StateType.CANCELLING,
    ]
    assert [len(s.jobs) for s in untouchable] == [3, 3, 3, 1]
    ids = {job["id"] for s in untouchable for job in s.jobs}
    assert not ids & set(endings.reaped)
    assert all(s.statuses == ["Queued"] * len(s.jobs) for s in untouchable)
    assert all(s.cancels == [0] * len(s.jobs) for s in untouchable)
    assert len(part(after["completed"], detached=True).jobs) == 1


async def test_cancelling_the_run_left_running_cancels_its_jobs_once_through_its_sensor(
    endings: Endings,
) -> None:
    running = endings.running
    assert running is not None
    assert running.state == StateType.CANCELLED
    assert running.statuses == ["Cancelled"] * 3
    assert running.cancels == [1, 1, 1]
