"""How a session's state follows its jobs, so that ``Session.status()`` and ``details()`` tell the truth.

IBM reports a session ``open`` until its first job starts, ``active`` from then on, and ``closed``
once it was cancelled, or was told to accept no more jobs and none of its jobs is still pending
(closing lets queued jobs finish). Usage is the span from the first start to the last completion
for a dedicated session, and the sum of its jobs' quantum seconds for a batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .store import utcnow

if TYPE_CHECKING:
    from .store import JobRecord, JobStore


def job_started(store: JobStore, job: JobRecord) -> None:
    """A job of the session began running: the session is active."""
    session = store.sessions.get(job.session_id or "")
    if session is None:
        return
    now = job.running or utcnow()
    changes: dict[str, object] = {"last_job_started": now}
    if session.state in ("open", "inactive"):
        changes.update(
            state="active",
            activated_at=session.activated_at or now,
            transitions=[*session.transitions, ("active", now)],
        )
    store.update_session(session.id, **changes)


def job_ended(store: JobStore, job: JobRecord) -> None:
    """A job of the session reached a final state: count its usage, close the session if it is done."""
    session = store.sessions.get(job.session_id or "")
    if session is None:
        return
    if job.running is not None:
        finished = job.finished or utcnow()
        if session.mode == "batch":
            elapsed = session.elapsed_time + job.quantum_seconds
        else:
            elapsed = (finished - (session.activated_at or job.running)).total_seconds()
        store.update_session(session.id, last_job_completed=finished, elapsed_time=elapsed)
    settle(store, session.id)


def stop_accepting(store: JobStore, session_id: str) -> None:
    """The client closed the session: no new jobs; it closes once its pending jobs are done."""
    store.update_session(session_id, accepting_jobs=False)
    settle(store, session_id)


def close(store: JobStore, session_id: str) -> None:
    """The session ends now (its pending jobs were cancelled)."""
    session = store.sessions[session_id]
    if session.state == "closed":
        return
    now = utcnow()
    store.update_session(
        session_id,
        accepting_jobs=False,
        state="closed",
        closed_at=now,
        transitions=[*session.transitions, ("closed", now)],
    )


def settle(store: JobStore, session_id: str) -> None:
    """Close a session that accepts no jobs once none of its jobs is pending."""
    session = store.sessions.get(session_id)
    if session is None or session.accepting_jobs or session.state == "closed":
        return
    if not any(j.session_id == session_id and not j.is_final for j in store.jobs.values()):
        close(store, session_id)
