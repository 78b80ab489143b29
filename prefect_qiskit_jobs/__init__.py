"""IBM Quantum jobs as first-class citizens of Prefect 3 flows.

Submit returns a ``JobRef`` at once; ``wait_for_job``/``wait_for_jobs`` are sensors sharing one
batched watcher per process, awaited in async flows and called plainly in sync ones;
``fetch_job_result`` stores results under the job id; the cancellation hooks and the reaper
leave no job running for a run that is gone.

Importing the package imports only the light modules (blocks, errors, values, the result
serializer): Prefect imports it to register the blocks, and that must not import qiskit. The
rest loads on first use of a name (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .blocks import (
    IBMQuantumCredentials,
    aresolve_credentials,
    resolve_credentials,
)
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
from .jobs import IBMQuantumJob, IBMQuantumJobRun
from .models import (
    JobRef,
    JobSnapshot,
    JobStatus,
    PollPolicy,
    Primitive,
    PrimitiveApi,
)
from .serializers import (
    RuntimeJSONSerializer,
)

if TYPE_CHECKING:
    from .backends import (
        aget_backend,
        get_backend,
    )
    from .cancellation import (
        cancel_jobs_hook,
        cancel_jobs_on_exit,
        reap_orphaned_jobs,
    )
    from .deferral import asuspend_until_final, resume_cycle, run_resumer, suspend_until_final
    from .results import (
        afetch_job_result,
        afetch_job_results,
        aread_job_result,
        fetch_job_result,
        fetch_job_results,
        read_job_result,
        result_key,
    )
    from .run import (
        arun_estimator,
        arun_sampler,
        run_estimator,
        run_sampler,
    )
    from .sensor import (
        await_jobs,
        wait_for_job,
        wait_for_jobs,
    )
    from .sessions import (
        IBMQuantumSession,
        ibm_batch,
        ibm_session,
    )
    from .submit import (
        asubmit_estimator_job,
        asubmit_estimator_jobs,
        asubmit_sampler_job,
        asubmit_sampler_jobs,
        submit_estimator_job,
        submit_estimator_jobs,
        submit_sampler_job,
        submit_sampler_jobs,
    )

# Where each name that loads on first use lives.
_LAZY = {
    "aget_backend": "backends",
    "get_backend": "backends",
    "cancel_jobs_hook": "cancellation",
    "cancel_jobs_on_exit": "cancellation",
    "reap_orphaned_jobs": "cancellation",
    "asuspend_until_final": "deferral",
    "resume_cycle": "deferral",
    "run_resumer": "deferral",
    "suspend_until_final": "deferral",
    "afetch_job_result": "results",
    "afetch_job_results": "results",
    "aread_job_result": "results",
    "fetch_job_result": "results",
    "fetch_job_results": "results",
    "read_job_result": "results",
    "result_key": "results",
    "arun_estimator": "run",
    "arun_sampler": "run",
    "run_estimator": "run",
    "run_sampler": "run",
    "IBMQuantumSession": "sessions",
    "ibm_batch": "sessions",
    "ibm_session": "sessions",
    "await_jobs": "sensor",
    "wait_for_job": "sensor",
    "wait_for_jobs": "sensor",
    "asubmit_estimator_job": "submit",
    "asubmit_estimator_jobs": "submit",
    "asubmit_sampler_job": "submit",
    "asubmit_sampler_jobs": "submit",
    "submit_estimator_job": "submit",
    "submit_estimator_jobs": "submit",
    "submit_sampler_job": "submit",
    "submit_sampler_jobs": "submit",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ConfigurationError",
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
    "JobSnapshot",
    "JobStatus",
    "JobWaitTimeoutError",
    "PollPolicy",
    "Primitive",
    "PrimitiveApi",
    "QiskitJobsError",
    "RuntimeJSONSerializer",
    "afetch_job_result",
    "afetch_job_results",
    "aget_backend",
    "aread_job_result",
    "aresolve_credentials",
    "arun_estimator",
    "arun_sampler",
    "asubmit_estimator_job",
    "asubmit_estimator_jobs",
    "asubmit_sampler_job",
    "asubmit_sampler_jobs",
    "asuspend_until_final",
    "await_jobs",
    "cancel_jobs_hook",
    "cancel_jobs_on_exit",
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
