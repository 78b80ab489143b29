"""What a deferred run records for the resumer, read back the same way (pure logic, no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

from prefect.client.schemas.objects import FlowRun

from prefect_qiskit_jobs import IBMQuantumCredentials
from prefect_qiskit_jobs.cancel.reaper import run_cancels_limit
from prefect_qiskit_jobs.wait.deferral import AWAITING_LABEL, _block_name, awaited_ids, pause_key


def run_with(labels: dict[str, object]) -> FlowRun:
    return FlowRun(id=uuid4(), name="run", flow_id=uuid4(), labels=labels, created=datetime.now(timezone.utc))


def test_the_awaited_ids_read_back_in_order() -> None:
    assert awaited_ids(run_with({AWAITING_LABEL: "job-a-0001,job-b-0002"})) == ["job-a-0001", "job-b-0002"]


def test_a_run_whose_label_was_emptied_awaits_nothing() -> None:
    assert awaited_ids(run_with({AWAITING_LABEL: ""})) == []
    assert awaited_ids(run_with({})) == []


def test_the_pause_key_depends_on_the_jobs_only() -> None:
    assert pause_key(["job-a-0001", "job-b-0002"]) == pause_key(["job-b-0002", "job-a-0001"])
    assert pause_key(["job-a-0001"]) != pause_key(["job-a-0001", "job-b-0002"])


def test_only_a_saved_block_is_named_for_the_resumer() -> None:
    unsaved = IBMQuantumCredentials(token="secret-key", instance="crn:v1:x")

    assert _block_name("ibm-quantum") == "ibm-quantum"
    assert _block_name(unsaved) == ""
    assert _block_name(None) == ""


def test_the_limit_names_an_account_without_its_key() -> None:
    one = IBMQuantumCredentials(token="secret-key", instance="crn:v1:x")
    other = IBMQuantumCredentials(token="other-key", instance="crn:v1:x")

    name = run_cancels_limit(one)

    assert name.startswith("ibm-quantum-run-cancels-")
    assert "secret-key" not in name
    assert one.fingerprint()[:16] not in name  # the fingerprint is a digest of the key: not shown either
    assert name != run_cancels_limit(other)
