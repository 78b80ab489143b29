"""Sessions and batches through the client's context managers: their jobs, details, close and cancel."""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime import Batch, QiskitRuntimeService, SamplerV2, Session
from qiskit_ibm_runtime.exceptions import IBMRuntimeError

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for


@pytest.mark.parametrize(("mode_class", "mode"), [(Session, "dedicated"), (Batch, "batch")])
def test_jobs_in_a_context_manager_carry_its_id_and_it_closes_on_exit(
    emulator: RunningEmulator, service: QiskitRuntimeService, mode_class: type[Session], mode: str
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)

    with mode_class(backend=backend, max_time=600) as session:
        sampler = SamplerV2(mode=session)
        jobs = [sampler.run([circuit], shots=50) for _ in range(2)]
        for job in jobs:
            job.result()
        details = session.details()

    assert session.session_id
    assert {job.session_id for job in jobs} == {session.session_id}
    assert {emulator.job(job.job_id())["session_id"] for job in jobs} == {session.session_id}
    assert details is not None
    assert details["id"] == session.session_id
    assert details["backend_name"] == SMALL_BACKEND
    assert details["mode"] == mode
    assert details["max_time"] == 600
    assert details["accepting_jobs"] is True
    assert details["state"] == "active"
    assert details["last_job_started"]
    assert details["last_job_completed"]
    closed = session.details()
    assert closed is not None
    assert closed["accepting_jobs"] is False
    assert closed["state"] == "closed"
    assert closed["closed_at"]
    assert session.status() == "Closed"
    listed = service.jobs(limit=None, session_id=session.session_id)
    assert sorted(job.job_id() for job in listed) == sorted(job.job_id() for job in jobs)
    assert emulator.stats()["routes"]["PATCH /sessions/{session_id}"] == 1


def test_a_new_session_is_pending_until_its_first_job_runs(held: RunningEmulator) -> None:
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)
    session = Session(backend=backend)
    assert session.status() == "Pending"

    job = SamplerV2(mode=session).run([bell_for(backend)], shots=20)
    assert session.status() == "Pending"
    held.release(job.job_id())
    job.result()

    assert session.status() == "In progress, accepting new jobs"
    session.cancel()


def test_closing_a_session_lets_its_queued_jobs_finish_and_refuses_new_ones(held: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)
    session = Session(backend=backend)
    job = SamplerV2(mode=session).run([circuit], shots=20)

    session.close()

    details = session.details()
    assert details is not None
    assert details["accepting_jobs"] is False
    assert details["state"] != "closed"
    reopened = Session.from_id(session.session_id, service)  # the service still says "not closed"
    with pytest.raises(IBMRuntimeError, match="accepts no jobs"):
        SamplerV2(mode=reopened).run([circuit], shots=20)
    assert [j["id"] for j in held.jobs()] == [job.job_id()]
    held.release(job.job_id())
    assert job.result()[0].data.meas.num_shots == 20
    assert session.status() == "Closed"


def test_cancelling_a_session_cancels_its_pending_jobs(held: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)
    outside = SamplerV2(mode=backend).run([circuit], shots=20)
    batch = Batch(backend=backend)
    sampler = SamplerV2(mode=batch)
    inside = [sampler.run([circuit], shots=20) for _ in range(3)]

    batch.cancel()

    for job in inside:
        record = held.job(job.job_id())
        assert record["status"] == "Cancelled"
        assert "session" in record["reason"]
        assert service.job(job.job_id()).status() == "CANCELLED"
    assert held.job(outside.job_id())["status"] == "Queued"
    details = batch.details()
    assert details is not None
    assert details["state"] == "closed"
    assert details["accepting_jobs"] is False
    assert held.stats()["routes"]["DELETE /sessions/{session_id}/close"] == 1
