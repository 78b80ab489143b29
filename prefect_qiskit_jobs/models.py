"""The values that flow between tasks: job references, job snapshots, statuses and poll policies.

All are frozen pydantic models that serialise to plain JSON with no secrets, so Prefect can persist
them, show them in the UI and hand them to another process.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect_qiskit_jobs.errors import InvalidJobInputError

logger = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_SPAN_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def span_of(text: str) -> timedelta | None:
    """The span of time ``text`` writes (``90s``, ``30m``, ``2h``, ``1d``, ``1w``); None if it writes none.

    Example:
        >>> span_of("30d"), span_of("1.5h"), span_of("yesterday")
        (datetime.timedelta(days=30), datetime.timedelta(seconds=5400), None)
    """
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        return None
    return timedelta(**{_SPAN_UNITS[match.group(2)]: float(match.group(1))})


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it can be an IBM job id; raise ``InvalidJobInputError`` before any request."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidJobInputError(
            f"{job_id!r} is not an IBM Quantum job id: 8 to 64 letters, digits, '-' or '_', "
            "e.g. 'd1x2c3v4b5n6m7q8w9e0'"
        )
    return job_id


class JobStatus(str, Enum):
    """A job's status as the client names it; ``from_api`` maps IBM's wire strings in one place.

    ``UNKNOWN`` stands for a status IBM added after this package was written. It is never final:
    waits go on through it, and a cancel is still sent for a job in it (IBM answers 409 when the
    job has in fact ended).
    """

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @classmethod
    def from_api(cls, status: str, reason_code: int | None = None) -> JobStatus:
        """Map IBM's ``state.status`` (``Queued``, ``Completed``, ...) as the client does.

        A job cancelled for running past its maximum execution time (reason code 1305) is an ERROR.
        A string this package does not know is ``UNKNOWN``, with a warning once per string per process.
        """
        key = status.strip().upper()
        mapped = _API_STATUS.get(key)
        if mapped is None:
            _warn_unknown_status(key, status)
            return cls.UNKNOWN
        if mapped is cls.CANCELLED and reason_code == RAN_TOO_LONG:
            return cls.ERROR
        return mapped


RAN_TOO_LONG = 1305
_FINAL = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED})
_API_STATUS = {
    "INITIALIZING": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "VALIDATING": JobStatus.QUEUED,
    "RUNNING": JobStatus.RUNNING,
    "COMPLETED": JobStatus.DONE,
    "DONE": JobStatus.DONE,
    "FAILED": JobStatus.ERROR,
    "ERROR": JobStatus.ERROR,
    "CANCELLED": JobStatus.CANCELLED,
}


_warned_statuses: set[str] = set()
_warned_statuses_lock = threading.Lock()


def _warn_unknown_status(key: str, status: str) -> None:
    with _warned_statuses_lock:
        if key in _warned_statuses:
            return
        _warned_statuses.add(key)
    logger.warning(
        "IBM Quantum Platform answered a job status this package does not know, %r: jobs in it are "
        "taken as not final (UNKNOWN) and waited for until IBM answers a status it knows",
        status,
    )


class Primitive(str, Enum):
    """The runtime program a job runs."""

    SAMPLER = "sampler"
    ESTIMATOR = "estimator"


class PrimitiveApi(str, Enum):
    """Which of the client's primitives a job is submitted through.

    ``V2``: ``SamplerV2``/``EstimatorV2`` (programs ``sampler`` and ``estimator``), deprecated since
    qiskit-ibm-runtime 0.50. ``EXECUTOR``: the executor-based ``executor_sampler.Sampler`` and
    ``executor_estimator.Estimator`` (program ``executor``), which pre- and post-process on the client.
    Either way the result is a ``PrimitiveResult``.
    """

    V2 = "v2"
    EXECUTOR = "executor"

    def program_id(self, primitive: Primitive) -> str:
        """The IBM program a job of ``primitive`` runs through this API."""
        return "executor" if self is PrimitiveApi.EXECUTOR else primitive.value


class JobRef(BaseModel):
    """What a submit returns at once: enough to wait for, cancel and fetch the job from any process."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    backend: str
    primitive: Primitive
    primitive_api: PrimitiveApi = PrimitiveApi.V2
    instance: str | None = Field(None, description="the IBM Cloud CRN of the instance that holds the job")
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    session_id: str | None = None

    @property
    def program_id(self) -> str:
        """The IBM program the job runs: ``sampler``, ``estimator`` or ``executor``."""
        return self.primitive_api.program_id(self.primitive)

    def _identity(self) -> tuple[object, ...]:
        # created_at is left out: the submit that POSTed reads its own clock when IBM accepts the
        # job, a retry that adopts the job reads IBM's record; both refer to the same job.
        return tuple(value for name, value in self.__dict__.items() if name != "created_at")

    def __eq__(self, other: object) -> bool:
        """Two references to one job are equal whoever built them, whatever ``created_at`` they saw."""
        if not isinstance(other, JobRef):
            return NotImplemented
        return type(self) is type(other) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    @field_validator("job_id")
    @classmethod
    def _valid_job_id(cls, value: str) -> str:
        return check_job_id(value)

    @property
    def detached(self) -> bool:
        from prefect_qiskit_jobs.ibm.tags import DETACHED_TAG

        return DETACHED_TAG in self.tags

    @classmethod
    def from_snapshot(
        cls,
        snapshot: JobSnapshot,
        *,
        instance: str | None,
        primitive: Primitive | None = None,
        primitive_api: PrimitiveApi | None = None,
        backend: str | None = None,
    ) -> JobRef:
        """The reference of a job IBM reported, as every stage builds it (so two builds compare equal).

        What IBM's record cannot tell is given: the primitive of an ``executor`` job (a Sampler
        unless said otherwise) and the backend asked for when IBM's record has none.
        """
        program = snapshot.primitive
        api = primitive_api or (PrimitiveApi.EXECUTOR if program == "executor" else PrimitiveApi.V2)
        known = {p.value: p for p in Primitive}
        return cls(
            job_id=snapshot.job_id,
            backend=snapshot.backend or backend or "",
            primitive=primitive or known.get(program or "", Primitive.SAMPLER),
            primitive_api=api,
            instance=instance,
            tags=snapshot.tags,
            created_at=snapshot.created,
            session_id=snapshot.session_id,
        )


