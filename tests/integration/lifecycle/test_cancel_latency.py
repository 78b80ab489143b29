"""IBM takes seconds to stop a running job: with a cancel latency the emulator does too.

A Queued job is Cancelled at once; a Running one stays Running after its cancel is accepted, then
ends Cancelled. Meanwhile a later layer lists it Running: the tag the first layer put on it (through
the client's ``PUT /jobs/{id}/tags``) tells it to confirm, not to cancel again.
"""

from __future__ import annotations

import time
import uuid

from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, Primitive, resolve_credentials
from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.ibm.gateway import CancelOutcome, gateway_for
from prefect_qiskit_jobs.ibm.tags import CANCEL_REQUESTED_TAG, PACKAGE_TAG, flow_run_tag

from .conftest import OPTIONS, SMALL_BACKEND

CANCEL_LATENCY = 8.0


def test_a_running_job_stays_running_until_the_cancel_takes_effect(
    make_emulator: object, bell_isa: QuantumCircuit
) -> None:
    emulator = make_emulator(min_run_seconds=120, cancel_latency=CANCEL_LATENCY)  # type: ignore[operator]
    gateway = gateway_for(resolve_credentials(None))
    running = gateway.submit(Primitive.SAMPLER, [bell_isa], SMALL_BACKEND, OPTIONS, []).job_id
    deadline = time.monotonic() + 60
    while gateway.read(running).status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    queued = gateway.submit(Primitive.SAMPLER, [bell_isa], SMALL_BACKEND, OPTIONS, []).job_id

    assert gateway.cancel(queued) is CancelOutcome.CANCELLED
    assert emulator.job(queued)["status"] == "Cancelled"  # a queued job goes at once
    assert gateway.cancel(running) is CancelOutcome.CANCELLED
    assert emulator.job(running)["status"] == "Running"  # accepted, not yet carried out

    while (final := gateway.read(running)).status is JobStatus.RUNNING:
        assert time.monotonic() < deadline + CANCEL_LATENCY, "the cancel never took effect"
        time.sleep(0.2)

    assert final.status is JobStatus.CANCELLED
    assert emulator.stats()["cancels"] == {queued: 1, running: 1}


def test_a_cancel_ibm_accepted_is_marked_on_the_job_and_a_later_layer_only_confirms_it(
    make_emulator: object, bell_isa: QuantumCircuit
) -> None:
    emulator = make_emulator(min_run_seconds=120, cancel_latency=CANCEL_LATENCY)  # type: ignore[operator]
    gateway = gateway_for(resolve_credentials(None))
    tags = [PACKAGE_TAG, flow_run_tag(uuid.uuid4()), "experiment-7"]
    job_id = gateway.submit(Primitive.SAMPLER, [bell_isa], SMALL_BACKEND, OPTIONS, tags).job_id
    deadline = time.monotonic() + 60
    while gateway.read(job_id).status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)

    (sent,) = cancel_jobs(gateway, [gateway.read(job_id)], Layer.SENSOR, [].append, sleep=lambda _: None)
    # What a layer of another process lists next: the job still Running, marked, its tags kept.
    (listed,) = gateway.list_jobs(tags=[tags[1]], pending=True)
    lines: list[str] = []
    (confirmed,) = cancel_jobs(gateway, [listed], Layer.HOOK, lines.append, sleep=lambda _: None)

    assert sent.sent
    assert emulator.job(job_id)["tags"] == [*tags, CANCEL_REQUESTED_TAG]
    assert listed.status is JobStatus.RUNNING
    assert (confirmed.sent, confirmed.requested_earlier) == (False, True)
    assert lines[0].startswith(f"job {job_id}: cancel accepted earlier, confirmed (nothing sent) by the")
    assert emulator.stats()["cancels"] == {job_id: 1}
