"""QPU-time budgets: IBM's own 409 at the instance's usage limit, and the package's budgets, checked
before a job is created, so that going over creates nothing.

The emulator charges each completed job a fixed ``JOB_SECONDS`` of QPU time, so what was spent is
known exactly; POSTs are counted at the emulator.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    QiskitJobsError,
    QPUBudgetExceeded,
    submit_sampler_job,
    wait_for_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.limits.budget import QPU_BUDGET_VARIABLE, estimate_job_seconds, estimate_tag
from prefect_qiskit_jobs.wait.display import artifact_key

from .conftest import FAST_POLL, GUARD, OPTIONS, SMALL_BACKEND, current_flow_run_id

JOB_SECONDS = 1.5  # below a Bell job's estimate (about 2.05 s): the estimate is conservative
EmulatorFactory = Callable[..., RunningEmulator]


def posts(emulator: RunningEmulator) -> int:
    count: int = emulator.stats()["routes"].get("POST /jobs", 0)
    return count


def test_ibm_refusing_a_job_at_the_instance_usage_limit_is_a_budget_error_and_not_retried(
    make_emulator: EmulatorFactory, bell_isa: Any
) -> None:
    emulator = make_emulator(backends=("manila",), usage_limit_seconds=0, job_qpu_seconds=JOB_SECONDS)
    credentials = IBMQuantumCredentials.for_emulator(emulator)

    @flow
    def one_job() -> None:
        submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS)

    with pytest.raises(QPUBudgetExceeded, match="Usage exceeds instance limit") as refused:
        one_job()

    assert isinstance(refused.value, QiskitJobsError)
    assert "nothing was submitted" in str(refused.value)
    assert "instance usage limit 0 s, consumed 0.000 s" in str(refused.value)
    assert (refused.value.budget_seconds, refused.value.spent_seconds) == (0.0, 0.0)
    assert posts(emulator) == 1  # one refused POST: no retry, by the task or the client
    assert emulator.jobs() == []


def budgeted_flow(credentials: IBMQuantumCredentials, bell_isa: Any, jobs: int, wait: bool = True) -> Any:
    """A flow that submits ``jobs`` jobs one after another (each waited for) until refused; the
    refusal it raises names the jobs created before it (its cause is the refusal itself)."""

    @flow
    def spend() -> list[str]:
        created: list[str] = []
        try:
            for _ in range(jobs):
                job = submit_sampler_job(
                    [bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
                )
                created.append(job.job_id)
                if wait:
                    wait_for_job(job, credentials=credentials, poll=FAST_POLL)
        except QPUBudgetExceeded as exc:
            raise QPUBudgetExceeded(f"{current_flow_run_id()}|{created}|{exc}") from exc
        return created

    return spend


@pytest.mark.parametrize("scope", ["flow-run", "deployment", "instance"])
def test_a_flow_over_its_budget_creates_no_job_past_it_and_says_budget_spent_and_estimate(
    make_emulator: EmulatorFactory, bell_isa: Any, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    emulator = make_emulator(backends=("manila",), job_qpu_seconds=JOB_SECONDS)
    credentials = IBMQuantumCredentials.for_emulator(emulator)
    estimate = estimate_job_seconds([SamplerPub.coerce(bell_isa)], FakeManilaV2(), OPTIONS)
    # Two jobs fit (0 spent, then 1.5, each time with room for one estimate); the third does not.
    budget = JOB_SECONDS + estimate + 0.1
    monkeypatch.setenv(QPU_BUDGET_VARIABLE, f"{budget}s:{scope}")

    with pytest.raises(QPUBudgetExceeded) as refused:
        budgeted_flow(credentials, bell_isa, jobs=5)()

    assert posts(emulator) == 2  # nothing was sent for the refused job
    assert len(emulator.jobs()) == 2
    error = refused.value.__cause__
    assert isinstance(error, QPUBudgetExceeded)
    assert error.spent_seconds == 2 * JOB_SECONDS
    assert error.estimate_seconds == estimate
    message = str(error)
    assert f"budget {budget:g} s" in message
    assert f"spent {2 * JOB_SECONDS:.3f} s" in message
    assert f"estimate {estimate:.3f} s" in message
    assert "nothing was submitted" in message

    # The run's board shows the budget as the second submit's check left it: its job at its estimate.
    flow_run_id = str(refused.value).split("|")[0]
    key = artifact_key("qiskit-run-progress", flow_run_id)
    with get_client(sync_client=True) as client:
        (progress,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert f": {budget:g} s, spent {JOB_SECONDS + estimate:.3f} s, 0.100 s left" in (
        progress.description or ""
    )


def test_pending_jobs_count_at_their_estimate(
    held: RunningEmulator, bell_isa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = IBMQuantumCredentials.for_emulator(held)
    estimate = estimate_job_seconds([SamplerPub.coerce(bell_isa)], FakeManilaV2(), OPTIONS)
    monkeypatch.setenv(QPU_BUDGET_VARIABLE, f"{3 * estimate + 0.1}s:flow-run")

    with pytest.raises(QPUBudgetExceeded) as refused:
        budgeted_flow(credentials, bell_isa, jobs=5, wait=False)()

    assert f"spent {3 * estimate:.3f} s" in str(refused.value)
    assert len(held.jobs()) == 3
    assert {job["status"] for job in held.jobs()} == {"Queued"}
    assert all(estimate_tag(estimate) in job["tags"] for job in held.jobs())


WORKER = """
import sys
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.flow_engine import run_flow
from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from prefect_qiskit_jobs import QPUBudgetExceeded, submit_sampler_job

