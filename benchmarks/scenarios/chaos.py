"""``chaos``: 300 jobs from 30 flow runs on 3 process workers, through faults, kills and an outage.

The topology a team deploys, on this machine: a ``prefect server start`` on a throwaway
PostgreSQL cluster (``tests.e2e.postgres``), a process work pool with three ``prefect worker
start`` processes, the resumer, the zombie-run automation and the reaper as the package documents
them, and the emulator answering a seeded 10 % of all IQP requests with a fault: 429 with and
without ``Retry-After``, 503, a dropped connection after the request took effect (a POST's job
created, its answer lost) or a hang. Thirty runs of ``benchmarks.children.chaos_flow`` (ten jobs
each: submit, wait, fetch) start at once; while they run, 30 % of them are cancelled through the
API, two workers are SIGKILLed with their flow processes (as a lost node: the runs they carried
die unhooked) and started again, and the Prefect server is stopped for a while and started again
on the same database. Then, once every run is final and the reaper has nothing left, the
emulator's own records and the Prefect API say whether any job was lost, duplicated or orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.children.chaos_flow import ENTRYPOINT, FLOW_NAME
from benchmarks.harness.child import log_tail
from benchmarks.harness.client import FLOW_RUN_PREFIX, SUBMIT_KEY_PREFIX
from benchmarks.harness.context import Bench
from benchmarks.harness.emulator import BACKEND_FOLDER, HOLD_SECONDS, start_emulator
from benchmarks.harness.prefect_server import PrefectServer, ServerProcess, throwaway_postgres
from benchmarks.summary import Figure, Goal, Row, Summary

TITLE = "chaos: flow runs on process workers through IQP faults, killed workers and a Prefect outage"
GOALS = [
    "lost jobs (a Completed run's job without a stored result): 0",
    "duplicate jobs (two jobs of one submit key both live or both done): 0",
    "orphaned jobs (left Queued/Running, or a Cancelled/Crashed run's job not cancelled): 0",
    "jobs with more than one cancel request: 0",
    "recovery (last fault to every run final): measured",
]
SEED_VARIABLE = "BENCHMARK_CHAOS_SEED"
POOL = "benchmark-chaos-pool"
DEPLOYMENT_NAME = "benchmark"
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"
PENDING = ("Queued", "Running")
RESULT_PREFIX = "qiskit-result-"
# Workers look for scheduled runs every second; flow runs beat every 30 s (Prefect's floor), so the
# zombie-run automation can crash a run whose worker died within a few minutes, not nine.
WORKER_ENV = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    "PREFECT_LOGGING_LEVEL": "INFO",
}
ENDINGS = ("COMPLETED", "CANCELLED", "CRASHED", "FAILED")
# The message with which the reaper crashes a run the zombie-run automation missed (cancel/reaper.py).
MISSED_BY_AUTOMATION = "twice the crash-zombie-runs window"
FAULT_KINDS = ("rate_limit", "rate_limit_no_header", "server_error", "drop_after", "hang")


@dataclass(frozen=True)
class Settings:
    runs: int = 30
    jobs_per_run: int = 10
    workers: int = 3
    worker_limit: int = 10
    killed_workers: int = 2
    cancelled_share: float = 0.3
    fault_share: float = 0.10
    hang_seconds: float = 120.0
    outage_seconds: float = 45.0
    release_every: float = 3.0
    zombie_window: float = 100.0
    reaper_every: float = 30.0
    resumer_every: float = 5.0
    final_timeout: float = 2400.0
    reap_passes: int = 5
    seed: int = 0

    @classmethod
    def of(cls, quick: bool, seed: int) -> Settings:
        if quick:
            return cls(
                runs=12,
                jobs_per_run=5,
                worker_limit=4,
                hang_seconds=20.0,
                outage_seconds=20.0,
                final_timeout=900.0,
                seed=seed,
            )
        return cls(seed=seed)


def backend_of(n: int) -> str:
    """Run ``n``'s backend: its jobs queue behind no other run's (the queues are FIFO per backend)."""
    return f"ibm_chaos_{n:02d}"


def fault_rule(settings: Settings) -> Any:
    """One rule over every IQP route: the share split evenly over the five kinds of fault."""
    from prefect_qiskit_jobs.emulator import FaultRule

    each = settings.fault_share / len(FAULT_KINDS)
    return FaultRule(
        route="*",
        **dict.fromkeys(FAULT_KINDS, each),
        server_error_status=503,
        hang_seconds=settings.hang_seconds,
        retry_after_seconds=1,
    )


def run(bench: Bench) -> Summary:
    from prefect_qiskit_jobs.emulator import EmulatorConfig

    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**31))
    settings = Settings.of(bench.quick, seed)
    print(
        f"chaos seed: {seed} (set {SEED_VARIABLE}={seed} to draw the same faults, cancels and kills); "
        f"hangs held {settings.hang_seconds:g} s"
        + (" (quick; the full run holds 120 s)" if bench.quick else ""),
        flush=True,
    )
    config = EmulatorConfig(
        backends=tuple(f"{backend_of(n)}={BACKEND_FOLDER}" for n in range(settings.runs)),
        queue_delay=HOLD_SECONDS,
        concurrency=50,
        faults=(fault_rule(settings),),
        fault_seed=seed,
    )
    scratch = bench.scratch("chaos")
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(throwaway_postgres())
        emulator = stack.enter_context(start_emulator(config, bench.cpus, bench.code))
        server = ServerProcess(scratch / "prefect-home", bench.code, postgres.url)
        stack.callback(server.stop)
        server.start()
        env = bench.environment(emulator.environment(), server.server.environment(), WORKER_ENV)
        _set_up(server.server, bench, settings, env)
        fleet = Fleet(env, bench.code.directory, server.server.home, settings)
        stack.callback(fleet.stop)
        fleet.start()
        try:
            measured = asyncio.run(measure(emulator, server, fleet, settings))
        except Exception as exc:
            raise RuntimeError(f"{exc}\nworker log:\n{log_tail(fleet.logs[0])}") from exc
    # The raw records (every job, the emulator's counters, the states, the timeline) for --keep.
    (scratch / "raw.json").write_text(json.dumps(measured, indent=1, default=str))
    return Summary(
        scenario="chaos",
        title=TITLE,
        quick=bench.quick,
        goals=GOALS,
        rows=[row(settings, measured)],
        settings={**asdict(settings), "backends": f"{backend_of(0)}..., each {BACKEND_FOLDER}", **WORKER_ENV},
        notes=notes(settings),
    )


def _set_up(server: PrefectServer, bench: Bench, settings: Settings, env: dict[str, str]) -> None:
    """The pool, the deployment (from the code under test) and the zombie-run automation."""
    from prefect.flows import Flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.e2e.conftest import create_process_pool

    with temporary_settings({PREFECT_API_URL: server.url}):
        create_process_pool(POOL)
        flow: Any = Flow.from_source(source=str(bench.code.directory), entrypoint=ENTRYPOINT)
        flow.deploy(
            name=DEPLOYMENT_NAME, work_pool_name=POOL, print_next_steps=False, build=False, push=False
        )
    command = [sys.executable, "-m", "prefect_qiskit_jobs", "automations", "crash-zombies"]
    command += ["--within", f"{settings.zombie_window:g}"]
    done = subprocess.run(
        command, cwd=bench.code.directory, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"installing the zombie-run automation failed:\n{done.stdout}{done.stderr}")


@dataclass
class Fleet:
    """The workers, the resumer and a reaper loop: the processes that look after the runs."""

    env: dict[str, str]
    cwd: Path
    home: Path
    settings: Settings
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    reaper_outputs: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _reaper: threading.Thread | None = None

    def _start(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def start_worker(self, n: int) -> None:
        log = self.home / f"worker-{n}.log"
        command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"]
        command += ["--name", f"chaos-worker-{n}", "--limit", str(self.settings.worker_limit)]
        process = self._start(command, log)
        if n < len(self.workers):
            self.workers[n] = process
        else:
            self.workers.append(process)
            self.logs.append(log)

    def start(self) -> None:
        for n in range(self.settings.workers):
            self.start_worker(n)
        resumer = [sys.executable, "-m", "prefect_qiskit_jobs", "resumer"]
        resumer += ["--every", f"{self.settings.resumer_every:g}"]
        self.others.append(self._start(resumer, self.home / "resumer.log"))
        self._reaper = threading.Thread(target=self._reap_loop, name="chaos-reaper", daemon=True)
        self._reaper.start()

    def reap(self, grace_seconds: float | None = None) -> str:
        """One ``prefect-qiskit-jobs reap`` pass; its output (stdout, or why it failed)."""
        command = [sys.executable, "-m", "prefect_qiskit_jobs", "reap"]
        if grace_seconds is not None:
            command += ["--grace-seconds", f"{grace_seconds:g}"]
        try:
            done = subprocess.run(
                command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=600, check=False
            )
        except subprocess.TimeoutExpired:
            output = "reap: still running after 600 s; stopped"
        else:
            output = done.stdout.strip() if done.returncode == 0 else f"reap failed: {done.stderr[-500:]}"
            with (self.home / "reaper.log").open("a") as log:
                log.write(done.stderr)
        self.reaper_outputs.append(output)
        return output

    def flow_runs(self) -> list[str]:
        """The runs that have a flow process now, under any worker."""
        found: list[str] = []
        for worker in self.workers:
            if worker.poll() is None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    found += runs_under(worker.pid)
        return found

    def _reap_loop(self) -> None:
        """The reaper as a deployment runs it, every few minutes: here every ``reaper_every`` s."""
        while not self._stop.wait(self.settings.reaper_every):
            self.reap()

    def stop_loop(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join()

    def stop(self) -> None:
        from tests.e2e.conftest import stop_processes

        self.stop_loop()
        stop_processes([*self.workers, *self.others], 30)


def runs_under(pid: int) -> list[str]:
    """The flow run ids of the flow processes a worker has started."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if run_id := child.environ().get("PREFECT__FLOW_RUN_ID"):
                found.append(run_id)
    return found


