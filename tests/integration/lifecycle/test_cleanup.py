"""``prefect-qiskit-jobs cleanup``: old results out of Prefect's storage, old jobs off IBM, safely.

Jobs are made by the package's tasks in real flows on the session's Prefect API and run on the
held emulator; they are made old by ageing them on the emulator (``RunningEmulator.age``), not by
waiting. Cleanup must leave alone a job that has not ended and one whose flow run is still live
(here a run put back to Running, as a run still waiting would be), count each deletion once
however often it runs, and never show a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH
from prefect.states import Running
from qiskit import QuantumCircuit
from typer.testing import CliRunner, Result

from prefect_qiskit_jobs import JobRef, JobResultExpired, fetch_job_result, submit_sampler_job
from prefect_qiskit_jobs.cli import app
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.emulator.config import DEFAULT_API_KEY

from .conftest import OPTIONS, SMALL_BACKEND, counts_of, current_flow_run_id
from .test_jobs_cli import wait_done

OLD = 31 * 86400.0  # seconds: older than the default --older-than 30d


def cleanup(*args: str) -> Result:
    """``prefect-qiskit-jobs cleanup ARGS``, in this process."""
    result = CliRunner().invoke(app, ["cleanup", *args])
    assert DEFAULT_API_KEY not in result.output
    assert "Traceback" not in result.output
    return result


def ok(*args: str) -> str:
    result = cleanup(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    print(result.output)
    return result.output


@flow
def submit(bell: QuantumCircuit, count: int) -> tuple[str, list[JobRef]]:
    refs = [submit_sampler_job([bell], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(count)]
    return current_flow_run_id(), refs


@flow
def fetch(jobs: list[JobRef]) -> list[dict[str, int]]:
    return [counts_of(fetch_job_result(job)) for job in jobs]


def stored(job: JobRef) -> Path:
    return Path(PREFECT_LOCAL_STORAGE_PATH.value()) / f"qiskit-result-{job.job_id}"


async def put_back_to_running(run_id: str) -> None:
    async with get_client() as client:
        await client.set_flow_run_state(UUID(run_id), Running(), force=True)


def on_ibm(held: RunningEmulator) -> set[str]:
    return {job["id"] for job in held.jobs()}


def test_cleanup_deletes_old_results_and_jobs_once_and_spares_pending_live_and_young_ones(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    _run_a, (old_a,) = submit(bell_isa, 1)
    _run_b, (old_b,) = submit(bell_isa, 1)
    run_c, (live,) = submit(bell_isa, 1)
    _run_d, (young,) = submit(bell_isa, 1)
    _run_e, (queued,) = submit(bell_isa, 1)  # last: the held queue runs released jobs in order
    wait_done(held, [old_a.job_id, old_b.job_id, live.job_id, young.job_id])
    fetch([old_a, old_b, live, young])
    asyncio.run(put_back_to_running(run_c))
    for job in (old_a, queued, old_b, live):
        held.age(job.job_id, OLD)
    sizes = {job.job_id: stored(job).stat().st_size for job in (old_a, old_b)}
    everything = on_ibm(held)

    dry = ok("--results", "--ibm", "--dry-run")

    assert on_ibm(held) == everything, "a dry run deletes nothing"
    assert all(stored(job).exists() for job in (old_a, old_b, live, young))
    for job in (old_a, old_b):
        assert re.search(
            rf"^{job.job_id}  would delete: stored result \({sizes[job.job_id]} bytes\), IBM job$", dry, re.M
        )
    assert re.search(rf"^{queued.job_id}  skipped: QUEUED, not final$", dry, re.M)
    assert re.search(rf"^{live.job_id}  skipped: its flow run {run_c} is RUNNING$", dry, re.M)
    assert young.job_id not in dry
    total = sum(sizes.values())
    assert f"Would delete 2 stored result(s) ({total} bytes) and 2 IBM job(s); skipped 2" in dry

    done = ok("--results", "--ibm")

    assert on_ibm(held) == everything - {old_a.job_id, old_b.job_id}
    assert [stored(job).exists() for job in (old_a, old_b, live, young)] == [False, False, True, True]
    assert f"Deleted 2 stored result(s) ({total} bytes freed) and 2 IBM job(s); skipped 2" in done

    again = ok("--results", "--ibm")

    assert "Deleted 0 stored result(s) (0 bytes freed) and 0 IBM job(s); skipped 2" in again
    with pytest.raises(JobResultExpired, match=old_a.job_id):
        fetch([old_a])
    assert queued.job_id in on_ibm(held)


def test_cleanup_of_one_flow_runs_results_leaves_its_ibm_jobs_and_other_runs(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    run_a, (mine,) = submit(bell_isa, 1)
    _run_b, (other,) = submit(bell_isa, 1)
    wait_done(held, [mine.job_id, other.job_id])
    first = fetch([mine, other])
    for job in (mine, other):
        held.age(job.job_id, OLD)

    said = ok("--results", "--flow-run", run_a, "--older-than", "7d")

    assert not stored(mine).exists()
    assert stored(other).exists()
    assert {mine.job_id, other.job_id} <= on_ibm(held), "--results alone leaves IBM's jobs"
    assert re.search(rf"^{mine.job_id}  deleted: stored result \(\d+ bytes\)$", said, re.M)
    assert other.job_id not in said
    # IBM still has it: a later fetch gets it again (and stores it again).
    assert fetch([mine]) == first[:1]


def test_cleanup_run_twice_at_once_counts_each_deletion_once(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    from prefect_qiskit_jobs.cleanup import apply_cleanup, plan_cleanup

    _run, (job,) = submit(bell_isa, 1)
    wait_done(held, [job.job_id])
    fetch([job])
    held.age(job.job_id, OLD)

    async def two_at_once() -> tuple[object, object]:
        # Both plan before either deletes, as two processes started together would.
        first, second = [await plan_cleanup(older_than="30d", results=True, ibm=True) for _ in "ab"]
        return await apply_cleanup(first), await apply_cleanup(second)

    one, two = asyncio.run(two_at_once())

    assert (one.results_deleted, one.jobs_deleted) == (1, 1)  # type: ignore[attr-defined]
    assert (two.results_deleted, two.jobs_deleted, two.bytes_freed) == (0, 0, 0)  # type: ignore[attr-defined]
    assert job.job_id not in on_ibm(held)


def test_two_cleanup_processes_started_together_delete_and_count_each_job_once(
    held: RunningEmulator, bell_isa: QuantumCircuit, prefect_api: dict[str, str]
) -> None:
    _run, jobs = submit(bell_isa, 3)
    wait_done(held, [job.job_id for job in jobs])
    fetch(jobs)
    for job in jobs:
        held.age(job.job_id, OLD)
    command = [sys.executable, "-m", "prefect_qiskit_jobs", "cleanup", "--results", "--ibm", "--json"]
    env = {**os.environ, **prefect_api}

    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in "ab"]
    reports = [json.loads(child.communicate(timeout=240)[0]) for child in children]

    assert [child.returncode for child in children] == [0, 0]
    assert sum(report["results_deleted"] for report in reports) == 3
    assert sum(report["jobs_deleted"] for report in reports) == 3
    assert not {job.job_id for job in jobs} & on_ibm(held)
    assert not any(stored(job).exists() for job in jobs)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give --results, --ibm or both"),
        (["--results", "--older-than", "a month"], "is not a span"),
        (["--ibm", "--flow-run", "run-1"], "is not a Prefect id"),
        (["--ibm", "--deployment", "x"], "is not a Prefect id"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(held: RunningEmulator, args: list[str], says: str) -> None:
    result = cleanup(*args)

    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert says in result.output


def test_json_reports_the_counts(held: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    _run, (job,) = submit(bell_isa, 1)
    wait_done(held, [job.job_id])
    held.age(job.job_id, OLD)

    report = json.loads(ok("--ibm", "--json"))

    assert report["jobs_deleted"] == 1
    assert report["results_deleted"] == 0
    assert report["bytes_freed"] == 0
    assert [row["job_id"] for row in report["deleted"]] == [job.job_id]
    assert job.job_id not in on_ibm(held)
