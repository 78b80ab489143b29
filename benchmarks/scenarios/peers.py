"""``peers``: the same workload through the package, prefect-qiskit, qcsc-prefect-qiskit and the raw client.

One emulator and one Prefect API serve all four systems in the same run. Each system has its own
API key (the emulator counts requests per account) and its own copy of the device (``ibmq_manila``
served four times under four names, each with its own queue), so the systems' requests and jobs
are told apart while they run side by side; the peers run in virtual environments of their own,
installed from the registry (``harness/venvs.py``).

Main cases: N Sampler jobs (one pub each) of a 2-qubit Bell or a 5-qubit GHZ circuit, with a queue
delay; for each case the four systems' flows start together, each in its long-lived process (set
up once: imports, backend, circuits). The emulator holds every job, and a releaser lets each job
start once it has queued for the case's delay. Then two behaviours, also side by side: a served
flow run of 10 held jobs set Cancelling through the API (jobs left Queued or Running afterwards
are orphans), and a flow whose first attempt fails after its jobs are done and whose one retry
runs it again (jobs created beyond 10 are duplicates).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.children.peer_flow import DEPLOYMENT_NAME, READY, RESULT, SYSTEMS, flow_name
from benchmarks.harness.child import log_tail
from benchmarks.harness.context import Bench
from benchmarks.harness.emulator import HOLD_SECONDS, start_emulator
from benchmarks.harness.prefect_server import PrefectServer, prefect_server
from benchmarks.harness.sampling import ProcessSampler
from benchmarks.harness.stats import MB
from benchmarks.harness.venvs import installed_versions, peer_python
from benchmarks.summary import Figure, Goal, Row, Summary

TITLE = (
    "peers: the same jobs through prefect-qiskit-jobs, prefect-qiskit, qcsc-prefect-qiskit and the raw client"
)
GOALS = [
    "prefect-qiskit-jobs best or equal on every figure of every case (wall time, IQP requests per "
    "job, peak threads, peak RSS, worker-seconds held)",
    "prefect-qiskit-jobs the only system with no orphaned jobs after a cancelled flow run and no "
    "duplicate jobs after a flow retry",
]
OURS = "prefect-qiskit-jobs"
PEERS = {"prefect-qiskit": "prefect-qiskit==0.2.1", "qcsc-prefect-qiskit": "qcsc-prefect-qiskit==0.3.0"}
SHORT = {OURS: "jobs", "prefect-qiskit": "pq", "qcsc-prefect-qiskit": "qcsc", "raw client": "raw"}
FAKE = "manila"
# IBM Cloud's own routes (IAM, Global Search, Global Catalog): counted apart from the runtime API's.
CLOUD_ROUTES = ("POST /iam/", "POST /global-search/", "GET /global-catalog/")
POLL_QUICKLY = {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}


@dataclass(frozen=True)
class Case:
    count: int
    circuit: str
    queue_seconds: float

    @property
    def label(self) -> str:
        seconds = self.queue_seconds
        queue = f"{seconds / 60:g} min" if seconds >= 120 else f"{seconds:g} s"
        return f"N={self.count} {self.circuit}, {queue} queue"


@dataclass(frozen=True)
class Settings:
    counts: tuple[int, ...]
    queues: tuple[float, ...]
    circuits: tuple[str, ...] = ("bell", "ghz")
    shots: int = 100
    concurrency: int = 50
    behaviour_jobs: int = 10
    orphan_grace: float = 20.0  # seconds after the run is final that its jobs may still be cancelled
    case_timeout: float = 1800.0
    long_counts: tuple[int, ...] | None = None  # the N run with a queue of 2 min or more (None: all)

    def cases(self) -> list[Case]:
        def counts(queue: float) -> tuple[int, ...]:
            return self.long_counts if queue >= 120 and self.long_counts is not None else self.counts

        return [Case(n, c, q) for q in self.queues for n in counts(q) for c in self.circuits]


def settings_for(quick: bool) -> Settings:
    """Quick: N = 1, 10 and 0 s, 30 s. Full: N = 1, 10, 100 and 0 s, 30 s, 5 min; the long cases take
    about 6 minutes each, so ``BENCHMARK_PEERS_LONG_N=100`` (say) runs the 5-minute queue for those N only."""
    if quick:
        return Settings((1, 10), (0.0, 30.0))
    long_n = os.environ.get("BENCHMARK_PEERS_LONG_N")
    long_counts = tuple(int(n) for n in long_n.split(",")) if long_n else None
    return Settings((1, 10, 100), (0.0, 30.0, 300.0), long_counts=long_counts)


def backend_of(system: str) -> str:
    return f"ibmq_manila_{SHORT[system]}"


def api_key_of(system: str) -> str:
    return f"peers-{SHORT[system]}-key"


# ----- processes --------------------------------------------------------------------------------
class System:
    """One system's long-lived flow process: READY once set up, then one case per stdin line."""

    def __init__(self, name: str, python: str, env: dict[str, str], cwd: Path, scratch: Path, config: Path):
        self.name = name
        self.log = scratch / f"{SHORT[name]}.log"
        args = [python, "-m", "benchmarks.children.peer_flow", "--system", name, "--config", str(config)]
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def wait_ready(self, timeout: float = 900) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            if line.strip() == READY:
                return
            if time.monotonic() > deadline:
                break
        raise RuntimeError(f"{self.name} never became ready:\n{log_tail(self.log)}")

    def run(self, case: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith(RESULT):
                result: dict[str, Any] = json.loads(line[len(RESULT) :])
                return result
        raise RuntimeError(f"{self.name} exited mid-case:\n{log_tail(self.log)}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Releaser:
    """Lets each held job start once it has queued ``delay`` seconds (checked twice a second)."""

    def __init__(self, emulator: Any) -> None:
        self.delay = 0.0
        self._emulator = emulator
        self._released: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="releaser", daemon=True)
        self.paused = True

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            if self.paused:
                continue
            now = time.time()
            try:
                for job in self._emulator.jobs():
                    due = datetime.fromisoformat(job["created"]).timestamp() + self.delay
                    if job["status"] == "Queued" and job["id"] not in self._released and due <= now:
                        self._emulator.release(job["id"])
                        self._released.add(job["id"])
            except OSError:
                continue

    def __enter__(self) -> Releaser:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def environments(bench: Bench, emulator: Any, server: PrefectServer) -> dict[str, dict[str, str]]:
    """Each system's environment: the Prefect API, and (except prefect-qiskit's) the emulator's own."""
    envs = {}
    for system in SYSTEMS:
        client = emulator.environment() if system != "prefect-qiskit" else {}
        if client:
            client["QISKIT_IBM_TOKEN"] = api_key_of(system)
        envs[system] = bench.environment(client, server.environment(), POLL_QUICKLY)
    return envs


def write_config(scratch: Path, emulator: Any, system: str) -> Path:
    path = scratch / f"{SHORT[system]}-config.json"
    env = emulator.environment()
    config = {
        "backend": backend_of(system),
        "api_key": api_key_of(system),
        "crn": env["QISKIT_IBM_INSTANCE"],
        "iam_url": env["IAM_URL"],
        "runtime_url": env["QISKIT_IBM_URL"],
    }
    path.write_text(json.dumps(config))
    return path


# ----- the run --------------------------------------------------------------------------------------
def run(bench: Bench) -> Summary:
    import sys

    from prefect_qiskit_jobs.emulator import EmulatorConfig

    settings = settings_for(bench.quick)
    pythons = {OURS: sys.executable, "raw client": sys.executable}
    pythons.update({name: str(peer_python(req)) for name, req in PEERS.items()})
    versions = {name: installed_versions(Path(pythons[name]), name) for name in PEERS}
    config = EmulatorConfig(
        api_keys=tuple(api_key_of(system) for system in SYSTEMS),  # type: ignore[arg-type]
        backends=tuple(f"{backend_of(system)}={FAKE}" for system in SYSTEMS),
        queue_delay=HOLD_SECONDS,
        concurrency=settings.concurrency,
    )
    scratch = bench.scratch("systems")
    rows: list[Row] = []
    problems: list[str] = []
    with ExitStack() as stack:
        emulator = stack.enter_context(start_emulator(config, bench.cpus, bench.code))
        server = stack.enter_context(prefect_server(scratch / "prefect-home", bench.code))
        envs = environments(bench, emulator, server)
        configs = {system: write_config(scratch, emulator, system) for system in SYSTEMS}
        releaser = stack.enter_context(Releaser(emulator))
        systems = {}
        for system in SYSTEMS:
            systems[system] = System(
                system, pythons[system], envs[system], bench.code.directory, scratch, configs[system]
            )
            stack.callback(systems[system].close)
        for system in systems.values():
            system.wait_ready()
        print(f"[peers] all four systems set up; {len(settings.cases())} cases", flush=True)
        measure(emulator, releaser, systems, Case(1, "bell", 0.0), settings)  # warm-up: first flow run
        for case in settings.cases():
            case_rows, case_problems = measure(emulator, releaser, systems, case, settings)
            rows += case_rows
            problems += case_problems
        for system in systems.values():
            system.close()
        behaviour = stack.enter_context(
            _behaviours(bench, emulator, releaser, server, envs, configs, pythons, settings)
        )
        rows += behaviour.rows(settings)
        problems += behaviour.problems
    judge(rows)
    return Summary(
        scenario="peers",
        title=TITLE,
        quick=bench.quick,
        goals=GOALS,
        rows=rows,
        settings={
            **asdict(settings),
            "device": f"{FAKE} (5 qubits), served once per system",
            "peers": [f"{name} {versions[name][name]}" for name in PEERS],
        },
        notes=notes(settings, problems),
    )


def measure(
    emulator: Any, releaser: Releaser, systems: dict[str, System], case: Case, settings: Settings
) -> tuple[list[Row], list[str]]:
    """Run one case on the four systems at once; one row per system."""
    emulator.reset(jobs=True)
    releaser.delay, releaser.paused = case.queue_seconds, False
    payload = {"count": case.count, "circuit": case.circuit, "shots": settings.shots, "fail_first": False}
    outcomes: dict[str, dict[str, Any]] = {}
    samplers = {name: ProcessSampler(system.process.pid) for name, system in systems.items()}

    def one(name: str) -> None:
        with samplers[name]:
            outcomes[name] = systems[name].run(payload)

    threads = [threading.Thread(target=one, args=(name,)) for name in systems]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(settings.case_timeout)
    releaser.paused = True
    stats, jobs = emulator.stats(), emulator.jobs()
    rows, problems = [], []
    for name in systems:
        outcome = outcomes.get(name, {"started": 0.0, "ended": 0.0, "error": "no answer"})
        mine = [job for job in jobs if job["backend"] == backend_of(name)]
        routes = stats.get("accounts", {}).get(account_of(api_key_of(name)), {})
        rows.append(case_row(case, name, outcome, routes, mine, samplers[name]))
        done = sum(job["status"] == "Completed" for job in mine)
        if outcome["error"] or done != case.count:
            problems.append(f"{case.label}, {name}: {outcome['error'] or ''} ({done}/{case.count} completed)")
    walls = ", ".join(f"{name} {row.figures[0].shown()}" for name, row in zip(systems, rows, strict=True))
    print(f"[peers] {case.label}: wall {walls}", flush=True)
    return rows, problems


def account_of(api_key: str) -> str:
    from prefect_qiskit_jobs.emulator.auth import account_of as emulator_account

    return emulator_account(api_key)


def case_row(
    case: Case,
    name: str,
    outcome: dict[str, Any],
    routes: dict[str, int],
    jobs: list[dict[str, Any]],
    sampler: ProcessSampler,
) -> Row:
    cloud = sum(n for route, n in routes.items() if route.startswith(CLOUD_ROUTES))
    iqp = sum(routes.values()) - cloud
    held = outcome["ended"] - outcome["started"]
    return Row(
        f"{case.label} — {name}",
        [
            Figure("wall", "wall", held, "s"),
            Figure("iqp_per_job", "IQP req/job", iqp / case.count, digits=1),
            Figure("cloud_per_job", "IAM+search req/job", cloud / case.count, digits=1),
            Figure("threads", "peak threads", sampler.max_threads),
            Figure("rss", "peak RSS", sampler.max_rss_bytes / MB, "MB", 0),
            Figure("worker_seconds", "worker-s held", held, "s", 1),
            Figure("jobs", "jobs created", len(jobs)),
        ],
    )


# ----- orphans and duplicates ----------------------------------------------------------------------
@dataclass
class Behaviours:
    orphans: dict[str, int | None]
    duplicates: dict[str, int | None]
    problems: list[str]

    def rows(self, settings: Settings) -> list[Row]:
        n = settings.behaviour_jobs
        return [
            Row(
                f"cancel and retry, N={n} — {name}",
                [
                    Figure("orphans", "orphans after a cancelled run", self.orphans.get(name)),
                    Figure("duplicates", "duplicates after a flow retry", self.duplicates.get(name)),
                ],
            )
            for name in SYSTEMS
        ]


@contextmanager
def _behaviours(
    bench: Bench,
    emulator: Any,
    releaser: Releaser,
    server: PrefectServer,
    envs: dict[str, dict[str, str]],
    configs: dict[str, Path],
    pythons: dict[str, str],
    settings: Settings,
) -> Iterator[Behaviours]:
    """Serve each system's flow, cancel one run of each and retry one run of each, side by side."""
    scratch = bench.scratch("serve")
    serves: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in SYSTEMS:
            args = [pythons[name], "-m", "benchmarks.children.peer_flow", "--system", name]
            with (scratch / f"{SHORT[name]}.log").open("wb") as log:
                serves[name] = subprocess.Popen(
                    [*args, "--config", str(configs[name]), "--serve"],
                    cwd=bench.code.directory,
                    env=envs[name],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        problems: list[str] = []
        try:
            orphans, duplicates = asyncio.run(
                _cancel_and_retry(emulator, releaser, server, settings, problems)
            )
        except Exception as exc:
            problems.append(f"cancel and retry: {type(exc).__name__}: {exc}"[:400])
            orphans, duplicates = {}, {}
        yield Behaviours(orphans, duplicates, problems)
    finally:
        for process in serves.values():
            process.terminate()
        for process in serves.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _cancel_and_retry(
    emulator: Any, releaser: Releaser, server: PrefectServer, settings: Settings, problems: list[str]
) -> tuple[dict[str, int | None], dict[str, int | None]]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.url}):
        async with get_client() as prefect:
            deployments = await _deployments(prefect)
            orphans = await _orphans(prefect, deployments, emulator, releaser, settings, problems)
            duplicates = await _duplicates(prefect, deployments, emulator, releaser, settings, problems)
    return orphans, duplicates