def _jobs_by_run(emulator: Any) -> dict[str, list[dict[str, Any]]]:
    by_run: dict[str, list[dict[str, Any]]] = {}
    for job in emulator.jobs():
        for tag in job["tags"]:
            if tag.startswith(FLOW_RUN_PREFIX):
                by_run.setdefault(tag[len(FLOW_RUN_PREFIX) :], []).append(job)
    return by_run


async def _eventually(check: Any, timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


async def measure(emulator: Any, server: ServerProcess, fleet: Fleet, settings: Settings) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.server.url}):
        async with get_client() as prefect:
            chaos = Chaos(prefect, emulator, server, fleet, settings)
            runs = await chaos.start_runs()
            cancelled = await chaos.cancel_some(runs)
            killed = await chaos.kill_workers()
            last_fault, unreachable = await chaos.outage()
            dead = {run_id for carried in killed.values() for run_id in carried}
            releaser = asyncio.create_task(chaos.release_live(runs, dead))
            try:
                final, ended_at = await chaos.until_final(runs)
            finally:
                releaser.cancel()
            passes = await chaos.reap_until_clean(final)
            first_final = {run_id: _state_json(state) for run_id, state in final.items()}
            jobs = await asyncio.to_thread(emulator.jobs)
            stats = await asyncio.to_thread(emulator.stats)
            states = {
                str(flow_run.id): flow_run.state
                for flow_run in await prefect.read_flow_runs(
                    flow_run_filter=_ids_filter(runs), limit=len(runs)
                )
            }
    return {
        "runs": runs,
        "cancelled": cancelled,
        "killed": killed,
        "last_fault": last_fault,
        "unreachable": unreachable,
        "ended_at": ended_at,
        "final": {run_id: _state_json(state) for run_id, state in states.items()},
        "first_final": first_final,
        "jobs": jobs,
        "stats": stats,
        "stored": _stored_results(server.server.home),
        "reap_passes": passes,
        "reaper_outputs": fleet.reaper_outputs,
        "events": chaos.events,
    }


