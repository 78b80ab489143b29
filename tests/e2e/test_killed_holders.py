"""Processes SIGKILLed while they hold what others wait for: every slot and lock comes back within its lease.

Two processes are killed at once, on the session's Prefect server (on PostgreSQL) and an emulator
of this module's own:

- a flow process that holds a **job creation slot** (its first job was created under a limit of
  1 per 90 s, so the slot stays taken for the window) and the **in-flight cap's lock** (its second
  submit counts the run's pending jobs under it, and IBM never answers that count);
- a ``prefect-qiskit-jobs reap`` that holds the **reaper lock** while IBM takes ten minutes to
  answer its cancels of a failed run's two jobs.

Then, with IBM answering again: another process's submit with the same account gets a creation
slot; the in-flight lock is taken; a second ``reap`` takes the reaper lock and the failed run's
jobs end Cancelled; the killed run has its first job only.

**Mid-result-write** is not killed for real here (Prefect takes only saved storage blocks, so a
block that stops halfway would have to be registered on the server): the test writes what a
kill leaves, the first half of the record under its key (``LocalFileSystem`` writes in place),
and fetching the result again stores it once, whole.
Each waits at most the lease of what it waits for (60 s for the locks, the window plus 1.45 s for a
creation slot whose POST was answered: 91.8 s here) and the server's next pass over expired leases (15 s).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import PrefectClient
from prefect.filesystems import LocalFileSystem

from prefect_qiskit_jobs import IBMQuantumCredentials, afetch_job_result, asubmit_sampler_job, read_job_result
from prefect_qiskit_jobs.cancel.reaper import run_cancels_limit
from prefect_qiskit_jobs.emulator import EmulatorConfig, FaultRule, RunningEmulator, start_emulator
from prefect_qiskit_jobs.errors import ResultNotStoredError
from prefect_qiskit_jobs.ibm.tags import flow_run_tag
from prefect_qiskit_jobs.limits.inflight import InFlightScope
from prefect_qiskit_jobs.limits.rate import limit_name
from prefect_qiskit_jobs.limits.slots import held_alone_sync
from prefect_qiskit_jobs.results.fetch import result_key
from tests.e2e.conftest import ROOT, PrefectServer, eventually, jobs_of_run, kill_tree
from tests.e2e.scenario_flows import bell_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # leases to end, on a loaded machine

LIMIT = "1/90"
GUARD = 240.0  # seconds: only a leaked slot or lock ever reaches this
SHOTS = 16
REAPED_BACKEND = "ibmq_lima"
RESULTS_ROUTE = "GET /jobs/{job_id}/results"

HOLDER = """
import sys
from prefect import flow
from prefect.context import FlowRunContext
from prefect_qiskit_jobs import submit_sampler_job
from tests.e2e.scenario_flows import BACKEND, bell_for


@flow
def holder() -> None:
    bell = bell_for()
    first = submit_sampler_job([bell], backend=BACKEND, options={"default_shots": 16})
    print("SUBMITTED", first.job_id, FlowRunContext.get().flow_run.id, flush=True)
    sys.stdin.readline()  # the test makes IBM's next count of this run's pending jobs hang
    submit_sampler_job([bell], backend=BACKEND, options={"default_shots": 16})


holder()
"""

SUBMITTER = """
from prefect import flow
from prefect_qiskit_jobs import submit_sampler_job
from tests.e2e.scenario_flows import BACKEND, bell_for

