"""Cancel served runs at random moments, many times over: no job is ever left pending or cancelled twice.

Each repetition starts a run of ``e2e-awaited/e2e`` and cancels it through the API (as the UI
does) at a moment drawn from a seeded generator: while the run is still scheduled, while the
serve process is starting it, while the flow starts, between its submits, while its jobs are
queued, while some are running, or once some have finished. A few repetitions run at once in
the same serve process, as runs of one deployment do. After each: the run ends Cancelled (or
Completed, when the cancel came after the flow had finished), none of its jobs is Queued or
Running, and none got two cancel requests.

Set ``E2E_STRESS_SEED`` to replay a seed's choices (the timing of processes still varies).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.e2e.conftest import (
    PENDING,
    SPARE_BACKENDS,
    cancel_requests,
    cancel_through_api,
    eventually,
    flow_process,
    jobs_of_run,
    until_awaited,
)

pytestmark = pytest.mark.e2e

REPETITIONS = int(os.environ.get("E2E_STRESS_REPETITIONS", "20"))
AT_ONCE = 3  # repetitions in flight at once (2 cores: more only adds contention)
MOMENTS = ("scheduled", "pending", "starting", "submitting", "queued", "running", "finished")
# E2E_STRESS_MOMENTS=queued,running narrows the draw, e.g. to chase one race.
CHOSEN_MOMENTS = tuple(filter(None, os.environ.get("E2E_STRESS_MOMENTS", "").split(","))) or MOMENTS
STUCK = "STUCK_CANCELLING"
# The runner sets Cancelled a few seconds after the flow process exits (hooks run in between).
RUNNER_FINISHES_WITHIN = 30.0


@dataclass
class Outcome:
    repetition: int
    moment: str
    run_id: Any = None
    state: StateType | str | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def problems(self) -> list[str]:
        found = []
        if self.error:
            found.append(self.error)
        if self.state not in (StateType.CANCELLED, StateType.COMPLETED, STUCK):
            found.append(f"run ended {self.state}")
        if self.state == STUCK and self.jobs:
            found.append("a run that never ran has jobs")
        if any(job["status"] in PENDING for job in self.jobs):
            found.append("jobs left pending")
        if any(count > 1 for count in self.cancels):
            found.append("a job got two cancel requests")
        return found

    def line(self) -> str:
        statuses = ",".join(job["status"] for job in self.jobs) or "no jobs"
        state = self.state.value if isinstance(self.state, StateType) else (self.state or "?")
        return (
            f"#{self.repetition:02d} {self.moment:<10} {state:<9} [{statuses}] cancels={self.cancels} "
            f"{self.seconds:5.1f}s {self.run_id} {'; '.join(self.problems)}"
        )


async def state_of(prefect: PrefectClient, run_id: Any) -> StateType | None:
    state = (await prefect.read_flow_run(run_id)).state
    return state.type if state else None


async def cancel_at(
    moment: str, rng: random.Random, iqp: RunningEmulator, prefect: PrefectClient, run_id: Any
) -> None:
    """Wait for ``moment`` in the run's life, then cancel it through the API."""

    async def reached(*types: StateType) -> bool:
        return await state_of(prefect, run_id) in types

    if moment == "pending":
        await eventually(lambda: reached(StateType.PENDING, StateType.RUNNING), 60, "the run picked up")
    elif moment == "starting":
        await eventually(lambda: reached(StateType.RUNNING), 120, "the run running")
    elif moment == "submitting":
        submitted = rng.randint(1, 2)

        async def some_submitted() -> bool:
            return len(jobs_of_run(iqp, run_id)) >= submitted

        await eventually(some_submitted, 120, f"{submitted} job(s) submitted")
    elif moment in ("queued", "running", "finished"):
        await until_awaited(prefect, iqp, run_id)
        if moment != "queued":
            # The backend's queue is FIFO: release the first one, two or three jobs.
            jobs = jobs_of_run(iqp, run_id)
            released = {job["id"] for job in jobs[: rng.randint(1, len(jobs))]}
            for job_id in released:
                iqp.release(job_id)
            wanted = {"Running", "Completed", "Cancelled"} if moment == "running" else {"Completed"}

            async def got_there() -> bool:
                jobs = [job for job in jobs_of_run(iqp, run_id) if job["id"] in released]
                return all(job["status"] in wanted for job in jobs)

            await eventually(got_there, 60, f"released jobs {moment}")
    # A random instant within the moment, so that the cancel lands anywhere in it.
    await asyncio.sleep(rng.uniform(0, 0.5))
    await cancel_through_api(prefect, run_id)


