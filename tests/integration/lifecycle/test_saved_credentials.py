"""A saved credentials block, passed by name, works through every entry point, in sync and async code.

Prefect's ``Block.load`` returns a coroutine when called from async code; these tests pass the
block's *name* the way the README and the deployments tell users to, from async and sync flows.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    JobStatus,
    asubmit_sampler_job,
    await_for_jobs,
    cancel_jobs_on_exit,
    fetch_job_result,
    reap_orphaned_jobs,
    run_sampler,
    submit_sampler_job,
    wait_for_jobs,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, assert_bell, counts_of

BLOCK_NAME = "ibm-quantum-saved"


@pytest.fixture
async def saved_block(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator's credentials saved under a name, with the QISKIT_IBM_* environment cleared."""
    await IBMQuantumCredentials.for_emulator(emulator).save(BLOCK_NAME, overwrite=True)
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    return BLOCK_NAME


async def test_an_async_flow_uses_a_saved_block_by_name(saved_block: str, bell_isa: QuantumCircuit) -> None:
    @flow
    async def by_name() -> tuple[list[JobStatus], dict[str, int]]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=saved_block, options=OPTIONS)
        finals = await await_for_jobs([job], credentials=saved_block, poll=FAST_POLL)
        return [f.status for f in finals], counts_of(fetch_job_result(job, credentials=saved_block))

    statuses, counts = await by_name()

    assert statuses == [JobStatus.DONE]
    assert_bell(counts)


class Boom(RuntimeError):
    """The flow fails after submitting, so its failure hook (opted in) must cancel the job."""


def cancelled_once(emulator: RunningEmulator, job_id: str) -> bool:
    return emulator.job(job_id)["status"] == "Cancelled" and emulator.stats()["cancels"] == {job_id: 1}


def test_a_sync_flow_waits_and_fetches_with_a_saved_block_by_name(
    saved_block: str, bell_isa: QuantumCircuit
) -> None:
    @flow
    def by_name() -> dict[str, int]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=saved_block, options=OPTIONS)
        wait_for_jobs([job], credentials=saved_block, poll=FAST_POLL)
        return counts_of(fetch_job_result(job, credentials=saved_block))

    assert_bell(by_name())


@pytest.mark.filterwarnings(
    "ignore:Logger 'prefect.task_runs' attempted to send logs to the API without a flow run id:UserWarning"
)
def test_run_sampler_in_a_script_with_a_saved_block_by_name(
    saved_block: str, bell_isa: QuantumCircuit
) -> None:
    result = run_sampler(
        [bell_isa], backend=SMALL_BACKEND, credentials=saved_block, options=OPTIONS, poll=FAST_POLL
    )

    assert_bell(counts_of(result))


async def test_the_hook_of_an_async_flow_uses_the_runs_credentials_parameter(
    held: RunningEmulator, saved_block: str, bell_isa: QuantumCircuit
) -> None:
    await IBMQuantumCredentials.for_emulator(held).save(saved_block, overwrite=True)
    submitted: list[str] = []

    @cancel_jobs_on_exit(on_failure=True)
    @flow
    async def failing(credentials: str) -> None:
        job = await asubmit_sampler_job(
            [bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
        )
        submitted.append(job.job_id)
        raise Boom("after submitting")

    state = await failing(saved_block, return_state=True)

    assert state.is_failed()
    assert cancelled_once(held, submitted[0])


def test_the_hook_of_a_sync_flow_loads_a_block_named_on_the_decorator(
    held: RunningEmulator, saved_block: str, bell_isa: QuantumCircuit
) -> None:
    IBMQuantumCredentials.for_emulator(held).save(saved_block, overwrite=True)
    submitted: list[str] = []

    @cancel_jobs_on_exit(credentials=saved_block, on_failure=True)
    @flow
    def failing() -> None:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=saved_block, options=OPTIONS)
        submitted.append(job.job_id)
        raise Boom("after submitting")

    state = failing(return_state=True)

    assert state.is_failed()
    assert cancelled_once(held, submitted[0])


async def test_the_reaper_flow_and_cli_use_a_saved_block_by_name(
    held: RunningEmulator, saved_block: str, bell_isa: QuantumCircuit, prefect_api: dict[str, str]
) -> None:
    await IBMQuantumCredentials.for_emulator(held).save(saved_block, overwrite=True)

    @flow
    async def left_behind(credentials: str) -> None:
        for _ in range(2):
            await asubmit_sampler_job(
                [bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
            )
        raise Boom("no hook: the reaper must find these")

    await left_behind(saved_block, return_state=True)
    first, second = (job["id"] for job in held.jobs())
    held.admin("POST", "/reset?jobs=false")  # counters only

    reaped = await reap_orphaned_jobs(credentials=saved_block, include_failed=True, grace_seconds=0)
    assert sorted(reaped) == sorted([first, second])

    await left_behind(saved_block, return_state=True)
    third, fourth = (job["id"] for job in held.jobs() if job["status"] == "Queued")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QISKIT_IBM_", "IAM_URL", "GLOBAL_"))}
    env.update(prefect_api)
    command = [sys.executable, "-m", "prefect_qiskit_jobs.cli", "reap", "--credentials", saved_block]
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--include-failed", "--grace-seconds", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "Cancelled 2 job(s)" in done.stdout
    assert {held.job(job_id)["status"] for job_id in (first, second, third, fourth)} == {"Cancelled"}
    assert held.stats()["cancels"] == {first: 1, second: 1, third: 1, fourth: 1}


async def test_the_example_flows_take_a_saved_block_by_name_as_their_deployments_pass_it(
    saved_block: str,
) -> None:
    from flows.quickstart import quickstart

    counts = await quickstart(backend=SMALL_BACKEND, shots=200, credentials=saved_block)

    assert_bell(counts["bell"], shots=200)
    assert sum(counts["ghz3"].values()) == 200