def job_id_of(job: JobRef | JobSnapshot | str) -> str:
    """The id of a job given as a reference, a snapshot or an id; an id is checked first."""
    if isinstance(job, (JobRef, JobSnapshot)):
        return job.job_id
    return check_job_id(job)


class JobSnapshot(BaseModel):
    """A job's state as last read from IBM; the wait returns the final one."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    backend: str | None = None
    primitive: str | None = None
    status: JobStatus
    reason: str | None = None
    reason_code: int | None = None
    created: datetime | None = None
    running: datetime | None = None
    finished: datetime | None = None
    quantum_seconds: float | None = None
    estimated_running_seconds: float | None = Field(
        None, description="IBM's estimate of the job's QPU seconds, where it gives one"
    )
    position_in_queue: int | None = None
    estimated_start: datetime | None = None
    tags: tuple[str, ...] = ()
    session_id: str | None = Field(None, description="the IBM session or batch the job runs in")
    unrecognised_status: str | None = Field(
        None, description="IBM's own status string when the package does not know it (status UNKNOWN)"
    )

    def raise_for_outcome(self) -> JobSnapshot:
        """Return this snapshot if DONE; raise the typed error, with IBM's reason, for ERROR and CANCELLED."""
        from prefect_qiskit_jobs.errors import JobCancelledError, JobFailedError

        if self.status is JobStatus.ERROR:
            raise JobFailedError(f"Job {self.job_id} failed: {self.describe()}", self)
        if self.status is JobStatus.CANCELLED:
            raise JobCancelledError(f"Job {self.job_id} was cancelled: {self.describe()}", self)
        return self

    def describe(self) -> str:
        """A one-line human summary, e.g. ``QUEUED (position 3)`` or ``ERROR: reason (code 1305)``."""
        text = self.status.value
        if self.unrecognised_status is not None:
            text += f" (IBM says {self.unrecognised_status!r})"
        if self.status is JobStatus.QUEUED and self.position_in_queue:
            text += f" (position {self.position_in_queue})"
        if self.reason:
            text += f": {self.reason}"
        if self.reason_code:
            text += f" (code {self.reason_code})"
        return text


