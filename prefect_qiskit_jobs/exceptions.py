"""Every error this package raises, under one root.

Transport and API failures are kept apart from job outcomes: the first say IBM could not be asked,
the second say what IBM answered about a job. qiskit-ibm-runtime's exceptions are translated in one
place, ``runtime.py``, with ``raise ... from``.

```
QiskitJobsError
├── ConfigurationError        credentials or settings are missing or unusable
├── InvalidJobInputError      bad input found before anything was sent
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
    from .models import JobSnapshot


class QiskitJobsError(Exception):
    """Root of every error raised by prefect-qiskit-jobs."""


class ConfigurationError(QiskitJobsError):
    """Raised when credentials or settings are missing or cannot build a client."""


class InvalidJobInputError(QiskitJobsError, ValueError):
    """Raised before any request when pubs, backend, options or a job id cannot be right."""


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


def is_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when IBM was unavailable, never for bad input,
    refused credentials or job outcomes."""
    try:
        state.result()
    except IQPUnavailableError:
        return True
    except Exception:
        return False
    return False
