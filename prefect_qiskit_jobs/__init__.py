"""IBM Quantum jobs as first-class citizens of Prefect 3 flows.

Submit returns a ``JobRef`` at once; ``wait_for_job``/``wait_for_jobs`` are async sensors sharing
one batched watcher per process; ``fetch_job_result`` stores results under the job id; the
cancellation hooks and the reaper leave no job running for a run that is gone.
"""

from .blocks import IBMQuantumCredentials
from .cancellation import cancel_jobs_hook, cancel_jobs_on_exit, reap_orphaned_jobs
from .exceptions import (
    ConfigurationError,
    InvalidJobInputError,
    IQPAuthenticationError,
    IQPError,
    IQPUnavailableError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    JobWaitTimeoutError,
    QiskitJobsError,
)
from .models import JobRef, JobSnapshot, JobStatus, PollPolicy, Primitive
from .results import RuntimeJSONSerializer, aread_job_result, fetch_job_result, read_job_result, result_key
from .run import arun_estimator, arun_sampler, run_estimator, run_sampler
from .sensor import await_jobs, wait_for_job, wait_for_jobs
from .submit import submit_estimator_job, submit_sampler_job

__all__ = [
    "ConfigurationError",
    "IBMQuantumCredentials",
    "IQPAuthenticationError",
    "IQPError",
    "IQPUnavailableError",
    "InvalidJobInputError",
    "JobCancelledError",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcomeError",
    "JobRef",
    "JobSnapshot",
    "JobStatus",
    "JobWaitTimeoutError",
    "PollPolicy",
    "Primitive",
    "QiskitJobsError",
    "RuntimeJSONSerializer",
    "aread_job_result",
    "arun_estimator",
    "arun_sampler",
    "await_jobs",
    "cancel_jobs_hook",
    "cancel_jobs_on_exit",
    "fetch_job_result",
    "read_job_result",
    "reap_orphaned_jobs",
    "result_key",
    "run_estimator",
    "run_sampler",
    "submit_estimator_job",
    "submit_sampler_job",
    "wait_for_job",
    "wait_for_jobs",
]
