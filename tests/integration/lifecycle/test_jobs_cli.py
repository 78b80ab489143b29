"""``prefect-qiskit-jobs jobs``: list, show, cancel and result, run in-process against the emulator.

The jobs are made by the package's submit tasks inside real flows on the session's Prefect API,
and the command talks to the emulator through the real client, as it would to IBM. What it sends
is counted at the emulator.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from prefect import flow
from qiskit import QuantumCircuit
from typer.testing import CliRunner, Result

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    JobRef,
    JobSnapshot,
    fetch_job_result,
    submit_sampler_job,
    wait_for_jobs,
)
from prefect_qiskit_jobs.cli import app
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.emulator.config import DEFAULT_API_KEY

from .conftest import CLIENT_VARIABLES, FAST_POLL, OPTIONS, SHOTS, SMALL_BACKEND, current_flow_run_id

RESULTS_ROUTE = "GET /jobs/{job_id}/results"


def jobs(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``prefect-qiskit-jobs jobs ARGS``, in this process; never leaks the API key."""
    result = CliRunner().invoke(app, ["jobs", *args], env=env)
    assert DEFAULT_API_KEY not in result.output
    assert "Traceback" not in result.output
    return result


def ok(*args: str) -> str:
    result = jobs(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def listed(*args: str) -> list[str]:
    return [row["job_id"] for row in json.loads(ok("list", "--json", *args))]


@flow
def submit(bell: QuantumCircuit, count: int) -> tuple[str, list[JobRef]]:
    refs = [submit_sampler_job([bell], backend=SMALL_BACKEND, options=OPTIONS) for _ in range(count)]
    return current_flow_run_id(), refs


@flow
def submit_wait_fetch(bell: QuantumCircuit, fetch: bool) -> tuple[str, JobRef, JobSnapshot]:
    ref = submit_sampler_job([bell], backend=SMALL_BACKEND, options=OPTIONS)
    [final] = wait_for_jobs([ref], poll=FAST_POLL)
    if fetch:
        fetch_job_result(ref)
    return current_flow_run_id(), ref, final


def wait_done(emulator: RunningEmulator, job_ids: list[str]) -> None:
    for job_id in job_ids:
        emulator.release(job_id)
    # The emulator's own record, not the command's, says when the released jobs have ended.
    for _ in range(1200):
        if all(emulator.job(job_id)["status"] == "Completed" for job_id in job_ids):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs {job_ids} did not complete")


def test_list_filters_by_flow_run_state_backend_and_time(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    run_a, (done, queued_a) = submit(bell_isa, 2)
    run_b, (queued_b,) = submit(bell_isa, 1)
    wait_done(held, [done.job_id])

    assert sorted(listed("--flow-run", run_a)) == sorted([done.job_id, queued_a.job_id])
    assert listed("--flow-run", run_b) == [queued_b.job_id]
    assert listed("--flow-run", run_a, "--state", "queued") == [queued_a.job_id]
    assert listed("--state", "DONE") == [done.job_id]
    assert listed("--state", "QUEUED") == [queued_b.job_id, queued_a.job_id]  # newest first
    assert sorted(listed("--state", "DONE", "--state", "QUEUED")) == sorted(
        [done.job_id, queued_a.job_id, queued_b.job_id]
    )
    assert listed("--state", "cancelled") == []
    assert len(listed("--backend", SMALL_BACKEND, "--since", "1h")) == 3
    assert listed("--backend", "ibm_no_such_backend") == []
    assert listed("--since", "2999-01-01T00:00:00+00:00") == []
    assert listed("--limit", "1") == [queued_b.job_id]
    rows = {row["job_id"]: row for row in json.loads(ok("list", "--json"))}
    assert rows[done.job_id]["status"] == "DONE"
    assert rows[done.job_id]["flow_run_id"] == run_a
    assert rows[queued_b.job_id]["flow_run_id"] == run_b

    table = ok("list", "--state", "queued")
    print(table)
    assert "IBM Quantum Jobs" in table
    assert queued_a.job_id in table
    assert queued_b.job_id in table
    assert done.job_id not in table
    assert run_b in table


def test_show_prints_status_queue_position_qpu_seconds_and_where_the_result_is(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    run_id, ref, final = submit_wait_fetch(bell_isa, fetch=True)
    assert final.quantum_seconds, "the wait's own reading: the emulator reports QPU time for a done job"

    shown = ok("show", ref.job_id)

    print(shown)
    assert re.search(r"status\s+DONE$", shown, re.M)
    assert re.search(rf"QPU seconds\s+{re.escape(f'{final.quantum_seconds:g}')}$", shown, re.M)
    assert re.search(rf"backend\s+{SMALL_BACKEND}$", shown, re.M)
    assert re.search(rf"flow run\s+{run_id}$", shown, re.M)
    assert re.search(rf"result\s+stored under qiskit-result-{ref.job_id} in ", shown, re.M)
    row = json.loads(ok("show", ref.job_id, "--json"))
    assert row["quantum_seconds"] == final.quantum_seconds
    assert row["result_stored"] is True


def test_show_of_a_queued_job_gives_its_place_in_the_queue(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    _run, (first, second) = submit(bell_isa, 2)

    shown = ok("show", second.job_id)

    position = held.job(second.job_id)["position_in_queue"]
    assert position == 2, "the emulator's queue: the second job waits behind the first"
    assert re.search(rf"status\s+QUEUED \(position {position}\)$", shown, re.M)
    assert re.search(rf"queue position\s+{position}$", shown, re.M)
    assert re.search(r"QPU seconds\s+-$", shown, re.M) or re.search(r"QPU seconds\s+0$", shown, re.M)
    assert re.search(r"result\s+not in result storage", shown, re.M)
    assert first.job_id not in shown


def test_cancel_sends_one_request_per_job_and_then_reports_them_already_final(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    _run, (first, second) = submit(bell_isa, 2)
    held.reset()  # counters only

    said = ok("cancel", first.job_id, second.job_id)

    assert held.stats()["cancels"] == {first.job_id: 1, second.job_id: 1}
    assert {held.job(job.job_id)["status"] for job in (first, second)} == {"Cancelled"}
    assert re.search(rf"^{first.job_id}  cancel sent \(now CANCELLED\)$", said, re.M)
    assert re.search(rf"^{second.job_id}  cancel sent \(now CANCELLED\)$", said, re.M)
    assert "Cancelled 2 job(s); 0 already final" in said

    again = ok("cancel", first.job_id, second.job_id)

    assert held.stats()["cancels"] == {first.job_id: 1, second.job_id: 1}
    assert re.search(rf"^{first.job_id}  already final \(CANCELLED\): nothing sent$", again, re.M)
    assert re.search(rf"^{second.job_id}  already final \(CANCELLED\): nothing sent$", again, re.M)
    assert "Cancelled 0 job(s); 2 already final" in again


def test_cancel_by_flow_run_cancels_its_pending_jobs_and_reports_the_ended_one(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    run_id, (done, pending) = submit(bell_isa, 2)
    _other_run, (other,) = submit(bell_isa, 1)
    wait_done(held, [done.job_id])
    held.reset()

    said = ok("cancel", "--flow-run", run_id)

    assert held.stats()["cancels"] == {pending.job_id: 1}
    assert held.job(other.job_id)["status"] == "Queued"
    assert f"{done.job_id}  already final (DONE): nothing sent" in said
    assert f"{pending.job_id}  cancel sent" in said
    assert "Cancelled 1 job(s); 1 already final" in said


def test_result_reads_result_storage_first_and_ibm_only_for_a_job_never_fetched(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    _run, stored, _final = submit_wait_fetch(bell_isa, fetch=True)
    _run, unstored, _final = submit_wait_fetch(bell_isa, fetch=False)
    emulator.reset()  # counters only

    from_storage = ok("result", stored.job_id)

    assert emulator.stats()["routes"].get(RESULTS_ROUTE, 0) == 0, "a stored result is read, not fetched"
    assert f"from result storage: qiskit-result-{stored.job_id}" in from_storage
    assert re.search(r"^  00\s+\d+$", from_storage, re.M)
    assert re.search(r"^  11\s+\d+$", from_storage, re.M)

    from_ibm = ok("result", unstored.job_id)

    assert emulator.stats()["routes"].get(RESULTS_ROUTE, 0) == 1
    assert "from IBM Quantum Platform" in from_ibm
    print(from_ibm)
    payload = json.loads(ok("result", unstored.job_id, "--json"))
    counts = payload["pubs"][0]["counts"]["meas"]
    assert payload["source"] == "ibm"
    assert sum(counts.values()) == SHOTS
    assert counts["00"] > 0
    assert counts["11"] > 0
    assert counts.get("00", 0) + counts.get("11", 0) >= 0.85 * SHOTS


def test_result_of_a_queued_job_says_it_has_none_yet(held: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    _run, (queued,) = submit(bell_isa, 1)

    result = jobs("result", queued.job_id)

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: Job {queued.job_id} has no result yet: it is QUEUED; wait for it first"
    ]


WELL_FORMED_UNKNOWN = "d0000000000000000000"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "not a job!"], "is not an IBM Quantum job id"),
        (["cancel", "short"], "is not an IBM Quantum job id"),
        (["result", "x/../y"], "is not an IBM Quantum job id"),
        (["show", WELL_FORMED_UNKNOWN], f"No job {WELL_FORMED_UNKNOWN} on this instance"),
        (["cancel", WELL_FORMED_UNKNOWN], f"No job {WELL_FORMED_UNKNOWN} on this instance"),
        (["result", WELL_FORMED_UNKNOWN], f"No job {WELL_FORMED_UNKNOWN} on this instance"),
        (["list", "--flow-run", "run-1"], "is not a Prefect id"),
        (["list", "--state", "FINISHED"], "is not a job status"),
        (["list", "--since", "yesterday"], "is neither a span"),
        (["cancel"], "give job ids or --flow-run ID"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    emulator: RunningEmulator, args: list[str], says: str
) -> None:
    result = jobs(*args)

    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert says in result.output


@pytest.mark.parametrize(
    "command", [["list"], ["show", WELL_FORMED_UNKNOWN], ["cancel", WELL_FORMED_UNKNOWN]]
)
def test_missing_credentials_are_one_line_and_exit_status_2(
    emulator: RunningEmulator, command: list[str]
) -> None:
    unset: dict[str, str | None] = dict.fromkeys(CLIENT_VARIABLES, None)
    emulator.reset()

    without = jobs(*command, env=unset)
    unsaved = jobs(*command, "--credentials", f"no-such-block-{uuid.uuid4().hex[:8]}")

    for result, says in (
        (without, "No IBM Quantum credentials"),
        (unsaved, "No IBM Quantum Credentials block"),
    ):
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert says in result.output
    assert not [route for route in emulator.stats()["routes"] if "/jobs" in route], "nothing was sent"


def test_a_saved_block_by_name_is_used(emulator: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    IBMQuantumCredentials.for_emulator(emulator).save("jobs-cli-block", overwrite=True)
    _run, ref, _final = submit_wait_fetch(bell_isa, fetch=False)
    unset: dict[str, str | None] = dict.fromkeys(CLIENT_VARIABLES, None)

    result = jobs("show", ref.job_id, "--credentials", "jobs-cli-block", env=unset)

    assert result.exit_code == 0, result.output
    assert re.search(r"status\s+DONE$", result.output, re.M)
