"""Scale-out, end to end: three process workers on one pool, two resumers and two reapers, on PostgreSQL.

The topology a team deploys, on this machine: the session's ``prefect server start`` on
PostgreSQL, three ``prefect worker start`` processes polling one process pool (three flow runs
each at once), two ``prefect-qiskit-jobs resumer`` processes, and the emulator. Run once, with
small jobs, all scenarios at the same time, as a shared server sees them:

- a sweep of 30 flow runs of 3 jobs each (one submit task per run, jobs released as they come):
  every run Completed with Bell counts, every job created exactly once;
- 5 runs cancelled through the API while they await their held jobs: every job Cancelled, with
  exactly one cancel request each;
- 2 runs whose flow processes are SIGKILLed (no hook): Crashed, then two ``reap`` processes at
  once cancel each of their jobs with one request between them;
- 3 deferred runs: each suspends, its flow process exits (the worker's slot is free), and once
  its jobs are released it is resumed exactly once, by one of the two resumers, and completes on
  whichever worker takes it, its jobs adopted, not submitted again.

Observations are gathered by one module fixture; each test asserts one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from prefect_qiskit_jobs.ibm.tags import SUBMIT_KEY_PREFIX
from tests.e2e.conftest import (
    ROOT,
    WORKER_STOP_GRACE,
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    create_process_pool,
    eventually,
    final_state,
    flow_process,
    jobs_of_run,
    scenario_environment,
    start_logged,
    stop_processes,
    until_awaited,
)
from tests.prefect_servers import talking_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

POOL = "e2e-scale-pool"
WORKERS = 3
WORKER_LIMIT = 3
SWEEP_RUNS = 30
CANCELLED_RUNS = 5
CRASHED_RUNS = 2
DEFERRED_RUNS = 3
JOBS_PER_RUN = 3
SHOTS = 16
# Each scenario has a backend of its own: the emulator's queues are FIFO per backend, and the
# sweep's jobs are released while the others' must stay queued.
SWEEP_BACKEND, CANCEL_BACKEND, CRASH_BACKEND, DEFER_BACKEND = "manila", "lima", "belem", "quito"
DEPLOYMENTS = {
    "e2e-swept/e2e-scale": "swept",
    "e2e-unhooked/e2e-scale": "unhooked",
    "e2e-deferred/e2e-scale": "deferred",
}
EVERYTHING = 900  # seconds for the whole scenario on a loaded 2-core runner: only a defect reaches it


@dataclass
class Ran:
    states: list[StateType] = field(default_factory=list)
    jobs: list[list[dict[str, Any]]] = field(default_factory=list)
    cancels: list[list[int]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    resumings: list[int] = field(default_factory=list)
    process_while_suspended: list[bool] = field(default_factory=list)
    reaper_outputs: list[str] = field(default_factory=list)


@dataclass
class Topology:
    server: PrefectServer
    emulator: RunningEmulator
    workers: list[subprocess.Popen[bytes]]

    def flow_process_of(self, run_id: Any) -> Any:
        for worker in self.workers:
            if (process := flow_process(worker.pid, run_id)) is not None:
                return process
        return None


@dataclass
class Seen:
    sweep: Ran = field(default_factory=Ran)
    cancelled: Ran = field(default_factory=Ran)
    crashed: Ran = field(default_factory=Ran)
    deferred: Ran = field(default_factory=Ran)
    all_jobs: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """Jobs stay Queued until released; released ones run at once, eight at a time per backend."""
    config = EmulatorConfig(
        queue_delay=3600,
        concurrency=8,
        backends=(SWEEP_BACKEND, CANCEL_BACKEND, CRASH_BACKEND, DEFER_BACKEND),
    )
    with start_emulator(config) as running:
        yield running


@pytest.fixture(scope="module")
def topology(prefect_server: PrefectServer, emulator: RunningEmulator) -> Iterator[Topology]:
    """The pool and its deployments, three workers and two resumers, started together."""
    if prefect_server.postgres is None:
        pytest.skip("no PostgreSQL here: the scale-out topology runs only on it")
    from prefect.flows import Flow

    settings = {PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}
    with talking_to(settings):
        create_process_pool(POOL)
        for name, entrypoint in DEPLOYMENTS.items():
            flow = Flow.from_source(source=str(ROOT), entrypoint=f"tests/e2e/scenario_flows.py:{entrypoint}")
            flow.deploy(
                name=name.split("/")[1], work_pool_name=POOL, print_next_steps=False, build=False, push=False
            )
    env = scenario_environment(prefect_server, emulator)
    home = prefect_server.home
    with contextlib.ExitStack() as stack:
        worker = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"]
        workers = [
            start_logged(
                [*worker, "--name", f"scale-worker-{n}", "--limit", str(WORKER_LIMIT)],
                env,
                home / f"scale-worker-{n}.log",
            )
            for n in range(WORKERS)
        ]
        resumer = [sys.executable, "-m", "prefect_qiskit_jobs", "resumer", "--every", "2"]
        resumers = [start_logged(resumer, env, home / f"scale-resumer-{n}.log") for n in range(2)]
        # Prefect's worker at times ignores its SIGTERM (see ``stop_worker``): a short grace, then a kill.
        stack.callback(stop_processes, workers + resumers, WORKER_STOP_GRACE)
        with talking_to(settings):
            asyncio.run(_until_polling(workers))
        yield Topology(prefect_server, emulator, workers)


async def _until_polling(workers: list[subprocess.Popen[bytes]]) -> None:
    async with get_client() as client:

        async def all_polling() -> bool:
            if any(worker.poll() is not None for worker in workers):
                raise RuntimeError("a scale-out worker exited; see its log in the e2e server's home")
            return len(await client.read_workers_for_work_pool(POOL)) == WORKERS

        await eventually(all_polling, timeout=180, what=f"{WORKERS} workers polling {POOL}")


async def start_runs(deployment: str, runs: int, **parameters: Any) -> list[Any]:
    return [(await run_deployment(deployment, parameters=parameters, timeout=0)).id for _ in range(runs)]


async def release_queued(emulator: RunningEmulator, backend: str) -> None:
    """Let every job of ``backend`` run as soon as it is created (the sweep's jobs)."""
    released: set[str] = set()
    while True:
        for job in await anyio.to_thread.run_sync(emulator.jobs):
            if job["backend"] == f"ibmq_{backend}" and job["id"] not in released:
                await anyio.to_thread.run_sync(emulator.release, job["id"])
                released.add(job["id"])
        await asyncio.sleep(0.5)


async def results_of(prefect: PrefectClient, run_id: Any) -> Any:
    return await (await prefect.read_flow_run(run_id)).state.aresult()  # type: ignore[union-attr]


async def sweep(prefect: PrefectClient, topology: Topology, ran: Ran) -> None:
    runs = await start_runs(
        "e2e-swept/e2e-scale", SWEEP_RUNS, count=JOBS_PER_RUN, backend=f"ibmq_{SWEEP_BACKEND}", shots=SHOTS
    )
    for run_id in runs:
        ran.states.append(await final_state(prefect, run_id, timeout=EVERYTHING, every=1))
        ran.jobs.append(jobs_of_run(topology.emulator, run_id))
        ran.results.append(await results_of(prefect, run_id))


async def cancelled(prefect: PrefectClient, topology: Topology, ran: Ran, done: asyncio.Event) -> None:
    runs = await start_runs(
        "e2e-swept/e2e-scale", CANCELLED_RUNS, count=JOBS_PER_RUN, backend=f"ibmq_{CANCEL_BACKEND}"
    )

    async def cancel_once_awaited(run_id: Any) -> None:
        await until_awaited(prefect, topology.emulator, run_id, JOBS_PER_RUN, timeout=EVERYTHING)
        await cancel_through_api(prefect, run_id)

    await asyncio.gather(*(cancel_once_awaited(run_id) for run_id in runs))
    for run_id in runs:
        ran.states.append(await final_state(prefect, run_id, timeout=EVERYTHING, every=1))
        ran.jobs.append(jobs_of_run(topology.emulator, run_id))
        ran.cancels.append(cancel_requests(topology.emulator, ran.jobs[-1]))
    done.set()


async def crashed(prefect: PrefectClient, topology: Topology, ran: Ran, cancels_done: asyncio.Event) -> None:
    """Two runs killed with no hook, reaped (once the cancelled runs are over, so only these are left)."""
    runs = await start_runs(
        "e2e-unhooked/e2e-scale", CRASHED_RUNS, count=JOBS_PER_RUN, backend=f"ibmq_{CRASH_BACKEND}"
    )

    async def kill_once_awaited(run_id: Any) -> None:
        await until_awaited(prefect, topology.emulator, run_id, JOBS_PER_RUN, timeout=EVERYTHING)
        topology.flow_process_of(run_id).kill()

    await asyncio.gather(*(kill_once_awaited(run_id) for run_id in runs))
    for run_id in runs:
        ran.states.append(await final_state(prefect, run_id, timeout=EVERYTHING, every=1))
    await cancels_done.wait()
    env = scenario_environment(topology.server, topology.emulator)
    command = [sys.executable, "-m", "prefect_qiskit_jobs", "reap", "--grace-seconds", "0"]

    def reap() -> str:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    ran.reaper_outputs = list(await asyncio.gather(*(anyio.to_thread.run_sync(reap) for _ in range(2))))
    for run_id in runs:
        ran.jobs.append(jobs_of_run(topology.emulator, run_id))
        ran.cancels.append(cancel_requests(topology.emulator, ran.jobs[-1]))


async def deferred(prefect: PrefectClient, topology: Topology, ran: Ran) -> None:
    runs = await start_runs("e2e-deferred/e2e-scale", DEFERRED_RUNS, backend=f"ibmq_{DEFER_BACKEND}")

    async def suspended_then_released(run_id: Any) -> None:
        async def paused() -> bool:
            state = (await prefect.read_flow_run(run_id)).state
            if state is not None and state.is_final():
                raise AssertionError(f"deferred run {run_id} ended {state.type.value} before suspending")
            return state is not None and state.is_paused()

        await eventually(paused, EVERYTHING, f"flow run {run_id} to suspend", every=1)

        async def exited() -> bool:
            return topology.flow_process_of(run_id) is None

        await eventually(exited, 60, f"the flow process of {run_id} to exit")
        ran.process_while_suspended.append(topology.flow_process_of(run_id) is not None)
        for job in jobs_of_run(topology.emulator, run_id):
            topology.emulator.release(job["id"])

    await asyncio.gather(*(suspended_then_released(run_id) for run_id in runs))
    for run_id in runs:
        ran.states.append(await final_state(prefect, run_id, timeout=EVERYTHING, every=1))
        ran.jobs.append(jobs_of_run(topology.emulator, run_id))
        ran.results.append(await results_of(prefect, run_id))
        history = await prefect.read_flow_run_states(run_id)
        ran.resumings.append([state.name for state in history].count("Resuming"))


@pytest.fixture(scope="module")
async def seen(topology: Topology, prefect_server: PrefectServer) -> Seen:
    seen = Seen()
    settings = {PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}
    with talking_to(settings):
        async with get_client() as prefect:
            releaser = asyncio.create_task(release_queued(topology.emulator, SWEEP_BACKEND))
            try:
                # The runs that must wait on held jobs go first, so the sweep cannot starve them of slots.
                cancels_done = asyncio.Event()
                special = asyncio.gather(
                    cancelled(prefect, topology, seen.cancelled, cancels_done),
                    crashed(prefect, topology, seen.crashed, cancels_done),
                    deferred(prefect, topology, seen.deferred),
                )
                await asyncio.sleep(0)
                await asyncio.gather(special, sweep(prefect, topology, seen.sweep))
            finally:
                releaser.cancel()
    seen.all_jobs = topology.emulator.jobs()
    return seen


def assert_bells(counts: list[dict[str, int]], jobs: int, shots: int) -> None:
    assert len(counts) == jobs
    for job_counts in counts:
        assert sum(job_counts.values()) == shots
        assert job_counts.get("00", 0) + job_counts.get("11", 0) > shots // 2


async def test_thirty_runs_on_three_workers_complete_with_bell_counts(seen: Seen) -> None:
    assert seen.sweep.states == [StateType.COMPLETED] * SWEEP_RUNS
    for counts in seen.sweep.results:
        assert_bells(counts, JOBS_PER_RUN, SHOTS)


async def test_every_job_is_created_exactly_once(seen: Seen) -> None:
    for ran in (seen.sweep, seen.cancelled, seen.crashed):
        assert [len(jobs) for jobs in ran.jobs] == [JOBS_PER_RUN] * len(ran.states)
    assert [len(jobs) for jobs in seen.deferred.jobs] == [2] * DEFERRED_RUNS
    expected = (SWEEP_RUNS + CANCELLED_RUNS + CRASHED_RUNS) * JOBS_PER_RUN + DEFERRED_RUNS * 2
    assert len(seen.all_jobs) == expected
    keys = Counter(tag for job in seen.all_jobs for tag in job["tags"] if tag.startswith(SUBMIT_KEY_PREFIX))
    assert len(keys) == expected
    assert set(keys.values()) == {1}


async def test_five_cancelled_runs_have_each_job_cancelled_with_one_request(seen: Seen) -> None:
    assert seen.cancelled.states == [StateType.CANCELLED] * CANCELLED_RUNS
    for jobs, cancels in zip(seen.cancelled.jobs, seen.cancelled.cancels, strict=True):
        assert [job["status"] for job in jobs] == ["Cancelled"] * JOBS_PER_RUN
        assert cancels == [1] * JOBS_PER_RUN


async def test_two_reapers_at_once_cancel_each_crashed_runs_job_once(seen: Seen) -> None:
    assert seen.crashed.states == [StateType.CRASHED] * CRASHED_RUNS
    for jobs, cancels in zip(seen.crashed.jobs, seen.crashed.cancels, strict=True):
        assert [job["status"] for job in jobs] == ["Cancelled"] * JOBS_PER_RUN
        assert cancels == [1] * JOBS_PER_RUN
    said = sorted(output.split(" job(s)")[0] for output in seen.crashed.reaper_outputs)
    assert said == ["Cancelled 0", f"Cancelled {CRASHED_RUNS * JOBS_PER_RUN}"]


async def test_deferred_runs_free_their_worker_and_are_resumed_once(seen: Seen) -> None:
    assert seen.deferred.process_while_suspended == [False] * DEFERRED_RUNS
    assert seen.deferred.states == [StateType.COMPLETED] * DEFERRED_RUNS
    assert seen.deferred.resumings == [1] * DEFERRED_RUNS
    for jobs, counts in zip(seen.deferred.jobs, seen.deferred.results, strict=True):
        assert len(jobs) == 2  # adopted when the run re-executed, never submitted again
        assert_bells(counts, 2, 16)