async def _deployments(prefect: Any, timeout: float = 900) -> dict[str, Any]:
    """Each system's served deployment id, once its serve process has registered it."""
    deployments: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(deployments) < len(SYSTEMS):
        for name in set(SYSTEMS) - set(deployments):
            try:
                found = await prefect.read_deployment_by_name(f"{flow_name(name)}/{DEPLOYMENT_NAME}")
            except Exception:  # not served yet
                continue
            deployments[name] = found.id
        if time.monotonic() > deadline:
            raise TimeoutError(f"deployments served after {timeout} s: {sorted(deployments)}")
        await asyncio.sleep(1)
    return deployments


async def _final_states(prefect: Any, runs: dict[str, Any], timeout: float) -> dict[str, str]:
    """Each run's final state type, as they end (those not final by ``timeout`` left out)."""
    final: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(final) < len(runs) and time.monotonic() < deadline:
        for name, flow_run in runs.items():
            state = (await prefect.read_flow_run(flow_run.id)).state
            if name not in final and state is not None and state.is_final():
                final[name] = state.type.value
        await asyncio.sleep(1)
    return final


def _jobs_of(jobs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [job for job in jobs if job["backend"] == backend_of(name)]


async def _start_runs(
    prefect: Any, deployments: dict[str, Any], emulator: Any, settings: Settings, fail_first: bool
) -> dict[str, Any]:
    """One run of each system's deployment with N Bell jobs, on an emulator emptied of jobs."""
    emulator.reset(jobs=True)
    params = {"count": settings.behaviour_jobs, "circuit": "bell", "shots": settings.shots}
    return {
        name: await prefect.create_flow_run_from_deployment(
            deployments[name], parameters={**params, "fail_first": fail_first}
        )
        for name in SYSTEMS
    }


async def _orphans(
    prefect: Any,
    deployments: dict[str, Any],
    emulator: Any,
    releaser: Releaser,
    settings: Settings,
    problems: list[str],
) -> dict[str, int | None]:
    """Runs whose jobs are held, set Cancelling once all their jobs exist: jobs left pending after."""
    from prefect.client.schemas.objects import State, StateType

    n = settings.behaviour_jobs
    releaser.paused = True
    runs = await _start_runs(prefect, deployments, emulator, settings, fail_first=False)
    pending = set(SYSTEMS)
    deadline = time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        jobs = emulator.jobs()
        for name in sorted(pending):
            if len(_jobs_of(jobs, name)) >= n:
                cancelling = State(type=StateType.CANCELLING, name="Cancelling")
                await prefect.set_flow_run_state(runs[name].id, cancelling)
                pending.discard(name)
        await asyncio.sleep(0.5)
    if pending:
        problems.append(f"cancel: no {n} jobs from {sorted(pending)} within 600 s")
    final = await _final_states(prefect, runs, 300)
    problems += [f"cancel: {name}'s run did not end within 300 s" for name in SYSTEMS if name not in final]
    await asyncio.sleep(settings.orphan_grace)  # hooks and layers that cancel after the run ended
    jobs = emulator.jobs()
    return {
        name: sum(job["status"] in ("Queued", "Running") for job in _jobs_of(jobs, name)) for name in SYSTEMS
    }


async def _duplicates(
    prefect: Any,
    deployments: dict[str, Any],
    emulator: Any,
    releaser: Releaser,
    settings: Settings,
    problems: list[str],
) -> dict[str, int | None]:
    """Runs whose first attempt fails after its jobs are read, then retried: jobs created beyond N."""
    n = settings.behaviour_jobs
    releaser.delay, releaser.paused = 0.0, False
    runs = await _start_runs(prefect, deployments, emulator, settings, fail_first=True)
    final = await _final_states(prefect, runs, 900)
    releaser.paused = True
    problems += [
        f"retry: {name}'s run ended {final.get(name, 'not at all')}"
        for name in SYSTEMS
        if final.get(name) != "COMPLETED"
    ]
    jobs = emulator.jobs()
    return {name: len(_jobs_of(jobs, name)) - n for name in SYSTEMS}


# ----- goals ---------------------------------------------------------------------------------------
JUDGED = ("wall", "iqp_per_job", "threads", "rss", "worker_seconds")


def judge(rows: list[Row]) -> None:
    """Give the package's figures their goal: at most the best peer's value in the same case."""
    by_case: dict[str, dict[str, Row]] = {}
    for row in rows:
        case, system = row.label.split(" — ")
        by_case.setdefault(case, {})[system] = row
    for systems in by_case.values():
        ours = systems.get(OURS)
        if ours is None:
            continue
        keys = [f.key for f in ours.figures if f.key in (*JUDGED, "orphans", "duplicates")]
        for key in keys:
            others = [r.value(key) for name, r in systems.items() if name != OURS]
            values = [v for v in others if isinstance(v, (int, float))]
            if key in ("orphans", "duplicates"):
                goal = Goal("==", 0, "none")
            elif values:
                goal = Goal("<=", round(min(values), 3), "the best peer's")
            else:
                continue
            ours.figures = [
                Figure(f.key, f.label, f.value, f.unit, f.digits, goal) if f.key == key else f
                for f in ours.figures
            ]


def notes(settings: Settings, problems: list[str]) -> list[str]:
    return [
        "Systems: prefect-qiskit-jobs (`asubmit_sampler_jobs(..., max_pubs_per_job=1)`, `await_for_jobs`, "
        "`afetch_job_results`, the flow decorated with `cancel_jobs_on_exit`); prefect-qiskit 0.2.1 "
        "(`QuantumRuntime(...).async_sampler([pub])` once per job under `asyncio.gather`, its "
        "`IBMQuantumCredentials` given the emulator's IAM root and API base); qcsc-prefect-qiskit 0.3.0 "
        "(`submit_sampler_job_task` per job, then `fetch_qiskit_job_result_task` per job, under "
        "`asyncio.gather`; `QiskitRuntimeConfig(backend_name=...)` without a token, so the client reads "
        "the emulator's `QISKIT_IBM_*`/`IAM_URL`/search variables); the raw client (`SamplerV2(mode=backend)"
        ".run([pub])` per job, then `job.result()` on each in turn, inside a plain `@flow`). Every flow has "
        "`retries=1`; every system runs with its defaults.",
        "Each system has its own API key and its own copy of ibmq_manila (same noise, own queue, "
        f"{settings.concurrency} jobs executing at once), so its requests (the emulator counts them per "
        "account) and jobs are its own while the four run side by side, each in its own process set up once "
        "(imports, backend, circuits) and warmed up by one unreported N=1 case before the first case. "
        "The emulator holds every job; a releaser lets each start once it has queued the case's delay "
        "(checked every 0.5 s).",
        "wall: the flow call, start to end, in the system's process (the flow run's own time). IQP req/job: "
        "runtime API requests of the system's account during the case over N; IAM+search req/job: its IBM "
        "Cloud requests (token exchanges, Global Search and Catalog: the client's service set-up). peak "
        "threads and RSS: the system's process, sampled from outside twice a second during the case. "
        "worker-s held: seconds the flow held its process (and so its worker slot): the whole wall time "
        "for every system here, as none defers; the package's deferral (`defer=True`, the `deferral` "
        "scenario) frees it while jobs queue.",
        f"Orphans: a served run (`flow.serve`) of each system submits {settings.behaviour_jobs} held jobs "
        "and is set Cancelling through the API once all exist; jobs still Queued or Running "
        f"{settings.orphan_grace:g} s after the run ended are orphans. Duplicates: a served run whose first "
        "attempt raises after its "
        f"{settings.behaviour_jobs} jobs are done and read; jobs created beyond {settings.behaviour_jobs} "
        "after the flow's retry are duplicates.",
        "The four systems share one machine (and its emulator): each system's figures are taken under the "
        "others' load, the same for all. The machine was shared with other work (see the load average).",
        "Problems: " + ("; ".join(problems) if problems else "none") + ".",
    ]
