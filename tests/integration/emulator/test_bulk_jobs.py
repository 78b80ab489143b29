"""Queued jobs made in bulk by the admin route (as the scale benchmark does) are real jobs to the client."""

from __future__ import annotations

import urllib.error

import pytest
from qiskit_ibm_runtime import QiskitRuntimeService

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND


def test_bulk_jobs_are_queued_listed_by_tag_and_cancelled(held: RunningEmulator) -> None:
    ids = held.create_jobs(5, SMALL_BACKEND, tags=["bulk:a"])

    assert len(set(ids)) == 5
    assert [job["id"] for job in held.jobs()] == ids  # queued in the order answered
    assert {job["status"] for job in held.jobs()} == {"Queued"}
    service = QiskitRuntimeService()
    listed = service.jobs(job_tags=["bulk:a"], pending=True, limit=10)
    assert sorted(job.job_id() for job in listed) == sorted(ids)
    service.job(ids[0]).cancel()
    assert held.job(ids[0])["status"] == "Cancelled"


def test_bulk_jobs_need_a_known_backend_and_a_sane_count(held: RunningEmulator) -> None:
    for body in ({"count": 2, "backend": "ibm_nowhere"}, {"count": 0, "backend": SMALL_BACKEND}, {}):
        with pytest.raises(urllib.error.HTTPError) as raised:
            held.admin("POST", "/jobs", body)
        assert raised.value.code == 400
    assert held.jobs() == []
