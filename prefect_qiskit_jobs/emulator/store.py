"""Jobs and sessions as the emulator keeps them: in memory, written through to SQLite when asked.

With a database file every change is committed at once, so a restarted emulator finds every job,
its result and its session where the last one left them.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

ApiStatus = Literal["Queued", "Running", "Completed", "Failed", "Cancelled"]
FINAL_STATUSES: frozenset[str] = frozenset({"Completed", "Failed", "Cancelled"})
_ID_ALPHABET = string.ascii_lowercase + string.digits


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def wire_time(moment: datetime | None) -> str | None:
    """A UTC timestamp as IBM's API writes it: ISO 8601 with a ``Z`` suffix."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def new_id() -> str:
    """A 20-character id in the shape IBM Quantum Platform gives jobs and sessions."""
    return "d" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(19))


class JobRecord(BaseModel):
    """One job, with everything the job routes answer and the queue model needs."""

    id: str
    backend: str
    program_id: str
    status: ApiStatus = "Queued"
    reason: str | None = None
    reason_code: int | None = None
    created: datetime
    running: datetime | None = None
    finished: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    session_id: str | None = None
    params: str | None = Field(
        description="the params object as the client sent it (RuntimeEncoder JSON); a private job's "
        "are deleted when it ends, as IBM deletes them"
    )
    max_execution_time: int | None = None
    private: bool = False
    log_level: str | None = None
    eligible_at: datetime = Field(description="when the queue model lets this job start")
    scripted_failure: str | None = None
    dry_run: bool = Field(False, description="run on a mock twin: random data, listed only with mocks")
    quantum_seconds: float = 0.0
    wire_status: str | None = Field(
        None, description="a status string the job routes answer instead of the real one (an admin override)"
    )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def wire(self, include_params: bool) -> dict[str, Any]:
        """The job as ``GET /jobs/{id}`` and ``GET /jobs`` present it; a private job hides its params."""
        status = self.wire_status or self.status
        body: dict[str, Any] = {
            "id": self.id,
            "backend": self.backend,
            "state": {"status": status, "reason": self.reason, "reason_code": self.reason_code},
            "status": status,
            "program": {"id": self.program_id},
            "created": wire_time(self.created),
            "ended": wire_time(self.finished),
            "tags": list(self.tags),
            "session_id": self.session_id,
            "private": self.private,
            "cost": self.max_execution_time,
            "runtime": "",
            "user_id": "emulator-user",
            "usage": {"quantum_seconds": self.quantum_seconds, "seconds": self.quantum_seconds},
        }
        if include_params and not self.private and self.params is not None:
            body["params"] = json.loads(self.params)
        return body


class SessionRecord(BaseModel):
    """A session or batch: the jobs that name it run on its backend, and it may stop accepting jobs.

    Its state moves as IBM reports it (see ``sessions.py``): ``open`` until its first job runs,
    ``active`` from then on (``inactive`` while a dedicated one idles past its interactive TTL),
    ``closed`` once it accepts no jobs and none of its jobs is pending, or its maximum TTL passed.
    """

    id: str
    mode: Literal["dedicated", "batch"]
    backend: str | None
    instance: str | None = None
    max_ttl: int = 28800
    interactive_ttl: int | None = Field(
        None, description="dedicated sessions only: seconds of idling allowed"
    )
    accepting_jobs: bool = True
    state: Literal["open", "active", "inactive", "closed"] = "open"
    created: datetime
    activated_at: datetime | None = None
    last_job_started: datetime | None = None
    last_job_completed: datetime | None = None
    closed_at: datetime | None = None
    elapsed_time: float = 0.0
    transitions: list[tuple[str, datetime]] = Field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        """The session as ``GET /sessions/{id}`` presents it."""
        return {
            "id": self.id,
            "backend_name": self.backend,
            "mode": self.mode,
            "max_ttl": self.max_ttl,
            "interactive_ttl": self.interactive_ttl,
            "active_ttl": self.max_ttl,
            "state": self.state,
            "accepting_jobs": self.accepting_jobs,
            "started_at": wire_time(self.created),
            "activated_at": wire_time(self.activated_at),
            "closed_at": wire_time(self.closed_at),
            "last_job_started": wire_time(self.last_job_started),
            "last_job_completed": wire_time(self.last_job_completed),
            "elapsed_time": round(self.elapsed_time, 3),
            "timestamps": [
                {"status": status, "timestamp": wire_time(moment)}
                for status, moment in [("open", self.created), *self.transitions]
            ],
        }


