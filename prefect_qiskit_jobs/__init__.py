"""IBM Quantum jobs as first-class citizens of Prefect 3 flows.

Submit tasks return a ``JobRef`` at once; ``wait_for_job(s)`` (and their awaitable twins
``await_for_job(s)``) share one batched watcher per process; ``fetch_job_result`` stores results
under the job id; the cancellation hooks and the reaper leave no job running for a run that is gone.

One sync/async rule holds for every public call, as in Prefect 3 itself: ``name`` blocks and works
in sync code, ``aname`` is its awaitable twin; tasks and flows work in both kinds of flow.

Importing the package imports only the light modules (blocks, errors, values, the result
serializer): Prefect imports it to register the blocks, and that must not import qiskit. The
rest loads on first use of a name (PEP 562); type checkers see every name through the imports
under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prefect_qiskit_jobs.blocks import IBMQuantumCredentials, aresolve_credentials, resolve_credentials
from prefect_qiskit_jobs.errors import (
    ConfigurationError,
    InvalidJobInputError,
    IQPAuthenticationError,
    IQPError,
    IQPUnavailableError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    JobResultExpired,
    JobWaitTimeoutError,
    QiskitJobsError,
    QPUBudgetExceeded,
    ResultNotStoredError,
    SessionUsageError,
)
from prefect_qiskit_jobs.jobs import IBMQuantumJob, IBMQuantumJobRun
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, PollPolicy, Primitive, PrimitiveApi
from prefect_qiskit_jobs.results.serializer import RuntimeJSONSerializer

if TYPE_CHECKING:
    from prefect_qiskit_jobs.cancel.hooks import cancel_jobs_hook, cancel_jobs_on_exit
    from prefect_qiskit_jobs.cancel.reaper import reap_orphaned_jobs
    from prefect_qiskit_jobs.cleanup import CleanupReport, clean_up_jobs
    from prefect_qiskit_jobs.ibm.backends import aget_backend, get_backend
    from prefect_qiskit_jobs.limits.budget import QPUBudget
    from prefect_qiskit_jobs.results.fetch import (
        afetch_job_result,
        afetch_job_results,
        aread_job_result,
        fetch_job_result,
        fetch_job_results,
        read_job_result,
        result_key,
    )
    from prefect_qiskit_jobs.run import arun_estimator, arun_sampler, run_estimator, run_sampler
    from prefect_qiskit_jobs.submit.cache import IBMJobCache
    from prefect_qiskit_jobs.submit.sessions import IBMQuantumSession, ibm_batch, ibm_session
    from prefect_qiskit_jobs.submit.tasks import (
        asubmit_estimator_job,
        asubmit_estimator_jobs,
        asubmit_sampler_job,
        asubmit_sampler_jobs,
        submit_estimator_job,
        submit_estimator_jobs,
        submit_sampler_job,
        submit_sampler_jobs,
    )
    from prefect_qiskit_jobs.wait.deferral import (
        aresume_cycle,
        arun_resumer,
        asuspend_until_final,
        resume_cycle,
        run_resumer,
        suspend_until_final,
    )
    from prefect_qiskit_jobs.wait.tasks import await_for_job, await_for_jobs, wait_for_job, wait_for_jobs

# Where each name that loads on first use lives (the imports above, for type checkers; a unit
# test checks that the two agree).
_LAZY = {
    "cancel.hooks": ("cancel_jobs_hook", "cancel_jobs_on_exit"),
    "cancel.reaper": ("reap_orphaned_jobs",),
    "cleanup": ("CleanupReport", "clean_up_jobs"),
    "ibm.backends": ("aget_backend", "get_backend"),
    "limits.budget": ("QPUBudget",),
    "results.fetch": (
        "afetch_job_result",
        "afetch_job_results",
        "aread_job_result",
        "fetch_job_result",
        "fetch_job_results",
        "read_job_result",
        "result_key",
    ),
    "run": ("arun_estimator", "arun_sampler", "run_estimator", "run_sampler"),
    "submit.cache": ("IBMJobCache",),
    "submit.sessions": ("IBMQuantumSession", "ibm_batch", "ibm_session"),
    "submit.tasks": (
        "asubmit_estimator_job",
        "asubmit_estimator_jobs",
        "asubmit_sampler_job",
        "asubmit_sampler_jobs",
        "submit_estimator_job",
        "submit_estimator_jobs",
        "submit_sampler_job",
        "submit_sampler_jobs",
    ),
    "wait.deferral": (
        "aresume_cycle",
        "arun_resumer",
        "asuspend_until_final",
        "resume_cycle",
        "run_resumer",
        "suspend_until_final",
    ),
    "wait.tasks": ("await_for_job", "await_for_jobs", "wait_for_job", "wait_for_jobs"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CleanupReport",
    "ConfigurationError",
    "IBMJobCache",
    "IBMQuantumCredentials",
    "IBMQuantumJob",
    "IBMQuantumJobRun",
    "IBMQuantumSession",
    "IQPAuthenticationError",
    "IQPError",
    "IQPUnavailableError",
    "InvalidJobInputError",
    "JobCancelledError",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcomeError",
    "JobRef",
    "JobResultExpired",
    "JobSnapshot",
    "JobStatus",
    "JobWaitTimeoutError",
    "PollPolicy",
    "Primitive",
    "PrimitiveApi",
    "QPUBudget",
    "QPUBudgetExceeded",
    "QiskitJobsError",
    "ResultNotStoredError",
    "RuntimeJSONSerializer",
    "SessionUsageError",
    "afetch_job_result",
    "afetch_job_results",
    "aget_backend",
    "aread_job_result",
    "aresolve_credentials",
    "aresume_cycle",
    "arun_estimator",
    "arun_resumer",
    "arun_sampler",
    "asubmit_estimator_job",
    "asubmit_estimator_jobs",
    "asubmit_sampler_job",
    "asubmit_sampler_jobs",
    "asuspend_until_final",
    "await_for_job",
    "await_for_jobs",
    "cancel_jobs_hook",
    "cancel_jobs_on_exit",
    "clean_up_jobs",
    "fetch_job_result",
    "fetch_job_results",
    "get_backend",
    "ibm_batch",
    "ibm_session",
    "read_job_result",
    "reap_orphaned_jobs",
    "resolve_credentials",
    "result_key",
    "resume_cycle",
    "run_estimator",
    "run_resumer",
    "run_sampler",
    "submit_estimator_job",
    "submit_estimator_jobs",
    "submit_sampler_job",
    "submit_sampler_jobs",
    "suspend_until_final",
    "wait_for_job",
    "wait_for_jobs",
]
