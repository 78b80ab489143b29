"""Submit returns at once, the wait follows the job to its end, the result is fetched once and kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    JobRef,
    JobStatus,
    Primitive,
    await_for_job,
    fetch_job_result,
    fetch_job_results,
    read_job_result,
    submit_sampler_job,
    wait_for_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import gateway_for
from tests.conftest import EmulatorFactory

from .conftest import (
    FAST_POLL,
    OPTIONS,
    SECOND_API_KEY,
    SMALL_BACKEND,
    assert_bell,
    counts_of,
    current_flow_run_id,
)


async def test_submit_returns_a_plain_json_reference_while_the_job_is_still_queued(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def bell_flow() -> dict[str, Any]:
        future = submit_sampler_job.submit([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        job = future.result()
        status_at_return = held.job(job.job_id)["status"]
        held.release(job.job_id)
        final = await await_for_job(job, poll=FAST_POLL)
        result = fetch_job_result(job)
        return {
            "job": job,
            "status_at_return": status_at_return,
            "flow_run_id": current_flow_run_id(),
            "task_run_id": str(future.task_run_id),
            "final": final,
            "counts": counts_of(result),
        }

    out = await bell_flow()
    job: JobRef = out["job"]

    assert out["status_at_return"] == "Queued"
    assert json.loads(job.model_dump_json())["job_id"] == job.job_id
    assert JobRef.model_validate_json(job.model_dump_json()) == job
    assert (job.backend, job.primitive, job.instance) == (
        SMALL_BACKEND,
        Primitive.SAMPLER,
        held.config.instance_crn,
    )
    run_tags = {f"prefect-flow-run:{out['flow_run_id']}", f"prefect-task-run:{out['task_run_id']}"}
    assert run_tags <= set(job.tags)
    assert run_tags <= set(held.job(job.job_id)["tags"])
    assert out["final"].status is JobStatus.DONE
    assert out["final"].job_id == job.job_id
    assert_bell(out["counts"])


READ_ELSEWHERE = """
import json, sys
from prefect import flow
from prefect.context import FlowRunContext
import prefect_qiskit_jobs
from prefect_qiskit_jobs import fetch_job_result

@flow
def read_elsewhere(job_id: str) -> dict:
    state = fetch_job_result(job_id, return_state=True)
    counts = state.result()[0].data.meas.get_counts()
    return {"counts": counts, "state": state.name, "flow_run_id": str(FlowRunContext.get().flow_run.id)}

print("RESULT " + json.dumps(read_elsewhere(sys.argv[1])))
"""


def test_a_result_is_fetched_from_ibm_once_and_then_read_from_storage_anywhere(
    emulator: RunningEmulator, bell_isa: QuantumCircuit, prefect_api: dict[str, str]
) -> None:
    @flow
    def fetch_twice() -> dict[str, Any]:
        job = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        final = wait_for_job.submit(job, poll=FAST_POLL).result()
        first = fetch_job_result(job)
        before = emulator.stats()
        second = fetch_job_result(job, return_state=True)
        after = emulator.stats()
        # The batch fetch in one task run: the stored result from storage, the other from IBM,
        # stored as fetch_job_result stores it, so that task then finds it cached.
        other = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        wait_for_job(other, poll=FAST_POLL)
        batch_before = emulator.stats()
        batch = fetch_job_results([job, other])
        batch_after = emulator.stats()
        again = fetch_job_result(other, return_state=True)
        return {
            "batch": [counts_of(result) for result in batch],
            "batch_reads": _results_read(batch_before, batch_after),
            "again": counts_of(again.result()),
            "again_state": again.name,
            "again_reads": _results_read(batch_after, emulator.stats()),
            "job": job,
            "final": final,
            "first": counts_of(first),
            "second": counts_of(second.result()),
            "second_state": second.name,
            "requests_before": before["routes"],
            "requests_after": after["routes"],
            "flow_run_id": current_flow_run_id(),
        }

    out = fetch_twice()
    job_id = out["job"].job_id

    # The sync flow waited through a task submitted to a worker thread.
    assert out["final"].status is JobStatus.DONE
    assert_bell(out["first"])
    assert out["second"] == out["first"]
    assert out["second_state"] == "Cached"
    assert out["requests_after"] == out["requests_before"]
    assert out["batch"][0] == out["first"]
    assert_bell(out["batch"][1])
    assert out["batch_reads"] == 1  # only the job not stored yet
    assert (out["again_state"], out["again"], out["again_reads"]) == ("Cached", out["batch"][1], 0)

    # Another OS process, another flow run: same API, same result storage, the emulator's address.
    before = emulator.stats()["routes"]
    completed = subprocess.run(
        [sys.executable, "-c", READ_ELSEWHERE, job_id],
        env={**os.environ, **prefect_api},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(x for x in completed.stdout.splitlines() if x.startswith("RESULT "))
    elsewhere = json.loads(line.removeprefix("RESULT "))
    assert elsewhere["flow_run_id"] != out["flow_run_id"]
    assert elsewhere["state"] == "Cached"
    assert elsewhere["counts"] == out["first"]
    assert emulator.stats()["routes"] == before

    # And without Prefect's task machinery or IBM at all.
    assert counts_of(read_job_result(job_id)) == out["first"]
    assert counts_of(read_job_result(out["job"])) == out["first"]
    assert emulator.stats()["routes"] == before


def _results_read(before: dict[str, Any], after: dict[str, Any]) -> int:
    route = "GET /jobs/{job_id}/results"
    return int(after["routes"].get(route, 0) - before["routes"].get(route, 0))


def test_reading_a_result_never_fetched_says_so(emulator: RunningEmulator) -> None:
    with pytest.raises(KeyError, match="No stored result for job d0000000000000000000"):
        read_job_result("d0000000000000000000")
    assert emulator.stats()["routes"] == {}


async def test_two_instances_in_one_process_each_get_their_own_jobs_and_tokens(
    held: RunningEmulator, make_emulator: EmulatorFactory, bell_isa: QuantumCircuit
) -> None:
    # The client reads IAM's address from the environment when it is built; a client built later
    # must not get its tokens from whichever instance the environment named last. Both gateways are
    # new to this process: a new emulator, and the held one under its second API key.
    first = make_emulator()
    credentials = [
        IBMQuantumCredentials.for_emulator(first),
        IBMQuantumCredentials.for_emulator(held, api_key=SECOND_API_KEY),
    ]

    @flow
    async def on_both() -> list[dict[str, int]]:
        for c in credentials:  # as the quickstart does, to transpile for the backend
            gateway_for(c).backend(SMALL_BACKEND)
        jobs = [
            submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=c, options=OPTIONS)
            for c in credentials
        ]
        held.release()
        for job, c in zip(jobs, credentials, strict=True):
            await await_for_job(job, credentials=c, poll=FAST_POLL)
        pairs = zip(jobs, credentials, strict=True)
        return [counts_of(fetch_job_result(job, credentials=c)) for job, c in pairs]

    for counts in await on_both():
        assert_bell(counts)
    for emulator in (first, held):
        assert emulator.stats()["routes"]["POST /jobs"] == 1
        assert [job["status"] for job in emulator.jobs()] == ["Completed"]
