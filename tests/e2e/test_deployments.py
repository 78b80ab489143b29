"""``prefect deploy --all`` creates every example deployment, and a process worker runs the scheduled
experiment twice: the second run's trend artifact carries the first run's figure."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.e2e.conftest import ROOT, PrefectServer, eventually, start_logged, stop_worker

pytestmark = pytest.mark.e2e

POOL = "qiskit-local"  # the work pool deployments/prefect.yaml names
PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]


@pytest.fixture(scope="module")
def nightly_iqp() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(queue_delay=0.5)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def deployed(prefect_server: PrefectServer, nightly_iqp: RunningEmulator) -> Iterator[dict[str, str]]:
    """The documented path: create the pool, deploy everything, start a worker."""
    env = {**os.environ, **prefect_server.environment(), **nightly_iqp.environment()}

    def prefect(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, (
            f"prefect {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        return done

    prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
    prefect("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
    worker = start_logged(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
        env,
        prefect_server.home / "worker-nightly.log",
    )
    yield env
    stop_worker(worker)


async def test_every_deployment_exists_with_its_schedule_and_parameters(
    deployed: dict[str, str], prefect: PrefectClient
) -> None:
    quickstart = await prefect.read_deployment_by_name("qiskit-quickstart/quickstart")
    sweep = await prefect.read_deployment_by_name("qiskit-parameter-sweep/parameter-sweep")
    nightly = await prefect.read_deployment_by_name("qiskit-ghz-fidelity/nightly")
    reaper = await prefect.read_deployment_by_name("qiskit-job-reaper/reaper")
    cleanup = await prefect.read_deployment_by_name("qiskit-job-cleanup/cleanup")

    assert {d.work_pool_name for d in (quickstart, sweep, nightly, reaper, cleanup)} == {POOL}
    assert [s.schedule.cron for s in cleanup.schedules] == ["0 3 * * 0"]  # type: ignore[union-attr]
    assert cleanup.parameters == {"older_than": "30d", "results": True, "ibm": False}
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]  # type: ignore[union-attr]
    assert [s.schedule.interval.total_seconds() for s in reaper.schedules] == [300]  # type: ignore[union-attr]
    form = sweep.parameter_openapi_schema
    assert form["properties"]["sweep"]["$ref"] == "#/definitions/SweepParameters"
    fields = form["definitions"]["SweepParameters"]["properties"]
    assert {"backend", "points", "jobs", "precision"} <= set(fields)
    assert fields["points"]["minimum"] == 2
    assert set(quickstart.parameter_openapi_schema["properties"]) == {"backend", "shots", "credentials"}


async def _run_nightly(prefect: PrefectClient) -> Any:
    run = await run_deployment("qiskit-ghz-fidelity/nightly", timeout=0, parameters={"shots": 400})

    async def ended() -> Any:
        current = await prefect.read_flow_run(run.id)
        return current if current.state and current.state.is_final() else None

    finished = await eventually(ended, 240, f"nightly run {run.id} to finish on the worker")
    assert finished.state.type == StateType.COMPLETED, finished.state
    return finished


async def test_the_worker_runs_the_experiment_twice_and_the_trend_grows(
    deployed: dict[str, str], prefect: PrefectClient, nightly_iqp: RunningEmulator
) -> None:
    first = await _run_nightly(prefect)
    second = await _run_nightly(prefect)

    def jobs_of(run: Any) -> list[str]:
        return [j["id"] for j in nightly_iqp.jobs() if f"prefect-flow-run:{run.id}" in j["tags"]]

    (first_job,) = jobs_of(first)
    (second_job,) = jobs_of(second)
    trend = await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["qiskit-trend-ghz3-ibmq-manila"]))
    )
    latest = next(a for a in trend if a.flow_run_id == second.id)
    assert f"`{first_job}`" in latest.data
    assert f"`{second_job}`" in latest.data
    assert "Trend over 2 run(s)" in latest.data
