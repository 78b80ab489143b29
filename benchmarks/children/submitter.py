"""Submits N jobs from one flow run through the package, all at once, and reads back its task runs.

``python -m benchmarks.children.submitter --jobs N --result-file F``: sets up (imports, the
circuit, the client's first requests), says READY and waits for GO, runs a flow that submits N
Sampler jobs concurrently (``asubmit_sampler_job``, the package's job-creation throttle in
force), then waits until the Prefect API holds each of the flow run's task runs in a final state
and writes their run counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from benchmarks.harness import client
from benchmarks.harness.child import handshake
from benchmarks.harness.emulator import BACKEND

RECORDS_DEADLINE = 120.0


async def task_run_counts(flow_run_id: str, count: int) -> list[int]:
    """Each task run's ``run_count``, once the API holds ``count`` of them in a final state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    deadline = time.monotonic() + RECORDS_DEADLINE
    async with get_client() as prefect:
        while True:
            runs = await prefect.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[UUID(flow_run_id)])),
                limit=count + 10,
            )
            final = [run for run in runs if run.state is not None and run.state.is_final()]
            if len(final) >= count or time.monotonic() > deadline:
                return [run.run_count for run in runs]
            await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.children.submitter")
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--result-file", required=True)
    args = parser.parse_args(argv)
    from prefect import flow
    from prefect.context import FlowRunContext

    from prefect_qiskit_jobs import asubmit_sampler_job, get_backend

    pubs: list[Any] = [(client.bell_for(get_backend(BACKEND)), None, 16)]

    @flow
    async def submit_many(count: int) -> str:
        await asyncio.gather(*(asubmit_sampler_job(pubs, backend=BACKEND) for _ in range(count)))
        context = FlowRunContext.get()
        assert context is not None
        assert context.flow_run is not None
        return str(context.flow_run.id)

    if not handshake():
        return 1
    started = time.time()
    flow_run_id = asyncio.run(submit_many(args.jobs))
    ended = time.time()
    counts = asyncio.run(task_run_counts(flow_run_id, args.jobs))
    package_file = getattr(sys.modules.get("prefect_qiskit_jobs"), "__file__", None)
    result = {"started": started, "ended": ended, "run_counts": counts, "package_file": package_file}
    Path(args.result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
