"""The flow the ``chaos`` scenario deploys to a process work pool: submit, wait, fetch.

Each run submits ``count`` Sampler jobs with ``submit_sampler_jobs`` (one pub each), awaits them
in the flow's own event loop and fetches every result (stored under ``qiskit-result-<job id>``),
decorated with ``cancel_jobs_on_exit``: the package's recommended set-up for a flow whose jobs
must not outlive it. Each run has a backend of its own: the emulator's queues are FIFO per
backend, and the scenario lets only live runs' jobs run. The scenario deploys it with
``Flow.from_source`` from the code under test.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from benchmarks.harness.client import bell_for
from benchmarks.harness.emulator import BACKEND
from prefect_qiskit_jobs import (
    afetch_job_results,
    await_for_jobs,
    cancel_jobs_on_exit,
    get_backend,
    submit_sampler_jobs,
)

FLOW_NAME = "benchmark-chaos"
ENTRYPOINT = "benchmarks/children/chaos_flow.py:chaos"


@cancel_jobs_on_exit
@flow(name=FLOW_NAME, persist_result=True)
async def chaos(count: int = 10, backend: str = BACKEND, shots: int = 16) -> list[dict[str, int]]:
    bell = bell_for(get_backend(backend))
    jobs = submit_sampler_jobs(
        [bell] * count, backend=backend, options={"default_shots": shots}, max_pubs_per_job=1
    )
    await await_for_jobs(jobs)
    results: list[Any] = await afetch_job_results(jobs)
    return [result[0].data.meas.get_counts() for result in results]