@dataclass(frozen=True)
class JobQuery:
    """What a ``GET /jobs`` listing asks for: its filters (all must hold), its order and its page."""

    backend: str | None = None
    pending: bool | None = None
    program: str | None = None
    tags: tuple[str, ...] = ()
    session_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    ascending: bool = False
    offset: int = 0
    limit: int | None = None
    include_mocks: bool = False

    def matches(self, job: JobRecord) -> bool:
        return (
            (self.include_mocks or not job.dry_run)
            and (not self.backend or job.backend == self.backend)
            and (self.pending is None or (not job.is_final) == self.pending)
            and (not self.program or job.program_id == self.program)
            and set(self.tags) <= set(job.tags)
            and (not self.session_id or job.session_id == self.session_id)
            and (self.created_after is None or job.created >= self.created_after)
            and (self.created_before is None or job.created <= self.created_before)
        )


# The meta row that keeps ``JobStore.deleted_usage`` across restarts.
DELETED_USAGE = "deleted_usage"


class JobStore:
    """Holds jobs, results and sessions; thread-safe, since executions finish on worker threads."""

    def __init__(self, database: Path | None = None) -> None:
        self._lock = threading.RLock()
        self.jobs: dict[str, JobRecord] = {}
        self.results: dict[str, str] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self._secrets: dict[str, str] = {}
        # Jobs queued or running now, and the most there were at once since the last reset_peak.
        self.pending = 0
        # QPU seconds of jobs since deleted: IBM's usage keeps what a deleted job spent.
        self.deleted_usage = 0.0
        self.peak_pending = 0
        self._db: sqlite3.Connection | None = None
        if database is not None:
            self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            for table in ("jobs", "results", "sessions", "meta"):
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, doc TEXT)")
            self._load()

    def _load(self) -> None:
        assert self._db is not None
        for job_id, doc in self._db.execute("SELECT id, doc FROM jobs"):
            self.jobs[job_id] = JobRecord.model_validate_json(doc)
        self.pending = self.peak_pending = sum(not job.is_final for job in self.jobs.values())
        for job_id, doc in self._db.execute("SELECT id, doc FROM results"):
            self.results[job_id] = doc
        for session_id, doc in self._db.execute("SELECT id, doc FROM sessions"):
            self.sessions[session_id] = SessionRecord.model_validate_json(doc)
        row = self._db.execute("SELECT doc FROM meta WHERE id = ?", (DELETED_USAGE,)).fetchone()
        self.deleted_usage = float(row[0]) if row else 0.0

    def _write(self, table: str, key: str, doc: str | None) -> None:
        if self._db is None:
            return
        if doc is None:
            self._db.execute(f"DELETE FROM {table} WHERE id = ?", (key,))
        else:
            self._db.execute(f"INSERT OR REPLACE INTO {table} (id, doc) VALUES (?, ?)", (key, doc))

    def secret(self, name: str) -> str:
        """A random secret that lives as long as the database (as long as the store without one).

        The IAM token signing key is one: a client that holds a token across a restart keeps working.
        """
        with self._lock:
            if name not in self._secrets:
                row = None
                if self._db is not None:
                    row = self._db.execute("SELECT doc FROM meta WHERE id = ?", (name,)).fetchone()
                self._secrets[name] = row[0] if row else secrets.token_hex(32)
                if row is None:
                    self._write("meta", name, self._secrets[name])
            return self._secrets[name]

    def list_jobs(self, query: JobQuery) -> tuple[list[JobRecord], int]:
        """The page ``query`` asks for, by creation (newest first unless ascending); how many match."""
        with self._lock:
            jobs = [job for job in self.jobs.values() if query.matches(job)]
        jobs.sort(key=lambda j: (j.created, j.id), reverse=not query.ascending)
        end = query.offset + query.limit if query.limit else None
        return jobs[query.offset : end], len(jobs)

    def put_job(self, job: JobRecord) -> None:
        with self._lock:
            earlier = self.jobs.get(job.id)
            self.jobs[job.id] = job
            self._count_pending(earlier, job)
            self._write("jobs", job.id, job.model_dump_json())

    def _count_pending(self, earlier: JobRecord | None, later: JobRecord | None) -> None:
        self.pending += int(later is not None and not later.is_final)
        self.pending -= int(earlier is not None and not earlier.is_final)
        self.peak_pending = max(self.peak_pending, self.pending)

    def reset_peak(self) -> None:
        """Start counting ``peak_pending`` again from the jobs pending now."""
        with self._lock:
            self.peak_pending = self.pending

    def update_job(self, job_id: str, **changes: Any) -> JobRecord:
        """Replace fields of a job atomically and persist it."""
        with self._lock:
            job = self.jobs[job_id].model_copy(update=changes)
            self.put_job(job)
            return job

    def finish_job(self, job_id: str, expect: str, **changes: Any) -> JobRecord | None:
        """Move a job to a final state only if it is still in ``expect`` (first writer wins).

        A private job's params go as it ends: IBM deletes them once the job is completed.
        """
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.status != expect:
                return None
            if job.private:
                changes["params"] = None
            return self.update_job(job_id, finished=utcnow(), **changes)

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            job = self.jobs.pop(job_id, None)
            self._count_pending(job, None)
            if job is not None and not job.dry_run and job.quantum_seconds:
                self.deleted_usage += job.quantum_seconds
                self._write("meta", DELETED_USAGE, repr(self.deleted_usage))
            self.results.pop(job_id, None)
            self._write("jobs", job_id, None)
            self._write("results", job_id, None)

    def delete_ended_before(self, cutoff: datetime) -> list[str]:
        """Delete every job that ended before ``cutoff`` (with its result); their ids."""
        with self._lock:
            gone = [
                job.id for job in self.jobs.values() if job.finished is not None and job.finished < cutoff
            ]
            for job_id in gone:
                self.delete_job(job_id)
            return gone

    def age(self, job_id: str, seconds: float) -> JobRecord:
        """Move a job's times ``seconds`` into the past, as if it had been made and ended so much earlier."""
        with self._lock:
            job = self.jobs[job_id]
            shift = timedelta(seconds=seconds)
            return self.update_job(
                job_id,
                created=job.created - shift,
                eligible_at=job.eligible_at - shift,
                running=job.running - shift if job.running else None,
                finished=job.finished - shift if job.finished else None,
            )

    def put_result(self, job_id: str, body: str) -> None:
        with self._lock:
            self.results[job_id] = body
            self._write("results", job_id, body)

    def take_result(self, job_id: str) -> str | None:
        """Remove and return a result, so that exactly one reader gets it (a private job's result)."""
        with self._lock:
            body = self.results.pop(job_id, None)
            if body is not None:
                self._write("results", job_id, None)
            return body

    def put_session(self, session: SessionRecord) -> None:
        with self._lock:
            self.sessions[session.id] = session
            self._write("sessions", session.id, session.model_dump_json())

    def update_session(self, session_id: str, **changes: Any) -> SessionRecord:
        """Replace fields of a session atomically and persist it."""
        with self._lock:
            session = self.sessions[session_id].model_copy(update=changes)
            self.put_session(session)
            return session

    def clear(self) -> None:
        with self._lock:
            for table, keys in (("jobs", self.jobs), ("results", self.results), ("sessions", self.sessions)):
                for key in list(keys):
                    self._write(table, key, None)
                keys.clear()
            self.pending = self.peak_pending = 0

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
