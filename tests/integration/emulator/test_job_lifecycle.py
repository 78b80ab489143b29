"""A job's life as the client sees it: queued, running, done, read back from another process, cancelled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError
from qiskit_ibm_runtime.runtime_job_v2 import RuntimeJobV2

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for


def first_status_after_queued(
    job: RuntimeJobV2, timeout: float = 60, statuses_passed: tuple[str, ...] = ("QUEUED",)
) -> str:
    """The first status the client reports once the job leaves the queue (or ``statuses_passed``)."""
    deadline = time.monotonic() + timeout
    while (status := job.status()) in statuses_passed:
        assert time.monotonic() < deadline, f"the job never left {statuses_passed}"
        time.sleep(0.1)
    return str(status)


def test_bell_sampler_job_goes_queued_running_completed(slow: RunningEmulator) -> None:
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=2000)

    assert job.status() == "QUEUED"
    assert slow.job(job.job_id())["status"] == "Queued"
    slow.release(job.job_id())
    assert first_status_after_queued(job) == "RUNNING"
    result = job.result()

    assert job.status() == "DONE"
    assert slow.job(job.job_id())["status"] == "Completed"
    counts = result[0].data.meas.get_counts()
    assert sum(counts.values()) == 2000
    assert counts.get("00", 0) + counts.get("11", 0) >= 0.85 * 2000
    spans = result.metadata["execution"]["execution_spans"]
    assert sum(span.size for span in spans) == 2000


def test_estimator_gives_zz_of_a_bell_state_with_a_standard_error(service: QiskitRuntimeService) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)

    result = EstimatorV2(mode=backend).run([(circuit, observable)]).result()

    value, error = float(result[0].data.evs), float(result[0].data.stds)
    assert 0.8 < value <= 1.0
    assert 0 < error < 0.1


RETRIEVE_SCRIPT = """
import json, sys
from qiskit_ibm_runtime import QiskitRuntimeService
job = QiskitRuntimeService().job(sys.argv[1])
counts = job.result()[0].data.meas.get_counts()
print(json.dumps({"status": str(job.status()), "backend": job.backend().name, "counts": counts}))
"""


def test_another_process_retrieves_the_job_and_reads_the_same_counts(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=500)
    counts = job.result()[0].data.meas.get_counts()

    completed = subprocess.run(
        [sys.executable, "-c", RETRIEVE_SCRIPT, job.job_id()],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    seen = json.loads(completed.stdout.strip().splitlines()[-1])
    assert seen == {"status": "DONE", "backend": SMALL_BACKEND, "counts": counts}
    assert emulator.stats()["jobs"][job.job_id()]["GET /jobs/{job_id}/results"] == 2


def test_cancelling_a_queued_job_ends_it_cancelled(held: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    assert job.status() == "QUEUED"

    job.cancel()

    assert held.job(job.job_id())["status"] == "Cancelled"
    assert held.stats()["cancels"] == {job.job_id(): 1}
    assert service.job(job.job_id()).status() == "CANCELLED"
    with pytest.raises(RuntimeInvalidStateError, match="cancelled"):
        job.result()
    held.release()
    assert held.job(job.job_id())["status"] == "Cancelled"


def test_cancelling_a_running_job_drops_its_result(slow: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    slow.release(job.job_id())
    assert first_status_after_queued(job) == "RUNNING"

    job.cancel()  # accepted at once; as on IBM, the job takes a while (the cancel latency) to stop
    fresh = service.job(job.job_id())  # the cancelled handle says CANCELLED already; IBM does not
    assert first_status_after_queued(fresh, statuses_passed=("QUEUED", "RUNNING")) == "CANCELLED"

    assert service.job(job.job_id()).status() == "CANCELLED"
    assert slow.job(job.job_id())["status"] == "Cancelled"


def test_cancelling_a_finished_job_raises_invalid_state(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    job.result()

    with pytest.raises(RuntimeInvalidStateError):
        job.cancel()

    assert emulator.job(job.job_id())["status"] == "Completed"
    assert service.job(job.job_id()).status() == "DONE"