print("CREATED", flow(name="after-the-kill")(lambda: submit_sampler_job(
    [bell_for()], backend=BACKEND, options={"default_shots": 16}
).job_id)(), flush=True)
"""


class LeftBehind(RuntimeError):
    """The run fails with its jobs queued and no hook: only a reaper cancels them."""


@pytest.fixture(scope="module")
def held_iqp() -> Iterator[RunningEmulator]:
    """Jobs stay Queued until released; nothing of another test queues ahead of them.

    The reaped run's jobs queue on a backend of their own: a backend's queue is FIFO, and a
    released job would wait behind them.
    """
    with start_emulator(
        EmulatorConfig(queue_delay=600, concurrency=4, backends=("manila", "lima"))
    ) as emulator:
        yield emulator


def child_env(server: PrefectServer, emulator: RunningEmulator) -> dict[str, str]:
    env = {**os.environ, **server.environment(), **emulator.environment()}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT"] = LIMIT
    env["PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT"] = "10"
    return env


def started(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """A process whose lines the test reads, and can write to."""
    pipe = subprocess.PIPE
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=pipe, stdout=pipe, stderr=subprocess.STDOUT, text=True
    )


def reaper(env: dict[str, str]) -> subprocess.Popen[str]:
    reap = ["reap", "--include-failed", "--grace-seconds", "0"]
    return started([sys.executable, "-m", "prefect_qiskit_jobs", *reap], env)


async def line_from(process: subprocess.Popen[str], word: str) -> list[str]:
    """The next line the process prints that starts with ``word``, split."""
    assert process.stdout is not None
    said: list[str] = []
    while True:
        try:
            line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), GUARD)
        except TimeoutError:
            raise AssertionError(f"no {word} from the process; it said: {''.join(said)[-3000:]}") from None
        if not line:
            raise AssertionError(f"the process exited before printing {word}: {''.join(said)[-3000:]}")
        if line.startswith(word):
            return line.split()
        said.append(line)


async def taken(prefect: PrefectClient, names: list[str]) -> bool:
    """Whether every named limit has a slot taken now."""
    for name in names:
        try:
            limit = await prefect.read_global_concurrency_limit_by_name(name)
        except Exception:  # not created yet
            return False
        if limit.active_slots < 1:
            return False
    return True


async def test_slots_locks_and_a_result_write_of_killed_processes_come_back_within_their_leases(
    prefect_server: PrefectServer,
    held_iqp: RunningEmulator,
    prefect: PrefectClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emu = held_iqp
    for name, value in emu.environment().items():
        monkeypatch.setenv(name, value)
    credentials = IBMQuantumCredentials.from_environment()

    bell = bell_for(REAPED_BACKEND)

    @flow
    async def left_behind() -> None:
        for _ in range(2):
            await asubmit_sampler_job([bell], backend=REAPED_BACKEND, options={"default_shots": SHOTS})
        raise LeftBehind("no hook: a reaper must find these")

    failed = await left_behind(return_state=True)
    reaped = jobs_of_run(emu, failed.state_details.flow_run_id)
    assert len(reaped) == 2

    env = child_env(prefect_server, emu)
    storage = tmp_path / "results"
    holder = started([sys.executable, "-c", HOLDER], env)
    first_reaper: subprocess.Popen[str] | None = None
    try:
        _, job_id, holder_run = await line_from(holder, "SUBMITTED")
        emu.set_faults(  # the count hangs at each of the client's tries, the cancels take 10 min
            FaultRule(route="GET /jobs", query=f"*pending=true*{holder_run}*", hang=1.0),
            FaultRule(route="POST /jobs/*/cancel", latency=1.0, latency_seconds=600),
        )
        assert holder.stdin is not None
        holder.stdin.write("GO\n")
        holder.stdin.flush()
        first_reaper = reaper(env)
        inflight = InFlightScope(10, (flow_run_tag(holder_run),), "flow run").limit_name(credentials)
        held = [limit_name(credentials), inflight, run_cancels_limit(credentials)]

        async def all_held() -> bool:
            return await taken(prefect, held) and emu.stats()["cancels"] != {}

        await eventually(all_held, GUARD, "the killed processes to hold a slot of each limit")
    finally:
        for process in (holder, first_reaper):
            if process is not None and process.poll() is None:
                kill_tree(process.pid)
    emu.set_faults()

    async def submit_after() -> str:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", SUBMITTER],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.split("CREATED")[-1].strip()

    async def reap_after() -> str:
        second = reaper(env)
        output, _ = await asyncio.to_thread(second.communicate)
        assert second.returncode == 0, output[-3000:]
        return output

    created, _, _ = await asyncio.wait_for(
        asyncio.gather(submit_after(), reap_after(), asyncio.to_thread(lock_once, inflight)), GUARD
    )

    assert created in {job["id"] for job in emu.jobs()}
    assert [emu.job(job["id"])["status"] for job in reaped] == ["Cancelled", "Cancelled"]
    # The killed holder's second submit never got past its count: its run has its first job only.
    assert [job["id"] for job in jobs_of_run(emu, holder_run)] == [job_id]

    # A result write cut by a kill: LocalFileSystem writes a record in place, so the kill leaves
    # its first part under the key. The next fetch must take it for no record, fetch the result
    # again and store it whole, once.
    emu.release(job_id)

    async def done() -> bool:
        return emu.job(job_id)["status"] == "Completed"

    await eventually(done, GUARD, f"job {job_id} to run")
    whole, cut = await saved_storage(tmp_path / "whole", "whole"), await saved_storage(storage, "cut")
    counts = await fetched(whole, job_id)
    record = (tmp_path / "whole" / result_key(job_id)).read_bytes()
    stored = storage / result_key(job_id)
    stored.parent.mkdir(parents=True)
    stored.write_bytes(record[: len(record) // 2])
    with pytest.raises(ResultNotStoredError):  # half a record is not a result
        read_job_result(job_id, cut)

    assert await fetched(cut, job_id) == counts
    assert await fetched(cut, job_id) == counts  # from storage now, not from IBM
    assert emu.stats()["routes"][RESULTS_ROUTE] == 2  # the first fetch, and the one after the cut write
    assert read_job_result(job_id, cut)[0].data.meas.get_counts() == counts
    assert [path.name for path in storage.iterdir()] == [stored.name]  # one record, whole


async def fetched(storage: LocalFileSystem, job_id: str) -> dict[str, int]:
    """The job's counts, fetched in a flow run with ``storage`` as result storage."""

    @flow
    async def fetch() -> dict[str, int]:
        result = await afetch_job_result.with_options(result_storage=storage)(job_id)
        counts: dict[str, int] = result[0].data.meas.get_counts()
        return counts

    return await fetch()


async def saved_storage(path: Path, name: str) -> LocalFileSystem:
    """A local folder as result storage, saved: Prefect takes saved result storage blocks only."""
    storage = LocalFileSystem(basepath=str(path))
    await storage.asave(f"killed-holders-{name}", overwrite=True)
    return storage


def lock_once(name: str) -> None:
    """Take and give back a one-slot lock, as the next holder does."""
    with held_alone_sync([name]):
        pass
