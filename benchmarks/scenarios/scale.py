"""``scale``: 10,000 queued jobs awaited by one ``await_jobs`` in one process.

The jobs are made at once by the emulator's admin route (``POST /_emulator/jobs``): submitting
10,000 through the client would take many minutes. They carry one flow run's tags, as the submit
task's jobs do, and stay queued. A fresh child waits for all of them; the parent measures a window
of queued waiting, then cancels every job through the client (a queued job is Cancelled at once)
and lets the wait see them all end. Releasing them instead would mean 10,000 Aer executions.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.harness import client
from benchmarks.harness.child import Child
from benchmarks.harness.context import Bench
from benchmarks.harness.emulator import (
    BACKEND,
    BACKEND_FOLDER,
    HOLD_SECONDS,
    LIST_ROUTE,
    METRICS_ROUTE,
    STATUS_ROUTES,
    finished_at,
    route_delta,
    start_emulator,
)
from benchmarks.harness.sampling import ProcessSampler, cpu_seconds_of
from benchmarks.harness.stats import MB, percentile, ratio
from benchmarks.summary import Figure, Goal, Row, Summary

TITLE = "scale: 10,000 queued jobs awaited in one process"
GOALS = [
    "peak RSS of the waiting process ≤ 400 MB",
    "its CPU ≤ 3 % of one core while the jobs are queued (the whole window, start included)",
    "no thread per job (the thread count is reported; judged against 100 threads)",
    "all 10,000 seen cancelled ≤ 30 s after the last cancel was sent; cancel detection lag p95 ≤ 5 s",
]
RSS_GOAL = Goal("<=", 400)
CPU_GOAL = Goal("<=", 3)
THREADS_GOAL = Goal("<=", 100, "no thread per job")
SEEN_GOAL = Goal("<=", 30)
CANCEL_LAG_GOAL = Goal("<=", 5)


@dataclass(frozen=True)
class Settings:
    jobs: int
    window_seconds: float
    start_seconds: float
    cancel_threads: int = 8
    max_wait: float = 1800.0


def settings_for(quick: bool) -> Settings:
    return Settings(2000, 15.0, 5.0) if quick else Settings(10_000, 60.0, 10.0)


def run(bench: Bench) -> Summary:
    from prefect_qiskit_jobs.emulator import EmulatorConfig

    settings = settings_for(bench.quick)
    config = EmulatorConfig(backends=(BACKEND_FOLDER,), queue_delay=HOLD_SECONDS)
    with start_emulator(config, bench.cpus, bench.code) as emulator:
        emulator.export_environment()  # this process cancels through the client
        tags = [client.PACKAGE_TAG, f"{client.FLOW_RUN_PREFIX}{uuid.uuid4()}"]
        created = time.time()
        ids = emulator.create_jobs(settings.jobs, BACKEND, tags)
        print(f"[scale] {len(ids)} queued jobs made in {time.time() - created:.1f} s", flush=True)
        refs = [client.ref(job_id, tags, emulator.config.instance_crn) for job_id in ids]
        row = measure(bench, emulator, refs, settings)
    return Summary(
        scenario="scale",
        title=TITLE,
        quick=bench.quick,
        goals=GOALS,
        rows=[row],
        settings={**asdict(settings), "backend": BACKEND, "poll": "PollPolicy() defaults"},
        notes=NOTES,
    )


def measure(bench: Bench, emulator: Any, refs: list[dict[str, Any]], settings: Settings) -> Row:
    scratch = bench.scratch("wait")
    (scratch / "jobs.json").write_text(json.dumps(refs))
    args = ["--method", "await_jobs", "--jobs-file", str(scratch / "jobs.json")]
    args += ["--result-file", str(scratch / "result.json"), "--max-wait", str(settings.max_wait)]
    env = bench.environment()
    assert emulator.process is not None
    log = scratch / "log"
    with Child("benchmarks.children.waiter", args, env=env, cwd=bench.code.directory, log=log) as child:
        child.wait_ready()
        with ProcessSampler(child.pid) as sampler:
            before = emulator.stats()
            cpu = [cpu_seconds_of(child.pid)]
            emulator_cpu = [cpu_seconds_of(emulator.process.pid)]
            child.go()
            go = time.time()
            for mark in (settings.start_seconds, settings.window_seconds):
                time.sleep(max(0.0, go + mark - time.time()))
                cpu.append(cpu_seconds_of(child.pid))
            emulator_cpu.append(cpu_seconds_of(emulator.process.pid))
            window = emulator.stats()
            threads_queued, rss_queued = sampler.max_threads, sampler.max_rss_bytes
            print(f"[scale] window over; cancelling {len(refs)} jobs", flush=True)
            cancel_started = time.time()
            failed_cancels = client.cancel_all(refs, settings.cancel_threads)
            cancels_sent = time.time() - cancel_started
            child.wait(settings.max_wait)
    child.check_exit()
    measured = json.loads((scratch / "result.json").read_text())
    bench.code.check_imported(measured["package_file"], "the waiting process")
    finished = finished_at(emulator)
    lags = [at - finished[job] for job, at in measured["detected"].items() if job in finished]
    return figures(
        settings,
        measured,
        route_delta(before, window),
        cpu,
        emulator_cpu,
        (threads_queued, rss_queued),
        sampler.max_threads,
        {"sent": cancels_sent, "failed": failed_cancels, "all_seen": measured["wait_ended"] - cancel_started},
        lags,
    )


def _percent(seconds: list[float | None], start: int, end: int, span: float) -> float | None:
    if seconds[start] is None or seconds[end] is None:
        return None
    return ratio((seconds[end] or 0.0) - (seconds[start] or 0.0), span / 100)


def figures(
    settings: Settings,
    measured: dict[str, Any],
    routes: dict[str, int],
    cpu: list[float | None],
    emulator_cpu: list[float | None],
    queued: tuple[int, int],
    threads: int,
    cancel: dict[str, float],
    lags: list[float],
) -> Row:
    n, window = settings.jobs, settings.window_seconds
    status = sum(routes.get(route, 0) for route in STATUS_ROUTES)
    metrics = routes.get(METRICS_ROUTE, 0)
    return Row(
        f"await_jobs, N={n:,}, {window:g} s queued window",
        [
            Figure("peak_rss", "peak RSS", (measured["peak_rss_bytes"] or 0) / MB, "MB", 0, goal=RSS_GOAL),
            Figure("rss_queued", "peak RSS while queued", queued[1] / MB, "MB", 0),
            Figure("rss_at_start", "RSS at start", (measured["rss_at_start_bytes"] or 0) / MB, "MB", 0),
            Figure(
                "cpu_percent", "CPU while queued", _percent(cpu, 0, 2, window), "% of a core", 1, CPU_GOAL
            ),
            Figure("cpu_start", f"CPU first {settings.start_seconds:g} s", _seconds(cpu, 0, 1), "s"),
            Figure(
                "cpu_steady",
                f"CPU after {settings.start_seconds:g} s",
                _percent(cpu, 1, 2, window - settings.start_seconds),
                "% of a core",
                1,
            ),
            Figure("threads", "threads", threads, goal=THREADS_GOAL),
            Figure("threads_queued", "threads while queued", queued[0]),
            Figure("requests_per_job", "status+metrics req/job while queued", (status + metrics) / n),
            Figure("list_requests", "list requests while queued", routes.get(LIST_ROUTE, 0)),
            Figure("metrics_requests", "metrics requests while queued", metrics),
            Figure("emulator_cpu", "emulator CPU while queued", _percent(emulator_cpu, 0, 1, window), "%", 0),
            Figure("cancels_sent", "cancels sent in", cancel["sent"], "s", 1),
            Figure("all_seen", "all seen cancelled after", cancel["all_seen"], "s", 1),
            Figure(
                "seen_after_last",
                "all seen cancelled after the last cancel",
                cancel["all_seen"] - cancel["sent"],
                "s",
                1,
                SEEN_GOAL,
            ),
            Figure("lag_p95", "cancel detection lag p95", percentile(lags, 0.95), "s", goal=CANCEL_LAG_GOAL),
            Figure("final", "final", f"{len(measured['detected'])}/{n}"),
            Figure("errors", "errors", len(measured["errors"]) + int(cancel["failed"])),
        ],
    )


def _seconds(seconds: list[float | None], start: int, end: int) -> float | None:
    first, last = seconds[start], seconds[end]
    return None if first is None or last is None else last - first


NOTES = [
    "The jobs are made by `POST /_emulator/jobs` (no pubs: they are never run) with a package tag "
    "and one flow-run tag, as the submit task tags a run's jobs, and held queued.",
    "The waiting process: `await_jobs(jobs, poll=PollPolicy())` in a fresh child, set up (imports, "
    "client, IAM token) before GO. Its CPU and OS threads are read from outside (psutil); peak RSS "
    "is its high-water mark over the whole wait, imports and the cancellation phase included (the "
    "peak while queued is sampled from outside twice a second, up to the end of the window).",
    "CPU while queued: the child's CPU seconds from GO to the end of the window over the window, in "
    "% of one core; the start (registering every job, the first full sweep) is inside it, and also "
    "shown alone, with the rate after it.",
    "Ending: after the window the parent cancels every job through the client (8 threads; a queued "
    "job is Cancelled at once), and the wait returns once it has seen all of them final. 'All seen "
    "cancelled after' counts from the first cancel; 'after the last cancel' from when the last one "
    "was answered. Lag: the emulator's `finished` timestamp of each job to the moment the wait saw it.",
    "Requests while queued are the emulator's counts over the window; emulator CPU is in % of a core.",
]
