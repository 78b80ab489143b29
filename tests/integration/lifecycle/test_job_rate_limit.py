"""IBM's job creation limit kept by one flow, and by two processes sharing the account, via Prefect.

The emulator refuses (429) job creations beyond 10 per rolling 6 s (a scaled minute); its printed
environment carries that limit to the package. 20 submits must all succeed on their first task
run with the emulator refusing none: without the throttle the eleventh POST is refused, and the
task retries it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
from prefect.client.schemas.objects import TaskRun
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import asubmit_sampler_job
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import GUARD, OPTIONS, SMALL_BACKEND, current_flow_run_id

LIMIT = "10/6"
LIMIT_JOBS = 10
JOBS = 2 * LIMIT_JOBS
# Seconds to wait for the API to hold a flow run's task runs in a final state (they are recorded
# from events, after the flow returns); not a measure of speed.
RECORDS_DEADLINE = 60.0

CHILD = """
import asyncio, sys
from prefect import flow
from prefect.context import FlowRunContext
from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from prefect_qiskit_jobs import asubmit_sampler_job

circuit = QuantumCircuit(2)
circuit.h(0)
circuit.cx(0, 1)
circuit.measure_all()
isa = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)


@flow
async def child_submits(count: int) -> str:
    await asyncio.gather(*(
        asubmit_sampler_job([isa], backend="ibmq_manila", options={"default_shots": 200})
        for _ in range(count)
    ))
    return str(FlowRunContext.get().flow_run.id)


print("READY", flush=True)
sys.stdin.readline()
print("FLOW_RUN", asyncio.run(child_submits(int(sys.argv[1]))), flush=True)
sys.stdin.readline()  # stays up, giving its slots back as they come due, until told to exit
"""


@pytest.fixture
def limited(make_emulator: Any) -> RunningEmulator:
    emulator: RunningEmulator = make_emulator(job_rate_limit=LIMIT, backends=("manila",), concurrency=2)
    assert emulator.environment()["PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT"] == LIMIT
    return emulator


@flow
async def submits(bell_isa: QuantumCircuit, count: int) -> str:
    await asyncio.gather(
        *(asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(count))
    )
    return current_flow_run_id()


async def final_task_runs(flow_run_id: str, count: int) -> list[TaskRun]:
    """The flow run's ``count`` task runs, once the API holds each in a final state."""
    deadline = asyncio.get_running_loop().time() + RECORDS_DEADLINE
    async with get_client() as client:
        while True:
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[UUID(flow_run_id)]))
            )
            done = [run for run in runs if run.state is not None and run.state.is_final()]
            if len(done) >= count or asyncio.get_running_loop().time() > deadline:
                return runs
            await asyncio.sleep(0.2)


def assert_first_runs_completed(runs: list[TaskRun], count: int) -> None:
    assert len(runs) == count
    assert [run.state.type.value if run.state else None for run in runs] == ["COMPLETED"] * count
    assert [run.run_count for run in runs] == [1] * count  # no task retry was needed


def assert_created_without_refusals(emulator: RunningEmulator, count: int) -> None:
    jobs = emulator.jobs()
    assert len(jobs) == count
    assert not [job for job in jobs if job["status"] == "Failed"]
    assert emulator.stats()["rate_limited"] == 0
    assert emulator.stats()["routes"]["POST /jobs"] == count


async def test_one_flow_submits_twice_the_limit_without_a_refusal(
    limited: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    flow_run_id = await submits(bell_isa, JOBS)

    assert_first_runs_completed(await final_task_runs(flow_run_id, JOBS), JOBS)
    assert_created_without_refusals(limited, JOBS)


async def test_two_processes_share_the_limit_through_prefect(
    limited: RunningEmulator, bell_isa: QuantumCircuit, prefect_api: dict[str, str]
) -> None:
    half = JOBS // 2
    child = await start_child(half, {**os.environ, **prefect_api})
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        child.stdin.write(b"GO\n")
        await child.stdin.drain()
        flow_run_id = await submits(bell_isa, half)
        child_flow_run_id = await child_flow_run(child)
        child.stdin.write(b"EXIT\n")
        await asyncio.wait_for(child.communicate(), GUARD)
    finally:
        await stop(child)
    assert child.returncode == 0

    assert_first_runs_completed(await final_task_runs(flow_run_id, half), half)
    assert_first_runs_completed(await final_task_runs(child_flow_run_id, half), half)
    assert_created_without_refusals(limited, JOBS)


async def test_without_a_prefect_server_a_process_that_ended_in_its_window_leaves_no_slot_taken(
    limited: RunningEmulator, tmp_path: Path
) -> None:
    """Prefect's temporary local server returns no expired lease: were the limit kept there, the
    slots of the first process would stay taken, and the second would wait for them for good."""
    no_server = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    no_server["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    no_server.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # a busy machine
    for _ in range(2):
        child = await start_child(LIMIT_JOBS, no_server)  # takes every slot of the window
        try:
            output, _ = await asyncio.wait_for(child.communicate(b"GO\n"), GUARD)
        finally:
            await stop(child)
        assert child.returncode == 0
        assert b"FLOW_RUN" in output
    assert len(limited.jobs()) == 2 * LIMIT_JOBS
    assert not [job for job in limited.jobs() if job["status"] == "Failed"]


async def start_child(count: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    """A process that submits ``count`` jobs in a flow once sent a line, and exits on the next."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(count),
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert (await asyncio.wait_for(child.stdout.readline(), GUARD)).strip() == b"READY"
    return child


async def child_flow_run(child: asyncio.subprocess.Process) -> str:
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), GUARD)
    assert line.startswith(b"FLOW_RUN"), line
    return line.decode().split()[-1]


async def stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.kill()
        await child.wait()


async def test_a_refused_post_is_sent_again_within_the_submit_not_by_a_task_retry(
    make_emulator: Any, bell_isa: QuantumCircuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator: RunningEmulator = make_emulator(job_rate_limit="2/3", backends=("manila",))
    # The package believes in a looser limit than the emulator keeps, so IBM refuses some POSTs.
    monkeypatch.setenv("PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT", "50/1")
    flow_run_id = await submits(bell_isa, 4)

    assert_first_runs_completed(await final_task_runs(flow_run_id, 4), 4)
    stats = emulator.stats()
    assert stats["rate_limited"] >= 2
    assert stats["routes"]["POST /jobs"] == 4 + stats["rate_limited"]
    assert len(emulator.jobs()) == 4  # each refused POST created nothing; its re-send made one job


async def test_with_the_limit_off_a_refused_post_is_still_sent_again_within_the_submit(
    make_emulator: Any, bell_isa: QuantumCircuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user's flow: the package's limit off (as ``emulator env`` prints it for an unlimited
    emulator), IBM keeping 5 per window. Every submit succeeds on its first task run; IBM's 429s
    were re-sent within the submits, and created nothing."""
    emulator: RunningEmulator = make_emulator(job_rate_limit="5/3", backends=("manila",))
    monkeypatch.setenv("PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT", "off")
    count = 12
    flow_run_id = await submits(bell_isa, count)

    assert_first_runs_completed(await final_task_runs(flow_run_id, count), count)
    stats = emulator.stats()
    assert stats["rate_limited"] >= 1  # IBM refused some: the submits re-sent them
    assert stats["routes"]["POST /jobs"] == count + stats["rate_limited"]
    jobs = emulator.jobs()
    assert len(jobs) == count  # no refused POST created a job, no re-send a duplicate
    assert not [job for job in jobs if job["status"] == "Failed"]
