"""``deferral``: worker-seconds a run holds while its jobs queue, waiting or deferred, and the resume delay.

A real Prefect API, a serve process and one resumer (``prefect-qiskit-jobs resumer``). Two runs
start at once, each submitting the same jobs to an emulator that queues every job for
``queue_seconds``: one waits (``wait_for_jobs``), one defers (``asuspend_until_final``). The
scenario samples, every ``SAMPLE_SECONDS``, whether each run has a flow process (a child of the
serve process carrying the run's id), and reads the jobs' timestamps from the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psutil

from benchmarks.children.deferral_flow import DEFERS, DEPLOYMENT_NAME, WAITS
from benchmarks.harness.child import Child, log_tail
from benchmarks.harness.client import FLOW_RUN_PREFIX
from benchmarks.harness.context import Bench
from benchmarks.harness.emulator import BACKEND, BACKEND_FOLDER, start_emulator
from benchmarks.harness.prefect_server import PrefectServer, prefect_server, throwaway_postgres
from benchmarks.scenarios.cancel import eventually
from benchmarks.summary import Figure, Goal, Row, Summary

TITLE = "deferral: worker-seconds held while jobs queue, waiting vs deferred; resume delay"
RUNNER_POLL = 1.0
SAMPLE_SECONDS = 0.2
HELD_GOAL = 1.0
RESUME_MARGIN = 3.0
# The local default (``prefect server start``'s SQLite) and the database a team's server runs on. On
# SQLite one writer holds the whole database: a write that meets another is answered 503 and the
# client sends it again about 2 s later, which recording a deferral meets about every other time.
SQLITE, POSTGRESQL = "SQLite", "PostgreSQL"
DATABASES = (SQLITE, POSTGRESQL)
GOALS = [
    f"≤ {HELD_GOAL:g} worker-second held per suspension, deferred (it suspends as soon as its jobs "
    "are created: no flow process kept while IBM queues)",
    f"resume delay (last job ended → resumed run Completed) ≤ the resumer's interval + {RESUME_MARGIN:g} s",
]


@dataclass(frozen=True)
class Settings:
    jobs: int = 2
    queue_seconds: float = 90.0
    resumer_every: float = 5.0
    follow_seconds: float = 300.0


def run(bench: Bench) -> Summary:
    settings = Settings(queue_seconds=30.0 if bench.quick else 90.0)
    rows: list[Row] = []
    for database in DATABASES:
        measured = _measure_on(bench, settings, database)
        rows += [row(settings, measured, "waits", database), row(settings, measured, "defers", database)]
    return Summary(
        scenario="deferral",
        title=TITLE,
        quick=bench.quick,
        goals=GOALS,
        rows=rows,
        settings={**asdict(settings), "backend": BACKEND, "runner_poll_seconds": RUNNER_POLL},
        notes=NOTES,
    )


def _measure_on(bench: Bench, settings: Settings, database: str) -> dict[str, Any]:
    """Both runs on a fresh emulator, Prefect server (on ``database``), serve process and resumer."""
    from prefect_qiskit_jobs.emulator import EmulatorConfig

    config = EmulatorConfig(backends=(BACKEND_FOLDER,), queue_delay=settings.queue_seconds, concurrency=8)
    scratch = bench.scratch(f"deferral-{database.lower()}")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(throwaway_postgres()).url if database == POSTGRESQL else None
        emulator = stack.enter_context(start_emulator(config, bench.cpus, bench.code))
        server = stack.enter_context(prefect_server(scratch / "prefect-home", bench.code, url))
        env = bench.environment(
            emulator.environment(),
            server.environment(),
            {"PREFECT_RUNNER_POLL_FREQUENCY": f"{RUNNER_POLL:g}"},
        )
        serve_log, resumer_log = scratch / "serve.log", scratch / "resumer.log"
        resumer_args = ["resumer", "--every", f"{settings.resumer_every:g}"]
        serve = stack.enter_context(
            Child("benchmarks.children.deferral_flow", [], env=env, cwd=bench.code.directory, log=serve_log)
        )
        stack.enter_context(
            Child("prefect_qiskit_jobs", resumer_args, env=env, cwd=bench.code.directory, log=resumer_log)
        )
        try:
            return asyncio.run(measure(emulator, server, serve, settings))
        except Exception as exc:
            logs = f"serve log:\n{log_tail(serve_log)}\nresumer log:\n{log_tail(resumer_log)}"
            raise RuntimeError(f"{database}: {exc}\n{logs}") from exc


def _flow_processes(serve_pid: int) -> set[str]:
    """The run ids of the flow processes the serve process has now."""
    ids = set()
    for child in psutil.Process(serve_pid).children(recursive=True):
        try:
            run_id = child.environ().get("PREFECT__FLOW_RUN_ID")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if run_id:
            ids.add(run_id)
    return ids


def _stamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


async def measure(emulator: Any, server: PrefectServer, serve: Child, settings: Settings) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.url}):
        async with get_client() as prefect:

            async def deployment(name: str) -> Any:
                if not serve.alive():
                    raise RuntimeError("the serve process exited")
                try:
                    return await prefect.read_deployment_by_name(f"{name}/{DEPLOYMENT_NAME}")
                except Exception:
                    return None

            runs = {}
            for key, name in (("waits", WAITS), ("defers", DEFERS)):
                found = await eventually(lambda name=name: deployment(name), 180, f"deployment {name}")
                runs[key] = await prefect.create_flow_run_from_deployment(
                    found.id, parameters={"count": settings.jobs}
                )
            alive: dict[str, list[tuple[float, bool]]] = {key: [] for key in runs}
            ended: dict[str, Any] = {}
            deadline = time.monotonic() + settings.queue_seconds + settings.follow_seconds
            while len(ended) < len(runs):
                now = time.time()
                present = _flow_processes(serve.pid)
                for key, flow_run in runs.items():
                    alive[key].append((now, str(flow_run.id) in present))
                    if key not in ended:
                        state = (await prefect.read_flow_run(flow_run.id)).state
                        if state is not None and state.is_final():
                            ended[key] = state
                if time.monotonic() > deadline:
                    raise TimeoutError(f"runs still going: {sorted(set(runs) - set(ended))}")
                await asyncio.sleep(SAMPLE_SECONDS)
            histories = {
                key: await prefect.read_flow_run_states(flow_run.id) for key, flow_run in runs.items()
            }
    jobs = emulator.jobs()
    return {
        key: {
            "jobs": [job for job in jobs if f"{FLOW_RUN_PREFIX}{flow_run.id}" in job["tags"]],
            "alive": alive[key],
            "state": ended[key].type.value,
            "completed_at": ended[key].timestamp.timestamp() if ended[key].timestamp else None,
            "resumings": [state.name for state in histories[key]].count("Resuming"),
            "states": [
                (state.name, state.timestamp.timestamp() if state.timestamp else None)
                for state in histories[key]
            ],
        }
        for key, flow_run in runs.items()
    }


def _held_seconds(samples: list[tuple[float, bool]], start: float, end: float) -> float:
    """Seconds within [start, end] in which the run had a flow process (sampled)."""
    held = 0.0
    for (t0, up), (t1, _) in itertools.pairwise(samples):
        if up:
            held += max(0.0, min(t1, end) - max(t0, start))
    return held


def _after(states: list[tuple[str, float | None]], name: str, since: float | None) -> float | None:
    """When the first state called ``name`` at or after ``since`` began (None: none, or no ``since``)."""
    if since is None:
        return None
    return next((t for n, t in states if n == name and t is not None and t >= since), None)


def _span(start: float | None, end: float | None) -> float | None:
    return end - start if start is not None and end is not None else None


def breakdown(data: dict[str, Any], created: float, finished: float | None) -> list[Figure]:
    """Where the deferred run's time goes, from its state history, the emulator and the samples."""
    states, samples = data["states"], data["alive"]
    suspended = _after(states, "Suspended", created)
    exited = next((t for t, up in samples if suspended is not None and t >= suspended and not up), None)
    resuming = _after(states, "Resuming", finished)
    pending = _after(states, "Pending", resuming)
    running = _after(states, "Running", pending)
    completed = _after(states, "Completed", running)
    spans = [
        ("to_suspended", "first job created → Suspended (submit, record, suspend)", created, suspended),
        ("to_exit", "Suspended → flow process gone", suspended, exited),
        ("to_resuming", "last job ended → Resuming (the resumer)", finished, resuming),
        ("to_pending", "Resuming → Pending (the runner's poll)", resuming, pending),
        ("to_running", "Pending → Running (a new flow process starts)", pending, running),
        ("to_completed", "Running → Completed (re-execution)", running, completed),
    ]
    return [Figure(key, label, _span(start, end), "s", 1) for key, label, start, end in spans]