circuit = QuantumCircuit(2)
circuit.h(0)
circuit.cx(0, 1)
circuit.measure_all()
isa = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)


@flow
def spend(jobs: int) -> int:
    created = 0
    try:
        for _ in range(jobs):
            submit_sampler_job([isa], backend="ibmq_manila", options={"default_shots": 200})
            created += 1
    except QPUBudgetExceeded as refused:
        print("REFUSED", refused.spent_seconds, flush=True)
    return created


with get_client(sync_client=True) as client:
    flow_run = client.read_flow_run(UUID(sys.argv[1]))
print("READY", flush=True)
sys.stdin.readline()
print("CREATED", run_flow(spend, flow_run=flow_run, parameters={"jobs": 6}), flush=True)
"""
DEPLOYMENT_JOBS = 5


async def test_two_workers_sharing_a_deployment_budget_never_overspend_it_together(
    held: RunningEmulator, bell_isa: Any, prefect_api: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes each run a flow run of one deployment, submitting until refused; their queued
    jobs count at their estimates, so the budget holds exactly ``DEPLOYMENT_JOBS`` of them."""
    estimate = estimate_job_seconds([SamplerPub.coerce(bell_isa)], FakeManilaV2(), OPTIONS)
    monkeypatch.setenv(QPU_BUDGET_VARIABLE, f"{DEPLOYMENT_JOBS * estimate + 0.1}s:deployment")
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("spend")
        deployment_id = await client.create_deployment(flow_id, f"budget-{uuid.uuid4().hex[:8]}")
        runs = [await client.create_flow_run_from_deployment(deployment_id) for _ in range(2)]
    workers = [await start_worker(str(run.id), {**os.environ, **prefect_api}) for run in runs]
    try:
        for worker in workers:  # both go at once
            assert worker.stdin is not None
            worker.stdin.write(b"GO\n")
            await worker.stdin.drain()
        outputs = [(await asyncio.wait_for(worker.communicate(), GUARD))[0].decode() for worker in workers]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    created = [int(output.split("CREATED")[-1]) for output in outputs]
    assert sum(created) == DEPLOYMENT_JOBS, outputs
    assert len(held.jobs()) == DEPLOYMENT_JOBS
    assert {tag for job in held.jobs() for tag in job["tags"] if tag.startswith("prefect-deployment:")} == {
        f"prefect-deployment:{deployment_id}"
    }
    assert all("REFUSED" in output for output in outputs)


async def start_worker(flow_run_id: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        flow_run_id,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert worker.stdout is not None
    assert (await asyncio.wait_for(worker.stdout.readline(), GUARD)).strip() == b"READY"
    return worker
