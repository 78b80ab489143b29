"""Every error this package raises, under one root.

Transport and API failures are kept apart from job outcomes: the first say IBM could not be asked,
the second say what IBM answered about a job. qiskit-ibm-runtime's exceptions are translated in one
place, ``ibm/gateway.py``, with ``raise ... from``. Each message says what to do next.

```
QiskitJobsError
├── ConfigurationError        credentials or settings are missing or unusable
├── InvalidJobInputError      bad input found before anything was sent
├── SessionUsageError         an ibm_session/ibm_batch used outside its block, or opened twice
├── ResultNotStoredError      no stored result for a job (also a KeyError)
├── JobResultExpired          a job's result is in neither Prefect's storage nor IBM's
├── QPUBudgetExceeded         a job would go over a QPU budget, or IBM's usage limit: none created
├── IQPError                  IBM Quantum Platform could not be asked, or refused
│   ├── IQPAuthenticationError    the API key or token was refused
│   ├── JobNotFoundError          no job with that id on this instance
│   └── IQPUnavailableError       429 / 5xx / connection errors beyond the retry budget
└── JobOutcomeError           a job ended, or was waited on, without a result
    ├── JobFailedError            IBM reports ERROR
    ├── JobCancelledError         IBM reports CANCELLED
    └── JobWaitTimeoutError       the wait gave up before the job ended
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect_qiskit_jobs.models import JobSnapshot


class QiskitJobsError(Exception):
    """Root of every error raised by prefect-qiskit-jobs."""


class ConfigurationError(QiskitJobsError):
    """Raised when credentials or settings are missing or cannot build a client."""


class InvalidJobInputError(QiskitJobsError, ValueError):
    """Raised before any request when pubs, backend, options or a job id cannot be right."""


class SessionUsageError(QiskitJobsError):
    """Raised when an ``ibm_session``/``ibm_batch`` is used before its block opened it, or opened twice."""


class ResultNotStoredError(QiskitJobsError, KeyError):
    """Raised by ``read_job_result`` when no result of the job is in the result storage.

    It is a ``KeyError`` too, as the lookup by key it is. ``fetch_job_result`` fetches and stores it.
    """

    def __init__(self, job_id: str, storage: object) -> None:
        super().__init__(
            f"No stored result for job {job_id} in {storage}: fetch it first with "
            "fetch_job_result(job), which stores it under the job id"
        )
        self.job_id = job_id

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class JobResultExpired(QiskitJobsError):
    """Raised when a job's result is in neither Prefect's result storage nor IBM's.

    IBM gives a private job's result once, then answers an empty one; it deletes a job on request
    (``DELETE /jobs/{id}``, ``prefect-qiskit-jobs cleanup --ibm``) and at the end of its retention,
    and then answers 404 for it. ``job_id`` names the job, ``why`` says which happened.
    """

    def __init__(self, job_id: str, why: str) -> None:
        super().__init__(
            f"The result of job {job_id} is gone: {why}. It was not stored in Prefect's result "
            "storage either; fetch results with fetch_job_result as soon as jobs end to keep them"
        )
        self.job_id = job_id
        self.why = why


class QPUBudgetExceeded(QiskitJobsError):
    """Raised instead of creating a job: it would take QPU time past a budget, or IBM refused it (409,
    "Usage exceeds instance limit"). Nothing was submitted, and it is never retried: only time (a
    new usage period) or a larger budget makes room.

    Before a job is created, a ``QPUBudget`` compares ``spent_seconds`` plus the job's
    ``estimate_seconds`` with ``budget_seconds`` (of ``scope``); IBM's own refusal carries its
    message and, when it could be read, the instance's limit and usage.
    """

    def __init__(
        self,
        message: str,
        *,
        budget_seconds: float | None = None,
        spent_seconds: float | None = None,
        estimate_seconds: float | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(message)
        self.budget_seconds = budget_seconds
        self.spent_seconds = spent_seconds
        self.estimate_seconds = estimate_seconds
        self.scope = scope


class IQPError(QiskitJobsError):
    """Raised when IBM Quantum Platform answers with an error or cannot be reached."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class IQPAuthenticationError(IQPError):
    """Raised when IBM refuses the API key (IAM) or the bearer token (runtime API)."""


class JobNotFoundError(IQPError):
    """Raised when the instance has no job with the given id."""


class IQPUnavailableError(IQPError):
    """Raised for transient failures (429, 5xx, dropped connections) once retries are spent.

    ``retry_after`` holds the seconds IBM asked us to wait, when it said so.
    """

    def __init__(
        self, message: str, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code)
        self.retry_after = retry_after


class JobOutcomeError(QiskitJobsError):
    """Raised when a job gives no result; ``snapshot`` is its last known state."""

    def __init__(self, message: str, snapshot: JobSnapshot) -> None:
        super().__init__(message)
        self.snapshot = snapshot

    @property
    def job_id(self) -> str:
        return self.snapshot.job_id

    @property
    def reason(self) -> str | None:
        return self.snapshot.reason

    @property
    def reason_code(self) -> int | None:
        return self.snapshot.reason_code


class JobFailedError(JobOutcomeError):
    """Raised when IBM reports the job ERROR (including 1305, "ran too long")."""


class JobCancelledError(JobOutcomeError):
    """Raised when IBM reports the job CANCELLED."""


class JobWaitTimeoutError(JobOutcomeError):
    """Raised when a wait's timeout passes before the job reaches a final state."""


# The HTTP statuses that say IBM (or IBM Cloud's IAM) cannot answer for now (-1: no answer at all).
TRANSIENT_STATUS = frozenset({-1, 408, 429, 500, 502, 503, 504, 520, 521, 522, 524})


def retry_after_of(response: Any) -> float | None:
    """The seconds an HTTP answer's ``Retry-After`` header asks to wait; None without a readable one."""
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def is_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when IBM was unavailable, never for bad input,
    refused credentials or job outcomes.

    Reads the exception the failed state holds, never ``state.result()``: in an async task that
    returns a coroutine instead of raising, and no async task would ever be retried.
    """
    return isinstance(getattr(state, "data", None), IQPUnavailableError)


# The retries of the submit and fetch tasks: only when IBM could not be reached or refused for
# now, spread over about seven minutes (jittered, so the tasks an outage stopped do
# not all come back at once). An outage of IBM up to five minutes fails no submit and no fetch;
# a retried submit adopts any job its earlier attempt created. ``.with_options`` changes them.
RETRY_THROUGH_OUTAGES: dict[str, Any] = {
    "retries": 6,
    "retry_delay_seconds": [5, 15, 30, 60, 120, 180],
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": is_transient,
}
