"""Injected faults on reads are absorbed by the client's own retries, and the emulator counts them.

The client retries GETs answered 429 with ``Retry-After``, 5xx answers and dropped connections
(urllib3, five times). The held emulator keeps the job Queued until released, so the reads made
while it waits are a fixed sequence, and the fault draws, reseeded when the rules are set, fall
the same way on every run.
"""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import IBMRuntimeError

from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator

from .conftest import SMALL_BACKEND, bell_for

READS_WHILE_QUEUED = 8


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "drop"])
def test_reads_absorb_faults(held: RunningEmulator, kind: str) -> None:
    held.set_faults(FaultRule(route="GET /jobs/*", **{kind: 0.3}), seed=0)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=300)

    statuses = {str(job.status()) for _ in range(READS_WHILE_QUEUED)}
    held.release(job.job_id())
    counts = job.result()[0].data.meas.get_counts()

    assert statuses == {"QUEUED"}
    assert sum(counts.values()) == 300
    assert service.job(job.job_id()).status() == "DONE"
    stats = held.stats()
    faults = stats["faults"]
    assert faults["GET /jobs/{job_id}"][kind] >= 1
    assert set(faults) <= {"GET /jobs/{job_id}", "GET /jobs/{job_id}/results"}
    assert {k for route in faults.values() for k in route} == {kind}
    # every fault cost one extra request: the client retried rather than gave up
    reads = stats["jobs"][job.job_id()]
    injected = sum(sum(route.values()) for route in faults.values())
    assert sum(reads.values()) >= READS_WHILE_QUEUED + 1 + injected
    assert [j["status"] for j in held.jobs()] == ["Completed"]


def test_reset_restores_the_configured_faults(held: RunningEmulator) -> None:
    held.set_faults(FaultRule(route="GET /backends*", server_error=1.0))
    held.reset()

    backend = QiskitRuntimeService().backend(SMALL_BACKEND)

    assert backend.status().operational
    assert held.stats()["faults"] == {}


def test_rate_limit_without_retry_after_is_not_retried(emulator: RunningEmulator) -> None:
    """Without ``Retry-After`` the client does not retry a 429: the error reaches the caller."""
    emulator.set_faults(FaultRule(route="GET /jobs/*/metrics", rate_limit_no_header=1.0))
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    job.result()

    with pytest.raises(IBMRuntimeError, match="429"):
        job.metrics()

    stats = emulator.stats()
    assert stats["faults"] == {"GET /jobs/{job_id}/metrics": {"rate_limit_no_header": 1}}
    assert stats["jobs"][job.job_id()]["GET /jobs/{job_id}/metrics"] == 1
