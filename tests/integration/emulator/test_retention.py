"""A service's retention: after ``result_retention`` from a job's end, IBM has the job no more.

IBM keeps job data for a retention period, not for ever; a job past it answers 404 to its status,
its result and its deletion, as a deleted one does, and is no longer listed (the harsher of the
readings IBM's documentation leaves open: the whole job goes, not its result alone). Tests age a
job through the admin route instead of waiting for it.
"""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

from .conftest import SMALL_BACKEND, EmulatorFactory, bell_for, http, iam_token, runtime_headers

RETENTION = 600.0


def test_a_job_past_its_retention_is_gone_and_a_younger_one_stays(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(result_retention="10m")
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    old, young = (SamplerV2(mode=backend).run([bell_for(backend)], shots=20) for _ in "ab")
    old.result(), young.result()

    emulator.age(old.job_id(), RETENTION + 1)
    emulator.age(young.job_id(), RETENTION - 60)

    with pytest.raises(RuntimeJobNotFound):
        service.job(old.job_id())
    headers = runtime_headers(emulator, iam_token(emulator))
    answer = http().get(f"{emulator.runtime_url}/jobs/{old.job_id()}/results", headers=headers, timeout=30)
    assert answer.status_code == 404
    with pytest.raises(RuntimeJobNotFound):
        service.delete_job(old.job_id())
    assert [job.job_id() for job in service.jobs(limit=None)] == [young.job_id()]
    assert sum(service.job(young.job_id()).result()[0].data.meas.get_counts().values()) == 20


def test_without_a_retention_an_old_job_stays(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator()
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)
    job.result()

    emulator.age(job.job_id(), 10 * 365 * 86400)

    assert sum(service.job(job.job_id()).result()[0].data.meas.get_counts().values()) == 20
