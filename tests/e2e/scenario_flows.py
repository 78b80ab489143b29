"""Flows that the end-to-end tests serve, deploy and cancel; importable from a fresh process.

Each flow submits small Bell jobs to the emulator (credentials from the ``QISKIT_IBM_*`` and
IAM/Global Search variables the test sets), then waits for them in one of the ways users do.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    JobRef,
    PollPolicy,
    cancel_jobs_on_exit,
    submit_sampler_job,
    wait_for_job,
    wait_for_jobs,
)
from prefect_qiskit_jobs.runtime import gateway_for

BACKEND = "ibmq_manila"
FAST_POLL = PollPolicy(initial=0.5, multiplier=1.5, cap=2.0)


def bell_for(backend: str = BACKEND) -> Any:
    target = gateway_for(IBMQuantumCredentials.from_environment()).backend(backend)
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return generate_preset_pass_manager(optimization_level=1, backend=target).run(circuit)


def submit_bells(count: int, detached: bool = False) -> list[JobRef]:
    bell = bell_for()
    return [
        submit_sampler_job([bell], backend=BACKEND, options={"default_shots": 16}, detached=detached)
        for _ in range(count)
    ]


@cancel_jobs_on_exit
@flow(name="e2e-awaited")
async def awaited(count: int = 3) -> None:
    """Waits in the flow's own event loop: the sensor layer cancels on interrupt."""
    jobs = submit_bells(count)
    await wait_for_jobs(jobs, poll=FAST_POLL)


@cancel_jobs_on_exit
@flow(name="e2e-threaded")
def threaded(count: int = 3) -> None:
    """Waits from ``.map()`` on worker threads, which Prefect does not interrupt: the hooks act."""
    jobs = submit_bells(count)
    futures = wait_for_job.map(jobs, poll=FAST_POLL)
    for future in futures:
        future.result()


@flow(name="e2e-unhooked")
async def unhooked(count: int = 3) -> None:
    """No hooks: when its process dies, only the reaper can cancel its jobs."""
    jobs = submit_bells(count)
    await wait_for_jobs(jobs, poll=FAST_POLL)


@flow(name="e2e-detached")
def detached() -> str:
    """Submits a job for a later flow and ends: nothing may ever cancel it."""
    (job,) = submit_bells(1, detached=True)
    return job.job_id
