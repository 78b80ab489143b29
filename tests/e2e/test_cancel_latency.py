"""A served run cancelled while its jobs run ends Cancelled only once IBM has stopped every job.

IBM accepts a running job's cancel at once but stops the job seconds later; a queued job is
cancelled on the spot. Here the emulator keeps each running job Running for ``CANCEL_LATENCY``
seconds after accepting its cancel. The run's 30 jobs all run when the run is cancelled through
the API (as the UI's Cancel does): when Prefect shows the run Cancelled, every job must already
be Cancelled, each after exactly one cancel request (a layer that gave up confirming, or
mistook an accepted cancel for a lost one, would leave jobs running or ask twice).

The test has an emulator of its own (enough slots for 30 running jobs, each running for ten
minutes unless cancelled), and a serve process of its own pointed at it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.e2e.conftest import (
    PrefectServer,
    cancel_requests,
    cancel_through_api,
    eventually,
    final_state,
    jobs_of_run,
    serving,
    until_awaited,
)

pytestmark = pytest.mark.e2e

JOBS = 30
CANCEL_LATENCY = 4.0
FLOW = "e2e-swept"
DEPLOYMENT = f"{FLOW}/e2e"


@pytest.fixture(scope="module")
def slow_to_cancel() -> Iterator[RunningEmulator]:
    """An emulator that runs all 30 jobs at once, for ten minutes each, and stops them seconds after a cancel.

    Jobs queue until released, so that the wait has read each one before any runs.
    """
    config = EmulatorConfig(
        queue_delay=600,
        concurrency=JOBS,
        min_run_seconds=600,
        cancel_latency=CANCEL_LATENCY,
        backends=("manila",),
    )
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def served_slow(
    prefect_server: PrefectServer, slow_to_cancel: RunningEmulator
) -> Iterator[subprocess.Popen[bytes]]:
    """A serve process of the swept flow whose runs submit to ``slow_to_cancel``."""
    with serving(prefect_server, slow_to_cancel, "serve-cancel-latency.log", [DEPLOYMENT], FLOW) as process:
        yield process


async def test_a_run_cancelled_while_its_jobs_run_is_cancelled_only_after_ibm_stopped_each_job_once(
    served_slow: subprocess.Popen[bytes], slow_to_cancel: RunningEmulator, prefect: PrefectClient
) -> None:
    iqp = slow_to_cancel
    run = await run_deployment(DEPLOYMENT, parameters={"count": JOBS}, timeout=0)
    await until_awaited(prefect, iqp, run.id, count=JOBS)
    iqp.release()

    async def all_running() -> bool:
        return [job["status"] for job in jobs_of_run(iqp, run.id)] == ["Running"] * JOBS

    await eventually(all_running, 60, f"the {JOBS} jobs of flow run {run.id} running")

    await cancel_through_api(prefect, run.id)

    # Seen final within a tick, and the jobs read right then: what IBM had stopped by the run's end.
    assert await final_state(prefect, run.id, every=0.05) == StateType.CANCELLED
    jobs = jobs_of_run(iqp, run.id)
    cancels = cancel_requests(iqp, jobs)
    assert [job["status"] for job in jobs] == ["Cancelled"] * JOBS
    assert cancels == [1] * JOBS
