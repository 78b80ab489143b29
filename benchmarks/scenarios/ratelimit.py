"""``ratelimit``: how close submits come to IBM's job creation limit, from one process and from two.

An emulator limited to 60 job creations per rolling 60 s per API key (``--job-rate-limit 60/60``;
its environment gives the package the same limit) and a real Prefect API; 100 Sampler jobs are
submitted at once from one flow run in one process, then, against a fresh emulator, 50 from each
of two processes sharing the limit through Prefect. The jobs stay queued (never executed), so
the emulator's CPU does not shape the rate.

Achieved rate: past the first window each job k > 60 could at best be created one window after
the (k-60)-th (a rolling window), so the rate is 60 s over the mean of ``t_k - t_(k-60)``, as % of
the allowed; its worst job beside it. 429s are the emulator's refusals (each is one the package
saw); task retries come from the Prefect API's task runs (``run_count - 1``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from benchmarks.harness.child import Child
from benchmarks.harness.context import Bench
from benchmarks.harness.emulator import BACKEND, BACKEND_FOLDER, HOLD_SECONDS, start_emulator
from benchmarks.harness.prefect_server import PrefectServer, prefect_server
from benchmarks.summary import Figure, Goal, Row, Summary

TITLE = "ratelimit: job creations against IBM's limit, one process and two sharing it"
GOALS = [
    "achieved rate past the first window ≥ 95% of the allowed",
    "no 429 seen by the package, no task retry",
]
RATE_GOAL = Goal(">=", 95.0)
NONE_GOAL = Goal("==", 0)


@dataclass(frozen=True)
class Settings:
    jobs: int = 100
    per_window: int = 60
    window_seconds: float = 60.0


def run(bench: Bench) -> Summary:
    settings = Settings(jobs=40, per_window=20, window_seconds=20.0) if bench.quick else Settings()
    scratch = bench.scratch("ratelimit")
    rows = []
    with prefect_server(scratch / "prefect-home", bench.code) as server:
        for processes in (1, 2):
            measured = measure(bench, server, settings, processes)
            rows.append(row(settings, processes, measured))
    return Summary(
        scenario="ratelimit",
        title=TITLE,
        quick=bench.quick,
        goals=GOALS,
        rows=rows,
        settings={**asdict(settings), "backend": BACKEND, "emulator": "jobs held queued"},
        notes=NOTES,
    )


def measure(bench: Bench, server: PrefectServer, settings: Settings, processes: int) -> dict[str, Any]:
    from prefect_qiskit_jobs.emulator import EmulatorConfig

    config = EmulatorConfig(
        backends=(BACKEND_FOLDER,),
        queue_delay=HOLD_SECONDS,
        job_rate_limit=f"{settings.per_window}/{settings.window_seconds:g}",  # type: ignore[arg-type]
    )
    scratch = bench.scratch(f"ratelimit-{processes}")
    with start_emulator(config, bench.cpus, bench.code) as emulator:
        env = bench.environment(emulator.environment(), server.environment())
        share = [settings.jobs // processes + (i < settings.jobs % processes) for i in range(processes)]
        children = [
            Child(
                "benchmarks.children.submitter",
                ["--jobs", str(count), "--result-file", str(scratch / f"result-{i}.json")],
                env=env,
                cwd=bench.code.directory,
                log=scratch / f"log-{i}",
            )
            for i, count in enumerate(share)
        ]
        try:
            for child in children:
                child.wait_ready()
            emulator.reset()
            for child in children:
                child.go()
            for child in children:
                if not child.wait(600):
                    raise RuntimeError("the submits did not finish in time")
                child.check_exit()
        finally:
            for child in children:
                child.__exit__()
        results = [json.loads((scratch / f"result-{i}.json").read_text()) for i in range(processes)]
        for result in results:
            bench.code.check_imported(result["package_file"], "a submitting process")
        created = sorted(datetime.fromisoformat(job["created"]).timestamp() for job in emulator.jobs())
        stats = emulator.stats()
    (scratch / "created.json").write_text(json.dumps(created))  # kept with --keep
    return {
        "created": created,
        "refused": stats["rate_limited"],
        "run_counts": [n for result in results for n in result["run_counts"]],
        "span": max(r["ended"] for r in results) - min(r["started"] for r in results),
    }


def achieved(created: list[float], settings: Settings) -> tuple[float | None, float | None]:
    """(mean, worst) rate past the first window, as % of the allowed."""
    n, window = settings.per_window, settings.window_seconds
    lags = [created[k] - created[k - n] for k in range(n, len(created))]
    if not lags:
        return None, None
    return 100 * window * len(lags) / sum(lags), 100 * window / max(lags)


def row(settings: Settings, processes: int, measured: dict[str, Any]) -> Row:
    mean, worst = achieved(measured["created"], settings)
    counts = measured["run_counts"]
    retries = sum(max(0, n - 1) for n in counts) if len(counts) == settings.jobs else None
    label = f"{settings.jobs} jobs, {processes} process{'es' if processes > 1 else ''}"
    return Row(
        label,
        [
            Figure("rate", "rate past the first window", mean, "%", digits=1, goal=RATE_GOAL),
            Figure("worst", "worst job's rate", worst, "%", digits=1),
            Figure("refused", "429s seen by the package", measured["refused"], goal=NONE_GOAL),
            Figure("retries", "task retries", retries, goal=NONE_GOAL),
            Figure("created", "jobs created", len(measured["created"])),
            Figure("task_runs", "task runs read back", len(counts)),
            Figure("span", "submit span", measured["span"], "s", digits=1),
        ],
    )


NOTES = [
    "The package keeps one window x 1.02 + 0.25 s between a creation and the slot's return (after "
    "IBM's answer), so about 98% is the best it can show against an exact rolling window.",
    "Two processes share the limit through one Prefect global concurrency limit (leases); each "
    "process gives its slots back from one thread, and a process waiting for a slot asks the "
    "Prefect API every 0.15-0.45 s.",
    "task retries: None when the Prefect API did not hold every task run in a final state in time.",
    "Where the rest goes (runs of 2026-12-02, `--keep` keeps created.json): the shortest "
    "t_k - t_(k-60) is the hold itself (61.5 s); the mean exceeds it by 1-2 s, the time from a "
    "slot's return to the emulator creating the next job (asking for the slot, the client "
    "building and sending the POST) and from a creation to its answer, on a shared 2-core machine "
    "where the submitting processes and the Prefect server share one CPU.",
]
