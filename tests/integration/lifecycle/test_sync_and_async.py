"""The same lifecycle from async flows, sync flows and plain scripts."""

from __future__ import annotations

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    JobSnapshot,
    JobStatus,
    arun_sampler,
    await_for_job,
    fetch_job_result,
    run_sampler,
    submit_sampler_job,
    wait_for_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, assert_bell, counts_of


async def test_an_async_flow_awaits_the_wait_in_its_own_event_loop(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def awaiting() -> tuple[JobSnapshot, dict[str, int]]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        final = await await_for_job(job, poll=FAST_POLL)
        return final, counts_of(fetch_job_result(job))

    final, counts = await awaiting()

    assert final.status is JobStatus.DONE
    assert_bell(counts)


def test_a_sync_flow_waits_through_a_submitted_wait_task(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def blocking() -> tuple[JobSnapshot, dict[str, int]]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        final = wait_for_job.submit(job, poll=FAST_POLL).result()
        return final, counts_of(fetch_job_result(job))

    final, counts = blocking()

    assert final.status is JobStatus.DONE
    assert_bell(counts)


async def test_arun_sampler_from_an_async_flow(emulator: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    @flow
    async def one_call() -> dict[str, int]:
        return counts_of(
            await arun_sampler([bell_isa], backend=SMALL_BACKEND, options=OPTIONS, poll=FAST_POLL)
        )

    assert_bell(await one_call())
    assert emulator.stats()["routes"]["POST /jobs"] == 1


# Outside a flow run Prefect warns that its task runs' log lines have no flow run to go to.
@pytest.mark.filterwarnings(
    "ignore:Logger 'prefect.task_runs' attempted to send logs to the API without a flow run id:UserWarning"
)
def test_run_sampler_from_a_plain_script(emulator: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    result = run_sampler([bell_isa], backend=SMALL_BACKEND, options=OPTIONS, poll=FAST_POLL)

    assert_bell(counts_of(result))
    assert emulator.stats()["routes"]["POST /jobs"] == 1
