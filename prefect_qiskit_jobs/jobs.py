"""``IBMQuantumJob``: Prefect's ``JobBlock`` interface for a primitive job, on the package's tasks.

As with prefect-dbt's and prefect-databricks' job blocks, ``trigger()`` starts the job and returns
a run object whose ``wait_for_completion()`` waits and ``fetch_result()`` returns the result.
Underneath are the same tasks as everywhere (``asubmit_*_job``, ``wait_for_job``,
``afetch_job_result``), so retries adopt the job, the wait shows its status and cancels it when
interrupted, and the result lands in storage under the job id. The block's settings (backend,
primitive, options, tags) can be saved; its pubs are circuits, given when the block is built.
"""

from __future__ import annotations

from logging import Logger
from typing import Any

from prefect.blocks.abstract import JobBlock, JobRun
from pydantic import Field, HttpUrl

from prefect_qiskit_jobs.blocks import IBMQuantumCredentials
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, PollPolicy, Primitive


class IBMQuantumJobRun(JobRun[Any]):
    """One triggered job: wait for it, then fetch its ``PrimitiveResult``."""

    def __init__(self, job: JobRef, credentials: IBMQuantumCredentials, poll: PollPolicy | None) -> None:
        self.job = job
        self.credentials = credentials
        self.poll = poll
        self.final: JobSnapshot | None = None

    async def wait_for_completion(self) -> Logger:
        """Wait until the job is final; raise ``JobFailedError``/``JobCancelledError`` unless it is DONE."""
        from prefect_qiskit_jobs.wait.tasks import await_for_job

        self.final = await await_for_job(self.job, credentials=self.credentials, poll=self.poll)
        return self.logger  # type: ignore[return-value]

    async def fetch_result(self) -> Any:
        """The job's result, from result storage once fetched."""
        from prefect_qiskit_jobs.results.fetch import afetch_job_result

        return await afetch_job_result(self.job, credentials=self.credentials)


class IBMQuantumJob(JobBlock[Any]):
    """A Sampler or Estimator job on an IBM backend, as a Prefect job block.

    Example:
        Save the settings once, then load them by name and give the pubs:

        ```python
        from prefect_qiskit_jobs import IBMQuantumCredentials
        from prefect_qiskit_jobs import IBMQuantumJob

        IBMQuantumJob(credentials=IBMQuantumCredentials.load("ibm-quantum"), backend="ibm_brisbane").save(
            "BLOCK_NAME"
        )

        job = IBMQuantumJob.load("BLOCK_NAME")
        job.pubs = [isa_circuit]
        run = await job.trigger()
        await run.wait_for_completion()
        result = await run.fetch_result()
        ```
    """

    _block_type_name = "IBM Quantum Job"
    _block_type_slug = "ibm-quantum-job"
    _logo_url = HttpUrl("https://avatars.githubusercontent.com/u/30696987?s=200&v=4")
    _description = "A Sampler or Estimator job on an IBM Quantum backend: trigger, wait, fetch."
    _documentation_url = HttpUrl("https://quantum.cloud.ibm.com/docs/guides/primitives")

    credentials: IBMQuantumCredentials
    backend: str = Field(description="Backend name, e.g. ibm_brisbane.")
    primitive: Primitive = Field(Primitive.SAMPLER, description="Which primitive runs the pubs.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Primitive options, e.g. default_shots."
    )
    tags: list[str] = Field(default_factory=list, description="Extra IBM job tags.")
    pubs: list[Any] = Field(
        default_factory=list,
        exclude=True,
        description="ISA circuits or pub tuples (not saved with the block).",
    )

    async def trigger(self) -> IBMQuantumJobRun:
        """Submit the pubs as one job (adopting the job of an earlier attempt) and return its run."""
        from prefect_qiskit_jobs.submit.tasks import asubmit_estimator_job, asubmit_sampler_job

        submit = asubmit_sampler_job if self.primitive is Primitive.SAMPLER else asubmit_estimator_job
        job = await submit(
            self.pubs,
            backend=self.backend,
            credentials=self.credentials,
            options=self.options,
            tags=self.tags,
        )
        return IBMQuantumJobRun(job, self.credentials, None)