class Chaos:
    """The run's phases, in order: start the runs, cancel some, kill workers, stop the server, wait, reap."""

    def __init__(self, prefect: Any, emulator: Any, server: ServerProcess, fleet: Fleet, settings: Settings):
        self.prefect, self.emulator, self.server, self.fleet = prefect, emulator, server, fleet
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.events: list[tuple[float, str]] = []

    def event(self, what: str) -> None:
        self.events.append((time.time(), what))
        print(f"chaos {time.strftime('%H:%M:%S')}: {what}", flush=True)

    async def submitted(self) -> dict[str, list[dict[str, Any]]]:
        return await asyncio.to_thread(_jobs_by_run, self.emulator)

    async def start_runs(self) -> list[str]:
        """Every run created at once, once the workers poll; returns when half have jobs on the emulator."""
        settings = self.settings
        if not await _eventually(lambda: _polling(self.prefect, settings.workers), 300, every=2):
            raise RuntimeError("the workers never all polled the pool")
        deployment = await self.prefect.read_deployment_by_name(DEPLOYMENT)
        runs = []
        for n in range(settings.runs):
            parameters = {"count": settings.jobs_per_run, "backend": backend_of(n)}
            created = await self.prefect.create_flow_run_from_deployment(deployment.id, parameters=parameters)
            runs.append(str(created.id))
        self.event(f"{len(runs)} flow runs created")

        async def half_submitted() -> bool:
            by_run = await self.submitted()
            return sum(run_id in by_run for run_id in runs) * 2 >= len(runs)

        await _eventually(half_submitted, 600, every=2)
        self.event("half the runs have jobs on the emulator")
        return runs

    async def cancel_some(self, runs: list[str]) -> list[str]:
        """Set the drawn share of runs Cancelling through the API, each once it has jobs (2 min at most)."""
        from prefect.client.schemas.objects import State, StateType

        cancelled = self.rng.sample(runs, round(self.settings.cancelled_share * len(runs)))

        async def has_jobs(run_id: str) -> bool:
            return run_id in await self.submitted()

        await asyncio.gather(*(_eventually(lambda r=r: has_jobs(r), 120, every=2) for r in cancelled))
        for run_id in cancelled:
            await self.prefect.set_flow_run_state(run_id, State(type=StateType.CANCELLING, name="Cancelling"))
        self.event(f"{len(cancelled)} runs set Cancelling through the API")
        return cancelled

    async def kill_workers(self) -> dict[int, list[str]]:
        """SIGKILL the drawn workers with their flow processes, one after the other; start each again."""
        from tests.e2e.conftest import kill_tree

        killed: dict[int, list[str]] = {}
        candidates = list(range(self.settings.workers))
        self.rng.shuffle(candidates)
        for n in candidates[: self.settings.killed_workers]:
            worker = self.fleet.workers[n]
            killed[n] = runs_under(worker.pid)
            await asyncio.to_thread(kill_tree, worker.pid)
            worker.wait()
            self.event(f"worker {n} SIGKILLed with its {len(killed[n])} flow process(es)")
            await asyncio.sleep(5)
            self.fleet.start_worker(n)
            self.event(f"worker {n} started again")
            await asyncio.sleep(5)
        return killed

    async def outage(self) -> tuple[float, float]:
        """Stop the Prefect server, wait, start it again on the same port and database.

        Returns when it answered again and how long it was unreachable (the wait plus its start-up).
        """
        self.server.stop()
        stopped = time.time()
        self.event("Prefect server stopped")
        await asyncio.sleep(self.settings.outage_seconds)
        await asyncio.to_thread(self.server.start)
        back = time.time()
        self.event("Prefect server started again on the same database (the last scheduled fault)")
        return back, back - stopped

    async def release_live(self, runs: list[str], dead: set[str]) -> None:
        """From the last fault on, let the queued jobs of live runs run (the others' stay queued).

        Until then every job is held queued, so that cancels, kills and the outage all meet pending
        jobs; a dead run's jobs stay queued, as on a long IBM queue, until something cancels them.
        Live: the run has a flow process under a worker and was not carried by a killed worker
        (``dead``). Its process, not its state, says so: the zombie-run automation may mark a live
        run Crashed when the outage kept its heartbeats away, and it goes on all the same.
        """
        released: set[str] = set()
        while True:
            with contextlib.suppress(Exception):
                live = set(await asyncio.to_thread(self.fleet.flow_runs)) - dead
                for run_id, jobs in (await self.submitted()).items():
                    for job in jobs:
                        if run_id in live and job["status"] == "Queued" and job["id"] not in released:
                            await asyncio.to_thread(self.emulator.release, job["id"])
                            released.add(job["id"])
            await asyncio.sleep(self.settings.release_every)

    async def until_final(self, runs: list[str]) -> tuple[dict[str, Any], float | None]:
        """Each run's first final state, and when all had one (None: not within ``final_timeout``)."""
        final: dict[str, Any] = {}

        async def all_final() -> bool:
            try:
                found = await self.prefect.read_flow_runs(flow_run_filter=_ids_filter(runs), limit=len(runs))
            except Exception:
                return False
            for flow_run in found:
                if flow_run.state is not None and flow_run.state.is_final():
                    final.setdefault(str(flow_run.id), flow_run.state)
            # A run marked final while its process goes on (crashed by mistake) is not over yet.
            going_on = set(await asyncio.to_thread(self.fleet.flow_runs)) & set(runs)
            return len(final) == len(runs) and not going_on

        ended = await _eventually(all_final, self.settings.final_timeout, every=2)
        self.event("every run final" if ended else f"{len(runs) - len(final)} run(s) not final in time")
        return final, time.time() if ended else None

    async def reap_until_clean(self, final: dict[str, Any]) -> int:
        """``reap --grace-seconds 0`` until no Cancelled/Crashed run has a pending job; the passes made."""
        self.fleet.stop_loop()
        passes = 0
        while passes < self.settings.reap_passes:
            passes += 1
            output = await asyncio.to_thread(self.fleet.reap, 0.0)
            self.event(f"reap pass {passes}: {output.splitlines()[0] if output else '(no output)'}")
            await asyncio.sleep(5)  # a Running job's cancel takes the emulator 2 s
            if not await asyncio.to_thread(_pending_of_ended, self.emulator, final):
                break
        return passes