def row(settings: Settings, measured: dict[str, Any], key: str, database: str) -> Row:
    data = measured[key]
    jobs = data["jobs"]
    created = [t for job in jobs if (t := _stamp(job["created"])) is not None]
    running = [t for job in jobs if (t := _stamp(job["running"])) is not None]
    finished = [t for job in jobs if (t := _stamp(job["finished"])) is not None]
    queued_from, queued_to = min(created), max(running) if running else max(created)
    samples = data["alive"]
    held_queued = _held_seconds(samples, queued_from, queued_to)
    # A waiting run holds its process all along the queue; a deferred one only until it suspends,
    # a cost per suspension that a longer queue does not grow.
    per_queued_hour = held_queued if key == "defers" else held_queued / (queued_to - queued_from) * 3600
    held_all = _held_seconds(samples, samples[0][0], samples[-1][0])
    delay = data["completed_at"] - max(finished) if finished and data["completed_at"] else None
    deferred = key == "defers"
    resume_goal = settings.resumer_every + RESUME_MARGIN
    label = "deferred (asuspend_until_final)" if deferred else "waiting (wait_for_jobs)"
    return Row(
        f"{label}: {len(jobs)} jobs, {settings.queue_seconds:g} s queue, Prefect on {database}",
        [
            Figure(
                "held_queued",
                "worker-seconds held while the jobs queue",
                held_queued,
                "s",
                1,
                goal=Goal("<=", HELD_GOAL, "per suspension") if deferred else None,
                beside=None if deferred else "the baseline",
            ),
            Figure(
                "per_queued_hour",
                "worker-seconds held per queued hour",
                per_queued_hour,
                "s",
                0,
                goal=Goal("<=", HELD_GOAL, "per suspension, whatever the queue") if deferred else None,
                beside=None if deferred else "the baseline: the whole hour",
            ),
            Figure("queued", "jobs queued for", queued_to - queued_from, "s", 1),
            Figure("held_all", "worker-seconds held in all", held_all, "s", 1),
            Figure(
                "end_delay",
                "last job ended → run Completed",
                delay,
                "s",
                1,
                goal=Goal("<=", resume_goal, f"the resumer's interval + {RESUME_MARGIN:g} s")
                if deferred
                else None,
            ),
            Figure("state", "run state", data["state"]),
            Figure("jobs", "jobs created", len(jobs), goal=Goal("==", settings.jobs, "none twice")),
            Figure("resumings", "Resuming states", data["resumings"], goal=Goal("==", 1 if deferred else 0)),
            *(breakdown(data, queued_from, max(finished) if finished else None) if deferred else []),
        ],
    )


