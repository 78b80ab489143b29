"""How a session's state follows its jobs and its clock, so that ``Session.status()`` tells the truth.

IBM reports a session ``open`` until its first job starts, ``active`` from then on, and ``closed``
once it was cancelled, or was told to accept no more jobs and none of its jobs is still pending
(closing lets queued jobs finish). Usage is the span from the first start to the last completion
for a dedicated session, and the sum of its jobs' quantum seconds for a batch.

Lifetimes, as IBM documents them: once its maximum TTL has passed the session is terminated,
jobs already running run on and jobs still queued in it fail. The clock starts when the session
is created (the harsher reading: a session whose jobs never start still ends). A dedicated
session with no job queued or running for its interactive TTL since its last job ended is
deactivated (``inactive``) until its next job starts; its jobs do not fail for that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .store import utcnow

if TYPE_CHECKING:
    from .store import JobRecord, JobStore, SessionRecord

# The reason code of a job failed because its session ended (the emulator's own choice, as for
# the other session errors).
SESSION_ENDED_CODE = 1217


def ended_reason(session: SessionRecord) -> str:
    """Why a queued job of a session past its maximum TTL failed: the session, and what ended it."""
    return (
        f"The job's session {session.id} ended before the job ran: "
        f"the session's maximum TTL of {session.max_ttl} s was reached"
    )


def tick(store: JobStore, fail_queued: Callable[[str, str], None], now: datetime) -> float | None:
    """End the sessions past their maximum TTL and deactivate idle dedicated ones.

    ``fail_queued(job_id, reason)`` fails one queued job. Returns the seconds until the next
    session reaches one of those moments, or None when no open session will.
    """
    next_due: float | None = None
    for session in list(store.sessions.values()):
        if session.state == "closed":
            continue
        ends = session.created + timedelta(seconds=session.max_ttl)
        if ends <= now:
            _end(store, session, fail_queued)
            continue
        due = (ends - now).total_seconds()
        idle_since = session.last_job_completed
        if (
            session.interactive_ttl
            and session.state == "active"
            and idle_since is not None
            and _idle(store, session)
        ):
            idle_ends = idle_since + timedelta(seconds=session.interactive_ttl)
            if idle_ends <= now:
                store.update_session(
                    session.id, state="inactive", transitions=[*session.transitions, ("inactive", now)]
                )
            else:
                due = min(due, (idle_ends - now).total_seconds())
        next_due = due if next_due is None else min(next_due, due)
    return next_due


def _idle(store: JobStore, session: SessionRecord) -> bool:
    return not any(j.session_id == session.id and not j.is_final for j in store.jobs.values())


def _end(store: JobStore, session: SessionRecord, fail_queued: Callable[[str, str], None]) -> None:
    """The maximum TTL passed: the session closes, its queued jobs fail, its running ones run on."""
    close(store, session.id)
    reason = ended_reason(session)
    for job in list(store.jobs.values()):
        if job.session_id == session.id and job.status == "Queued":
            fail_queued(job.id, reason)


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
