"""The two flows the ``deferral`` scenario runs side by side, served as ``flow.serve`` users do.

``python -m benchmarks.children.deferral_flow`` serves ``benchmark-waits/benchmark`` (submits
``count`` jobs, then ``wait_for_jobs``: the flow process waits out the queue) and
``benchmark-defers/benchmark`` (the same, then ``asuspend_until_final``: the run suspends, its
process exits, and the resumer resumes it once the jobs have ended). Both fetch the results.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, serve

from benchmarks.harness.client import bell_for
from benchmarks.harness.emulator import BACKEND
from prefect_qiskit_jobs import (
    JobRef,
    afetch_job_results,
    asuspend_until_final,
    await_for_jobs,
    get_backend,
    submit_sampler_jobs,
)

DEPLOYMENT_NAME = "benchmark"
WAITS = "benchmark-waits"
DEFERS = "benchmark-defers"


def _submit(count: int) -> list[JobRef]:
    bell = bell_for(get_backend(BACKEND))
    return list(
        submit_sampler_jobs(
            [bell] * count, backend=BACKEND, options={"default_shots": 16}, max_pubs_per_job=1
        )
    )


async def _counts(jobs: list[JobRef]) -> list[Any]:
    return [result[0].data.meas.get_counts() for result in await afetch_job_results(jobs)]


@flow(name=WAITS)
async def waits(count: int = 2) -> list[Any]:
    jobs = _submit(count)
    await await_for_jobs(jobs)
    return await _counts(jobs)


@flow(name=DEFERS, persist_result=True)
async def defers(count: int = 2) -> list[Any]:
    jobs = _submit(count)
    await asuspend_until_final(jobs)
    return await _counts(jobs)


if __name__ == "__main__":
    serve(
        waits.to_deployment(name=DEPLOYMENT_NAME),
        defers.to_deployment(name=DEPLOYMENT_NAME),
        print_starting_message=False,
    )