async def _polling(prefect: Any, workers: int) -> bool:
    return len(await prefect.read_workers_for_work_pool(POOL)) >= workers


def _ids_filter(runs: list[str]) -> Any:
    from uuid import UUID

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return FlowRunFilter(id=FlowRunFilterId(any_=[UUID(r) for r in runs]))


def _state_json(state: Any) -> dict[str, Any]:
    if state is None:
        return {"type": None, "name": None, "at": None, "message": None}
    return {
        "type": state.type.value,
        "name": state.name,
        "at": state.timestamp.timestamp() if state.timestamp else None,
        "message": state.message,
    }


def _pending_of_ended(emulator: Any, final: dict[str, Any]) -> int:
    """Jobs still Queued or Running whose run ended Cancelled or Crashed: what the reaper is for."""
    ended = {r for r, state in final.items() if state.type.value in ("CANCELLED", "CRASHED")}
    by_run = _jobs_by_run(emulator)
    return sum(job["status"] in PENDING for r in ended for job in by_run.get(r, []))


def _stored_results(home: Path) -> list[str]:
    """Job ids with a result record in the workers' result storage (their Prefect home)."""
    return sorted(
        path.name[len(RESULT_PREFIX) :] for path in home.rglob(f"{RESULT_PREFIX}*") if path.is_file()
    )


