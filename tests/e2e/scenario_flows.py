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
    JobRef,
    PollPolicy,
    afetch_job_results,
    asuspend_until_final,
    await_for_jobs,
    cancel_jobs_on_exit,
    fetch_job_results,
    get_backend,
    submit_sampler_job,
    submit_sampler_jobs,
    suspend_until_final,
    wait_for_jobs,
)

BACKEND = "ibmq_manila"
FAST_POLL = PollPolicy(initial=0.5, growth=0.1, cap=2.0)


def bell_for(backend: str = BACKEND) -> Any:
    target = get_backend(backend)
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return generate_preset_pass_manager(optimization_level=1, backend=target).run(circuit)


def submit_bells(count: int, detached: bool = False, backend: str = BACKEND) -> list[JobRef]:
    if not count:
        return []
    bell = bell_for(backend)
    return [
        submit_sampler_job([bell], backend=backend, options={"default_shots": 16}, detached=detached)
        for _ in range(count)
    ]


@cancel_jobs_on_exit
@flow(name="e2e-awaited")
async def awaited(count: int = 3, backend: str = BACKEND) -> None:
    """Waits in the flow's own event loop: the sensor layer cancels on interrupt."""
    jobs = submit_bells(count, backend=backend)
    await await_for_jobs(jobs, poll=FAST_POLL)


@cancel_jobs_on_exit
@flow(name="e2e-swept", persist_result=True)
async def swept(count: int = 30, backend: str = BACKEND, shots: int = 16) -> list[dict[str, int]]:
    """A sweep: ``count`` one-pub jobs from one submit task (quicker than a task each); their counts."""
    jobs = submit_sampler_jobs(
        [bell_for(backend)] * count, backend=backend, max_pubs_per_job=1, options={"default_shots": shots}
    )
    await await_for_jobs(jobs, poll=FAST_POLL)
    return [result[0].data.meas.get_counts() for result in await afetch_job_results(jobs)]


@cancel_jobs_on_exit
@flow(name="e2e-threaded")
def threaded(count: int = 3) -> None:
    """Waits in a ``.submit()``ted task on a worker thread, which Prefect does not interrupt: hooks act."""
    jobs = submit_bells(count)
    wait_for_jobs.submit(jobs, poll=FAST_POLL).result()


@flow(name="e2e-synced")
def synced(count: int = 3) -> None:
    """A sync flow calling the wait directly, with no hook: only the sensor can cancel its jobs."""
    jobs = submit_bells(count)
    wait_for_jobs(jobs, poll=FAST_POLL)


@flow(name="e2e-unhooked")
async def unhooked(count: int = 3, detached: int = 0, backend: str = BACKEND) -> None:
    """No hooks: when its process dies, only the reaper can cancel its jobs (but not detached ones)."""
    jobs = submit_bells(count, backend=backend) + submit_bells(detached, detached=True, backend=backend)
    await await_for_jobs(jobs, poll=FAST_POLL)


@flow(name="e2e-detached")
def detached(count: int = 1, attached: int = 0) -> list[str]:
    """Submits ``count`` jobs for a later flow and ends Completed: nothing may ever cancel them.

    ``attached`` more jobs carry only the run's tag: jobs of a run that ended Completed while they
    still queue, which no layer may cancel either.
    """
    return [job.job_id for job in submit_bells(count, detached=True) + submit_bells(attached)]


@flow(name="e2e-deferred", persist_result=True)
async def deferred(
    count: int = 2, backend: str = BACKEND, timeout: float | None = None, wait_first: bool = False
) -> list[dict[str, int]]:
    """Defers its wait: the run suspends while its jobs queue, and the resumer resumes it.

    ``wait_first``: wait for the jobs before deferring, so the suspend call finds them final.
    """
    jobs = submit_bells(count, backend=backend)
    if wait_first:
        await await_for_jobs(jobs, poll=FAST_POLL)
    await asuspend_until_final(jobs, timeout=timeout)
    results = await afetch_job_results(jobs)
    return [result[0].data.meas.get_counts() for result in results]


@flow(name="e2e-deferred-sync", persist_result=True)
def deferred_sync(count: int = 2, backend: str = BACKEND) -> list[dict[str, int]]:
    """The sync twin of ``deferred``."""
    jobs = submit_bells(count, backend=backend)
    suspend_until_final(jobs)
    return [result[0].data.meas.get_counts() for result in fetch_job_results(jobs)]
