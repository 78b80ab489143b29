"""A served run cancelled through the API (as the UI's Cancel does) leaves no IBM job behind."""

from __future__ import annotations

import subprocess

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.e2e.conftest import (
    cancel_requests,
    cancel_through_api,
    each_cancel_logged,
    final_state,
    jobs_of_run,
    until_awaited,
)

pytestmark = pytest.mark.e2e


async def test_cancelling_a_served_run_cancels_each_of_its_jobs_once(
    served: subprocess.Popen[bytes], iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run = await run_deployment("e2e-awaited/e2e", timeout=0)

    await until_awaited(prefect, iqp, run.id)
    await cancel_through_api(prefect, run.id)

    assert await final_state(prefect, run.id) == StateType.CANCELLED
    jobs = jobs_of_run(iqp, run.id)
    assert [j["status"] for j in jobs] == ["Cancelled"] * 3
    cancels = iqp.stats()["cancels"]
    assert [cancels.get(j["id"]) for j in jobs] == [1, 1, 1]


async def test_cancelling_a_served_sync_flow_cancels_its_jobs_through_the_sensor_once_each(
    served: subprocess.Popen[bytes], iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run = await run_deployment("e2e-synced/e2e", timeout=0)
    await until_awaited(prefect, iqp, run.id)

    await cancel_through_api(prefect, run.id)

    assert await final_state(prefect, run.id) == StateType.CANCELLED
    jobs = jobs_of_run(iqp, run.id)
    assert [j["status"] for j in jobs] == ["Cancelled"] * 3
    assert cancel_requests(iqp, jobs) == [1, 1, 1]
    await each_cancel_logged(prefect, run.id, jobs, "sensor")
