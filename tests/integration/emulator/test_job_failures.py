"""Jobs that end badly reach the client as the client's own errors.

A job running past ``max_execution_time`` (sent as ``cost``) ends Cancelled with reason code 1305,
which the client reports as ERROR and ``RuntimeJobMaxTimeoutError``; a job scripted to fail ends
Failed and ``result()`` raises ``RuntimeJobFailureError`` carrying the reason.
"""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError, RuntimeJobMaxTimeoutError

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SLOW_RUN_SECONDS, SMALL_BACKEND, bell_for


def test_a_job_running_past_its_max_execution_time_errors(slow: RunningEmulator) -> None:
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)
    sampler = SamplerV2(mode=backend)
    sampler.options.max_execution_time = 1
    assert sampler.options.max_execution_time < SLOW_RUN_SECONDS
    job = sampler.run([bell_for(backend)], shots=10)
    slow.release(job.job_id())

    with pytest.raises(RuntimeJobMaxTimeoutError):
        job.result()

    assert job.status() == "ERROR"
    record = slow.job(job.job_id())
    assert (record["status"], record["reason_code"]) == ("Cancelled", 1305)
    assert job.error_message()
    retrieved = QiskitRuntimeService().job(job.job_id())
    assert retrieved.status() == "ERROR"
    assert "ran longer than maximum execution time" in str(retrieved.error_message())


def test_a_job_within_its_max_execution_time_completes(emulator: RunningEmulator) -> None:
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)
    sampler = SamplerV2(mode=backend)
    sampler.options.max_execution_time = 300
    job = sampler.run([bell_for(backend)], shots=10)

    assert job.result()[0].data.meas.num_shots == 10
    assert emulator.stats()["routes"]["POST /jobs"] == 1
    assert emulator.job(job.job_id())["status"] == "Completed"


def test_a_scripted_failure_raises_job_failure_with_the_reason(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    sampler = SamplerV2(mode=backend)
    sampler.options.environment.job_tags = ["keep", "emulator:fail=calibration drifted on qubit 3"]
    job = sampler.run([bell_for(backend)], shots=10)

    with pytest.raises(RuntimeJobFailureError, match="calibration drifted on qubit 3"):
        job.result()

    assert job.status() == "ERROR"
    record = emulator.job(job.job_id())
    assert record["status"] == "Failed"
    assert record["reason"] == "calibration drifted on qubit 3"
    assert "calibration drifted on qubit 3" in str(service.job(job.job_id()).error_message())


def test_failing_a_queued_job_from_the_admin_route(held: RunningEmulator) -> None:
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    held.fail(job.job_id(), "device went offline")
    held.release(job.job_id())

    with pytest.raises(RuntimeJobFailureError, match="device went offline"):
        job.result()
