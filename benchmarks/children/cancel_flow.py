"""The flow the ``cancel`` scenario cancels, served as ``flow.serve`` users do.

``python -m benchmarks.children.cancel_flow`` serves deployment ``benchmark-cancel/benchmark``;
each of its runs submits ``count`` Sampler jobs with ``submit_sampler_jobs`` (one pub each) and
awaits them with ``wait_for_jobs``, decorated with ``cancel_jobs_on_exit``: the package's
recommended set-up for a flow whose jobs must not outlive it.
"""

from __future__ import annotations

from prefect import flow

from benchmarks.harness.client import bell_for
from benchmarks.harness.emulator import BACKEND
from prefect_qiskit_jobs import (
    await_for_jobs,
    cancel_jobs_on_exit,
    get_backend,
    submit_sampler_jobs,
)

FLOW_NAME = "benchmark-cancel"
DEPLOYMENT_NAME = "benchmark"
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"


@cancel_jobs_on_exit
@flow(name=FLOW_NAME)
async def many_jobs(count: int = 100, shots: int = 16) -> None:
    bell = bell_for(get_backend(BACKEND))
    jobs = submit_sampler_jobs(
        [bell] * count, backend=BACKEND, options={"default_shots": shots}, max_pubs_per_job=1
    )
    await await_for_jobs(jobs)


if __name__ == "__main__":
    many_jobs.serve(name=DEPLOYMENT_NAME, print_starting_message=False)
