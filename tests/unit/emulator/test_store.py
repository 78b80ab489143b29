"""The job store: everything written through to SQLite comes back after a reopen, as it was."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect_qiskit_jobs.emulator.store import JobRecord, JobStore, SessionRecord, new_id, utcnow, wire_time


def a_job(**changes: object) -> JobRecord:
    now = utcnow()
    fields: dict[str, object] = {
        "id": new_id(),
        "backend": "ibmq_manila",
        "program_id": "sampler",
        "created": now,
        "params": '{"pubs": [], "version": 2}',
        "eligible_at": now + timedelta(seconds=5),
        "tags": ["a", "b"],
    }
    return JobRecord.model_validate({**fields, **changes})


def test_a_reopened_store_finds_jobs_results_sessions_and_secrets(tmp_path: Path) -> None:
    database = tmp_path / "iqp.db"
    store = JobStore(database)
    session = SessionRecord(id=new_id(), mode="batch", backend="ibmq_manila", created=utcnow())
    store.put_session(session)
    store.update_session(session.id, accepting_jobs=False)
    done = a_job(session_id=session.id)
    queued = a_job(max_execution_time=60, scripted_failure="boom")
    store.put_job(done)
    store.put_job(queued)
    store.update_job(done.id, status="Running", running=utcnow())
    finished = store.finish_job(done.id, "Running", status="Completed", quantum_seconds=1.25)
    store.put_result(done.id, '{"__type__": "PrimitiveResult"}')
    secret = store.secret("token-signing-key")
    store.close()

    reopened = JobStore(database)

    assert reopened.jobs == {done.id: finished, queued.id: queued}
    assert reopened.results == {done.id: '{"__type__": "PrimitiveResult"}'}
    assert reopened.sessions[session.id] == session.model_copy(update={"accepting_jobs": False})
    assert reopened.secret("token-signing-key") == secret
    assert reopened.jobs[done.id].created.tzinfo is not None
    reopened.close()


def test_deleted_and_cleared_records_stay_gone(tmp_path: Path) -> None:
    database = tmp_path / "iqp.db"
    store = JobStore(database)
    gone, kept = a_job(), a_job()
    store.put_job(gone)
    store.put_job(kept)
    store.put_result(gone.id, "{}")
    store.delete_job(gone.id)
    store.close()

    reopened = JobStore(database)
    assert list(reopened.jobs) == [kept.id]
    assert reopened.results == {}
    reopened.put_session(SessionRecord(id="s", mode="dedicated", backend=None, created=utcnow()))
    secret = reopened.secret("token-signing-key")
    reopened.clear()
    reopened.close()

    cleared = JobStore(database)
    assert (cleared.jobs, cleared.results, cleared.sessions) == ({}, {}, {})
    assert cleared.secret("token-signing-key") == secret  # clearing jobs does not log clients out
    cleared.close()


def test_finish_job_lets_the_first_writer_win() -> None:
    store = JobStore()
    job = a_job()
    store.put_job(job)

    assert store.finish_job(job.id, "Running", status="Completed") is None  # it is still Queued
    cancelled = store.finish_job(job.id, "Queued", status="Cancelled", reason="by user")
    assert cancelled is not None
    assert cancelled.finished is not None
    assert store.finish_job(job.id, "Queued", status="Completed") is None
    assert store.jobs[job.id].status == "Cancelled"
    assert store.finish_job("no-such-job", "Queued", status="Cancelled") is None


def test_secrets_without_a_database_live_as_long_as_the_store() -> None:
    first, second = JobStore(), JobStore()

    assert first.secret("k") == first.secret("k")
    assert first.secret("k") != second.secret("k")


def test_job_wire_shape() -> None:
    job = a_job(status="Cancelled", reason="ran too long", reason_code=1305, max_execution_time=30)

    wire = job.wire(include_params=False)

    assert wire["state"] == {"status": "Cancelled", "reason": "ran too long", "reason_code": 1305}
    assert wire["status"] == "Cancelled"
    assert wire["program"] == {"id": "sampler"}
    assert wire["created"] == wire_time(job.created)
    assert wire["created"].endswith("Z")
    assert wire["cost"] == 30
    assert "params" not in wire
    assert job.wire(include_params=True)["params"] == {"pubs": [], "version": 2}


def test_new_ids_look_like_ibms() -> None:
    ids = {new_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(len(i) == 20 and i.isalnum() and i.islower() for i in ids)


def test_a_private_job_loses_its_params_when_it_ends() -> None:
    store = JobStore()
    private, public = a_job(private=True, status="Running"), a_job(status="Running")
    store.put_job(private)
    store.put_job(public)

    store.finish_job(private.id, "Running", status="Completed")
    store.finish_job(public.id, "Running", status="Cancelled")

    assert store.jobs[private.id].params is None
    assert store.jobs[public.id].params == public.params