def _iso(text: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp() if text else None


def judge(measured: dict[str, Any]) -> dict[str, Any]:
    """The checks, from the emulator's records and the Prefect API's states."""
    final: dict[str, dict[str, Any]] = measured["final"]
    jobs: list[dict[str, Any]] = measured["jobs"]
    # A cancel request a fault refused before it took effect (429, 503, a drop) did nothing; the
    # re-sent one is the job's cancel, so only the requests that reached IBM's handler count.
    sent: dict[str, int] = measured["stats"].get("cancels", {})
    refused: dict[str, int] = measured["stats"].get("cancels_refused", {})
    cancels = {job_id: n - refused.get(job_id, 0) for job_id, n in sent.items()}
    stored = set(measured["stored"])
    run_of: dict[str, str] = {}
    keys: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        for tag in job["tags"]:
            if tag.startswith(FLOW_RUN_PREFIX):
                run_of[job["id"]] = tag[len(FLOW_RUN_PREFIX) :]
            if tag.startswith(SUBMIT_KEY_PREFIX):
                keys.setdefault(tag, []).append(job)
    types = Counter(state["type"] for state in final.values())
    crashed_by_reaper = sum(MISSED_BY_AUTOMATION in (state.get("message") or "") for state in final.values())
    # Crashed while their process lived on (heartbeats kept away by the outage), then ended otherwise.
    first_final: dict[str, dict[str, Any]] = measured.get("first_final", {})
    crashed_alive = sum(
        state["type"] == "CRASHED" and final.get(run_id, {}).get("type") != "CRASHED"
        for run_id, state in first_final.items()
    )
    lost = [
        job["id"]
        for job in jobs
        if final.get(run_of.get(job["id"], ""), {}).get("type") == "COMPLETED" and job["id"] not in stored
    ]
    duplicates = [
        key
        for key, same in keys.items()
        if sum(j["status"] in PENDING for j in same) >= 2
        or sum(j["status"] == "Completed" for j in same) >= 2
    ]
    twice = [key for key, same in keys.items() if len(same) > 1]
    left_pending = [job["id"] for job in jobs if job["status"] in PENDING]
    ended_runs = {r for r, s in final.items() if s["type"] in ("CANCELLED", "CRASHED")}
    of_ended = [job for job in jobs if run_of.get(job["id"]) in ended_runs]
    not_cancelled = [
        job["id"]
        for job in of_ended
        if job["status"] != "Cancelled"
        and (
            job["status"] in PENDING
            or (_iso(job["finished"]) or 0) > (final[run_of[job["id"]]]["at"] or float("inf"))
        )
    ]
    return {
        "types": types,
        "lost": lost,
        "duplicates": duplicates,
        "twice": twice,
        "orphans": sorted(set(left_pending) | set(not_cancelled)),
        "left_pending": left_pending,
        "of_ended": len(of_ended),
        "cancelled_of_ended": sum(job["status"] == "Cancelled" for job in of_ended),
        "one_cancel_of_ended": sum(cancels.get(job["id"], 0) == 1 for job in of_ended),
        "many_cancels": [job_id for job_id, n in cancels.items() if n > 1],
        "cancel_requests": sum(sent.values()),
        "cancels_refused": sum(refused.values()),
        "keys": len(keys),
        "failed_jobs": sum(job["status"] == "Failed" for job in jobs),
        "crashed_by_reaper": crashed_by_reaper,
        "crashed_alive": crashed_alive,
    }


def _faults(stats: dict[str, Any]) -> str:
    kinds: Counter[str] = Counter()
    for per_kind in stats.get("faults", {}).values():
        kinds.update(per_kind)
    total = sum(stats.get("routes", {}).values())
    shown = ", ".join(f"{kinds[k]} {k}" for k in sorted(kinds))
    return f"{sum(kinds.values())} of {total} requests ({shown})"


def row(settings: Settings, measured: dict[str, Any]) -> Row:
    checks = judge(measured)
    types = checks["types"]
    ended_at, last_fault = measured["ended_at"], measured["last_fault"]
    n_runs, n_jobs = settings.runs, settings.runs * settings.jobs_per_run
    return Row(
        f"{n_jobs} jobs from {n_runs} runs on {settings.workers} workers",
        [
            Figure("seed", "seed", str(settings.seed)),
            Figure("faults", "IQP faults injected", _faults(measured["stats"])),
            Figure(
                "disruptions",
                "runs cancelled / workers killed (runs they carried) / Prefect API unreachable",
                f"{len(measured['cancelled'])} / {len(measured['killed'])} "
                f"({sum(len(r) for r in measured['killed'].values())}) / {measured['unreachable']:.0f} s",
            ),
            Figure(
                "states",
                "runs Completed / Cancelled / Crashed / Failed / other",
                " / ".join(
                    [*(str(types.get(t, 0)) for t in ENDINGS), str(n_runs - sum(types[t] for t in ENDINGS))]
                ),
            ),
            Figure("jobs", "jobs created (submit keys)", f"{len(measured['jobs'])} ({checks['keys']})"),
            Figure("lost", "lost jobs", len(checks["lost"]), goal=Goal("==", 0)),
            Figure("duplicates", "duplicate jobs", len(checks["duplicates"]), goal=Goal("==", 0)),
            Figure("orphans", "orphaned jobs", len(checks["orphans"]), goal=Goal("==", 0)),
            Figure(
                "many_cancels",
                "jobs with > 1 cancel request",
                len(checks["many_cancels"]),
                goal=Goal("==", 0),
            ),
            Figure(
                "recovery",
                "recovery: last fault to every run final",
                None if ended_at is None else ended_at - last_fault,
                "s",
                1,
                beside=f"bound: the zombie window, {settings.zombie_window:g} s (twice that where the "
                "automation missed a run), plus a reaper cycle",
            ),
            Figure(
                "crashed_alive",
                "runs marked Crashed while their process lived on (then ended otherwise)",
                checks["crashed_alive"],
            ),
            Figure(
                "crashed_by_reaper",
                "runs Crashed by the automation / by the reaper (window missed by the automation)",
                f"{types.get('CRASHED', 0) - checks['crashed_by_reaper']} / {checks['crashed_by_reaper']}",
            ),
            Figure("twice", "submit keys with more than one job", len(checks["twice"])),
            Figure("left_pending", "jobs left Queued/Running", len(checks["left_pending"])),
            Figure(
                "of_ended",
                "jobs of Cancelled/Crashed runs: Cancelled / with 1 cancel request / all",
                f"{checks['cancelled_of_ended']} / {checks['one_cancel_of_ended']} / {checks['of_ended']}",
            ),
            Figure(
                "cancel_requests",
                "cancel requests in all / refused by an injected fault (sent again)",
                f"{checks['cancel_requests']} / {checks['cancels_refused']}",
            ),
            Figure("failed_jobs", "jobs Failed", checks["failed_jobs"]),
            Figure("reap_passes", "reap passes after every run was final", measured["reap_passes"]),
        ],
    )


def notes(settings: Settings) -> list[str]:
    return [
        f"Faults: one emulator rule over every IQP route; each request draws once from a generator "
        f"seeded with the printed seed: {settings.fault_share:.0%} get a fault, split evenly over 429 "
        f"with Retry-After, 429 without it, 503, a dropped connection after the request took effect "
        f"(a POST /jobs creates its job and loses its answer) and a hang of {settings.hang_seconds:g} s "
        "(the issue's 2 minutes; --quick holds 20 s). The faults stay on until the end, reaper passes "
        "included.",
        "Timeline: all runs are created at once from a deployment on a process pool (three "
        f"`prefect worker start --limit {settings.worker_limit}`). Once half of them have jobs on the "
        f"emulator, {settings.cancelled_share:.0%} (drawn with the seed) are set Cancelling through the "
        f"API once they have jobs; then {settings.killed_workers} workers (drawn) are SIGKILLed with their "
        "flow processes, as a lost node, and each is started again 5 s later; then the Prefect server is "
        f"kept stopped for {settings.outage_seconds:g} s, then started again on the same PostgreSQL "
        "database (port and home unchanged); the API was unreachable for that plus the server's start-up "
        "(shown). That restart is the last scheduled fault; recovery is from it to "
        "every run final in the Prefect API.",
        f"Layers as the package documents them: `cancel_jobs_on_exit` on the flow, one `prefect-qiskit-jobs "
        f"resumer --every {settings.resumer_every:g}`, the zombie-run automation (`automations "
        f"crash-zombies --within {settings.zombie_window:g}`, heartbeats every 30 s) and `reap` every "
        f"{settings.reaper_every:g} s; once every run is final, `reap --grace-seconds 0` until no "
        f"Cancelled/Crashed run has a pending job (at most {settings.reap_passes} passes).",
        "Lost: a job of a Completed run with no `qiskit-result-<job id>` record in the workers' result "
        "storage. Duplicate: a `prefect-submit:` key with two jobs both Queued/Running or both Completed "
        "(a key with a second job that was cancelled is counted apart). Orphaned: a job left Queued/Running "
        "at the end, or a job of a Cancelled/Crashed run that went on to finish after the run ended "
        "without being cancelled. Cancel requests are the emulator's counts per job (409s included) that "
        "reached its handler: a request an injected fault refused before it took effect (429, 503, a "
        "dropped connection, a hang the client gave up on) did nothing and is shown apart; its re-send "
        "is the job's cancel. A run carried by a killed worker is dead: its jobs are never released "
        "(before 2026-12-06 they were while it still read Running, and could finish before any layer "
        "could cancel them, which the scenario counted as orphaned).",
    ]
