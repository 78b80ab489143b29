"""Two reapers at once, in two processes, send one cancel request per job between them.

Teams run the reaper as a scheduled deployment and by hand, and a slow cycle can overlap the
next: both list the same pending jobs of the same ended run. IBM takes seconds to answer a
cancel (the emulator here too, three seconds per request), so the second reaper lists the jobs
while the first one's cancels are still on their way and, without a lock shared through Prefect,
sends its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import asubmit_sampler_job
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator

from .conftest import OPTIONS, SMALL_BACKEND

CANCEL_SECONDS = 3.0


class LeftBehind(RuntimeError):
    """The run fails with its jobs queued and no hook: only a reaper cancels them."""


def reap(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "prefect_qiskit_jobs", "reap", "--include-failed"]
    command += ["--grace-seconds", "0"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)


async def test_two_reapers_at_once_cancel_each_job_once(
    held: RunningEmulator, bell_isa: QuantumCircuit, prefect_api: dict[str, str]
) -> None:
    @flow
    async def left_behind() -> None:
        for _ in range(3):
            await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        raise LeftBehind("no hook: a reaper must find these")

    await left_behind(return_state=True)
    jobs = [job["id"] for job in held.jobs()]
    held.set_faults(FaultRule(route="POST /jobs/*/cancel", latency=1.0, latency_seconds=CANCEL_SECONDS))
    env = {**os.environ, **prefect_api}

    done = await asyncio.gather(asyncio.to_thread(reap, env), asyncio.to_thread(reap, env))

    for reaper in done:
        assert reaper.returncode == 0, reaper.stderr[-3000:]
    said = [int(re.search(r"Cancelled (\d+) job", reaper.stdout).group(1)) for reaper in done]  # type: ignore[union-attr]
    assert sorted(said) == [0, 3], [reaper.stdout for reaper in done]
    assert {held.job(job_id)["status"] for job_id in jobs} == {"Cancelled"}
    assert held.stats()["cancels"] == dict.fromkeys(jobs, 1)