NOTES = [
    "Each database in its own pass: a fresh emulator, `prefect server start` (on SQLite in its home, "
    "the local default, then on a throwaway PostgreSQL cluster, as a team's server runs), serve "
    "process and resumer. On SQLite one writer holds the database: a write meeting another is "
    "answered 503 and sent again by the client about 2 s later (measured: recording the deferral, "
    "1.93 s of the 1.96 s before the suspension, was one such re-send; 0.28 s on PostgreSQL).",
    "Both runs start together from one serve process (PREFECT_RUNNER_POLL_FREQUENCY=1); one "
    "resumer runs with --every as in the settings. The emulator queues each job for queue_seconds.",
    "worker-seconds held while the jobs queue: the time, within [first job created, last job "
    "Running] (the emulator's timestamps), during which the run had a flow process, sampled every "
    f"{SAMPLE_SECONDS} s from outside (a child of the serve process with the run's id in its "
    "environment). A deferred run still holds its process from its jobs' creation until its "
    "suspension is recorded and the process exits.",
    "worker-seconds held per queued hour: for the waiting run, the held time scaled to a one-hour "
    "queue (it holds its process all along); for the deferred run, the held time itself, a fixed "
    "cost per suspension that does not grow with the queue.",
    "last job ended → run Completed: from the latest `finished` timestamp of the run's jobs on the "
    "emulator to the run's Completed state in the Prefect API. For the deferred run it includes the "
    "resumer's read of the jobs (its watcher reads them at most --every seconds apart), the runner's "
    "poll, a new flow process's start-up and the re-execution (the submits adopt their jobs, the "
    "results are fetched).",
    "The deferred row's last six figures say where its time goes, from its state history in the "
    "Prefect API, the emulator's timestamps and the samples: first job created → Suspended (the "
    "rest of the submits, recording the deferral beside the read of the jobs, the suspension), "
    "Suspended → flow process gone (Prefect's teardown and the process's exit), last job ended → "
    "Resuming (the resumer), Resuming → Pending (the serve process's poll), Pending → Running (a "
    "new flow process starts: Python, Prefect and the flow's imports) and Running → Completed "
    "(the re-execution).",
]
