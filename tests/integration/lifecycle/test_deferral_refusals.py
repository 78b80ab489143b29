"""``suspend_until_final`` is refused, before any request, wherever a run could not be suspended.

Suspension reschedules the run's deployment, and Prefect cannot suspend a task: outside any flow
run, in a flow run without a deployment, and inside a task, the call says why and asks IBM nothing.
"""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow, task

from prefect_qiskit_jobs import ConfigurationError, JobRef, asuspend_until_final, suspend_until_final
from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.conftest import SMALL_BACKEND

JOB = JobRef(job_id="d1x2c3v4b5n6m7q8w9e0", backend=SMALL_BACKEND, primitive="sampler")


def test_outside_any_flow_run_it_is_refused(emulator: RunningEmulator) -> None:
    with pytest.raises(ConfigurationError, match="inside a flow run"):
        suspend_until_final([JOB])

    assert emulator.stats()["routes"] == {}


async def test_a_flow_run_without_a_deployment_is_refused(emulator: RunningEmulator) -> None:
    @flow
    def plain() -> None:
        suspend_until_final([JOB])

    @flow
    async def plain_async() -> None:
        await asuspend_until_final([JOB])

    with pytest.raises(ConfigurationError, match="needs a deployment run"):
        await asyncio.to_thread(plain)
    with pytest.raises(ConfigurationError, match="needs a deployment run"):
        await plain_async()
    assert emulator.stats()["routes"] == {}


def test_inside_a_task_it_is_refused(emulator: RunningEmulator) -> None:
    @task
    def deferring() -> None:
        suspend_until_final([JOB])

    @flow
    def with_a_task() -> None:
        deferring()

    with pytest.raises(ConfigurationError, match="cannot be called inside a task"):
        with_a_task()
    assert emulator.stats()["routes"] == {}