async def how_it_ended(prefect: PrefectClient, serve_pid: int, run_id: Any) -> StateType | str:
    """The run's final state; or STUCK: Cancelling with no flow process for a long while, never Running.

    STUCK is a race in Prefect's runner (3.8): a cancel that lands after the runner took the run
    (Pending) but before it tracks the child process is dropped. Either the runner then aborts the
    submission ("Server returned a non-pending state 'CANCELLING'") and starts nothing, or the
    child starts, finds the run Cancelling, refuses to run the flow and exits. Nobody finalizes:
    the run stays Cancelling until the server's cancelling timeout (300 s) marks it Cancelled, and
    no hook runs. No flow code ran, so the run cannot have a job.
    """
    without_process_since = time.monotonic()

    async def ended() -> StateType | str | None:
        nonlocal without_process_since
        run = await prefect.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run.state.type
        if flow_process(serve_pid, run_id) is not None:
            without_process_since = time.monotonic()
        elif time.monotonic() - without_process_since > RUNNER_FINISHES_WITHIN:
            history = await prefect.read_flow_run_states(run_id)
            if not any(state.type is StateType.RUNNING for state in history):
                return STUCK
        return None

    return await eventually(ended, 180, f"flow run {run_id} to end")


async def repetition(
    index: int, seed: int, backend: str, iqp: RunningEmulator, prefect: PrefectClient, serve_pid: int
) -> Outcome:
    rng = random.Random(f"{seed}/{index}")
    outcome = Outcome(index, rng.choice(CHOSEN_MOMENTS))
    started = time.monotonic()
    try:
        run = await run_deployment("e2e-awaited/e2e", parameters={"backend": backend}, timeout=0)
        outcome.run_id = run.id
        await cancel_at(outcome.moment, rng, iqp, prefect, run.id)
        outcome.state = await how_it_ended(prefect, serve_pid, run.id)
    except Exception as exc:  # a bounded wait ran out, or an API call failed: report it with the others
        outcome.error = f"{type(exc).__name__}: {exc}"
    if outcome.run_id is not None:
        outcome.jobs = jobs_of_run(iqp, outcome.run_id)
        outcome.cancels = cancel_requests(iqp, outcome.jobs)
    outcome.seconds = time.monotonic() - started
    print(outcome.line(), flush=True)
    return outcome


async def test_cancelling_at_random_moments_never_leaves_a_job_pending_or_cancels_one_twice(
    served: subprocess.Popen[bytes], iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    seed = int(os.environ.get("E2E_STRESS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nE2E_STRESS_SEED={seed}", flush=True)
    queue = list(range(REPETITIONS))
    outcomes: list[Outcome] = []

    async def lane(backend: str) -> None:
        while queue:
            outcomes.append(await repetition(queue.pop(0), seed, backend, iqp, prefect, served.pid))

    # One backend per lane, so that each lane's releases see only its own jobs in the queue.
    await asyncio.gather(*(lane(f"ibmq_{name}") for name in SPARE_BACKENDS[:AT_ONCE]))

    outcomes.sort(key=lambda o: o.repetition)
    failed = [o for o in outcomes if o.problems]
    report = "\n".join(o.line() for o in outcomes)
    assert not failed, f"E2E_STRESS_SEED={seed}: {len(failed)} of {REPETITIONS} repetitions failed\n{report}"