@dataclass(frozen=True)
class Backoff:
    """The one exponential backoff of the package: ``initial`` growing ``multiplier`` times up to ``cap``.

    A value holding settings only (the attempt count is the caller's state), so every pause that
    grows after a refusal or a failure (an in-flight count at the cap, a 429 re-sent, a cancel
    confirmed, a poll after errors) follows one formula and is tested without waiting.

    Example:
        >>> [Backoff(initial=0.5, multiplier=1.5, cap=20.0, jitter=0).delay(n) for n in range(4)]
        [0.5, 0.75, 1.125, 1.6875]
    """

    initial: float
    multiplier: float = 2.0
    cap: float = 60.0
    jitter: float = 0.1

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to pause before try ``attempt + 1``; no jitter without a random source."""
        base = min(self.cap, self.initial * self.multiplier ** min(attempt, 64))
        if self.jitter and rng is not None:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return base


class PollPolicy(BaseModel):
    """How often to ask IBM about jobs: a pause that grows with the time nothing has changed.

    The pause before the next read is ``growth`` times the seconds since the status last changed,
    at least ``initial`` and at most ``cap``, scaled by a random factor in
    ``[1 - jitter, 1 + jitter]``, and never shorter than a ``Retry-After`` IBM sent. While reads
    succeed the pause stops growing at ``lag_bound`` (``pace``): IBM may start and end a queued
    job at any moment, so however long the jobs have queued, a job's end is heard of at most about
    ``lag_bound`` (plus one read) after it happens. That costs one read per ``lag_bound`` seconds
    per group of jobs (a flow run's jobs on one backend), whatever their number. A wait that has
    just begun reads sooner: its pause is at most the time it has waited, and at least ``first``
    (reads at about 0.25, 0.5, 1 s, ...), so a job that ends within a second of its submission
    is seen within about as long again, at the cost of three more reads per wait. ``error_budget``
    consecutive transient errors (429, 5xx, dropped or hung connections) are tolerated, each
    doubling the pause up to ``cap``, before a wait fails.

    Example:
        >>> policy = PollPolicy(initial=1.5, growth=0.1, cap=30, jitter=0)
        >>> [policy.delay(quiet) for quiet in (0, 10, 60, 3600)]
        [1.5, 1.5, 6.0, 30.0]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: float = Field(1.5, gt=0, description="seconds between reads while statuses change")
    first: float | None = Field(
        0.25,
        gt=0,
        description="shortest pause of a wait that has just begun, whose pauses are at most the time "
        "it has waited until they reach the pace; None: the pace from the first read",
    )
    growth: float = Field(0.075, ge=0, description="the pause as a fraction of the time nothing changed")
    cap: float = Field(30.0, gt=0, description="longest pause between reads")
    jitter: float = Field(0.1, ge=0, lt=1, description="relative spread of each pause")
    error_budget: int = Field(20, ge=0, description="consecutive transient errors tolerated")
    queue_position_every: float | None = Field(
        30.0, gt=0, description="seconds between queue-position reads of a queued job; None turns them off"
    )
    lag_bound: float | None = Field(
        5.0,
        gt=0,
        description="longest pause between reads that succeed, however long the jobs queue; "
        "None: it grows to cap",
    )

    def pace(
        self,
        quiet_seconds: float,
        rng: random.Random | None = None,
        errors: int = 0,
        waited_seconds: float | None = None,
    ) -> float:
        """The pause the watcher takes: ``delay`` grown no further than ``lag_bound``; errors double it.

        A wait begun ``waited_seconds`` ago pauses at most that long (at least ``first``) while
        its reads succeed.

        Example:
            >>> policy = PollPolicy(initial=1.5, growth=0.1, cap=30, jitter=0, lag_bound=5)
            >>> [policy.pace(quiet) for quiet in (0, 40, 3600)], policy.pace(3600, errors=2)
            ([1.5, 4.0, 5.0], 20.0)
            >>> [policy.pace(waited, waited_seconds=waited) for waited in (0.05, 0.3, 0.6, 1.2, 2.4)]
            [0.25, 0.3, 0.6, 1.2, 1.5]
        """
        if self.lag_bound is not None and self.growth:
            quiet_seconds = min(quiet_seconds, self.lag_bound / self.growth)
        pause = self.delay(quiet_seconds, rng, errors)
        if self.first is None or waited_seconds is None or errors:
            return pause
        return min(pause, max(self.first, waited_seconds))

    def delay(self, quiet_seconds: float, rng: random.Random | None = None, errors: int = 0) -> float:
        """Seconds to pause after ``quiet_seconds`` without a change (and ``errors`` failed reads in a row).

        Pure, so schedules are tested without waiting; no jitter without a random source.
        """
        base = min(self.cap, max(self.initial, self.growth * max(quiet_seconds, 0.0)))
        return Backoff(initial=base, multiplier=2.0, cap=self.cap, jitter=self.jitter).delay(errors, rng)
