"""A run of a process work pool, cancelled through the API, leaves no IBM job behind.

The worker SIGTERMs the flow process: the sensor, awaited in the flow's loop, cancels the jobs.
Then the worker runs the ``on_cancellation`` hook in a fresh process that re-imports the flow's
module; the hook finds the run's jobs by tag there, all already final.
"""

from __future__ import annotations

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import RunningEmulator
from tests.e2e.conftest import (
    cancel_requests,
    cancel_through_api,
    each_cancel_logged,
    eventually,
    final_state,
    jobs_of_run,
    run_log_lines,
    until_awaited,
)

pytestmark = pytest.mark.e2e


async def test_cancelling_a_worker_run_cancels_each_of_its_jobs_once(
    process_worker: str, iqp: RunningEmulator, prefect: PrefectClient
) -> None:
    run = await run_deployment(process_worker, timeout=0)
    await until_awaited(prefect, iqp, run.id)
    await cancel_through_api(prefect, run.id)

    assert await final_state(prefect, run.id) == StateType.CANCELLED
    jobs = jobs_of_run(iqp, run.id)
    assert [j["status"] for j in jobs] == ["Cancelled"] * 3
    assert cancel_requests(iqp, jobs) == [1, 1, 1]
    await each_cancel_logged(prefect, run.id, jobs, "sensor")

    async def hook_ran() -> bool:
        return any("no pending IBM jobs to cancel" in line for line in await run_log_lines(prefect, run.id))

    await eventually(hook_ran, 30, "the hook's report, from the worker's hook process, in the run's log")
