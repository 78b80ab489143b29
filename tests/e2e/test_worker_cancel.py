"""A run of a process work pool, cancelled through the API, leaves no IBM job behind."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.e2e.conftest import (
    cancel_requests,
    cancel_through_api,
    eventually,
    final_state,
    jobs_of_run,
    queued_and_awaited,
)

pytestmark = pytest.mark.e2e


async def test_cancelling_a_worker_run_cancels_each_of_its_jobs_once(
    process_worker: str, iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run = await run_deployment(process_worker, timeout=0)

    async def awaited() -> bool:
        return queued_and_awaited(iqp, run.id)

    await eventually(awaited, 120, "three jobs queued and awaited by the sensor")
    await cancel_through_api(prefect, run.id)

    assert await final_state(prefect, run.id) == StateType.CANCELLED
    jobs = jobs_of_run(iqp, run.id)
    assert [j["status"] for j in jobs] == ["Cancelled"] * 3
    assert cancel_requests(iqp, jobs) == [1, 1, 1]
