"""IBM takes seconds to stop a running job: with a cancel latency the emulator does too.

A Queued job is Cancelled at once; a Running one stays Running after its cancel is accepted, then
ends Cancelled.
"""

from __future__ import annotations

import time

from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, Primitive, resolve_credentials
from prefect_qiskit_jobs.ibm.gateway import CancelOutcome, gateway_for

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
