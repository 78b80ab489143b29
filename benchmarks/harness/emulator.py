"""The emulator as the benchmarks use it: its own process on its own CPUs, and what it counted.

Request counts come from the emulator's own counters (``/_emulator/stats``), read just before a
measured span and just after it; the difference is what that span cost the service.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness.cpus import CpuPlan
from benchmarks.harness.stats import percentile

if TYPE_CHECKING:
    from benchmarks.harness.code import CodeUnderTest
    from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator

BACKEND = "ibmq_manila"
BACKEND_FOLDER = "manila"
# A queue delay no run outlasts: jobs stay Queued until the scenario releases (or cancels) them.
HOLD_SECONDS = 7 * 24 * 3600.0
LIST_ROUTE = "GET /jobs"
GET_ROUTE = "GET /jobs/{job_id}"
STATUS_ROUTES = (LIST_ROUTE, GET_ROUTE)
METRICS_ROUTE = "GET /jobs/{job_id}/metrics"


def start_emulator(config: EmulatorConfig, cpus: CpuPlan, code: CodeUnderTest) -> RunningEmulator:
    """Start the emulator on the emulator's CPUs, running the code under test; checked, not assumed."""
    from prefect_qiskit_jobs.emulator import start_emulator as start

    with cpus.emulator_side():
        emulator = start(config)
    assert emulator.process is not None
    pid = emulator.process.pid
    if cpus.emulator is not None and tuple(sorted(os.sched_getaffinity(pid))) != cpus.emulator:
        emulator.close()
        raise RuntimeError(f"the emulator runs on CPUs {sorted(os.sched_getaffinity(pid))}")
    cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    if cwd.resolve() != code.directory.resolve():
        emulator.close()
        raise RuntimeError(f"the emulator runs in {cwd}, so it may not import {code.directory}")
    return emulator


def route_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests per route between two ``stats()`` snapshots (routes with none left out)."""
    old, new = before.get("routes", {}), after.get("routes", {})
    return {route: n - old.get(route, 0) for route, n in sorted(new.items()) if n - old.get(route, 0)}


def per_job_delta(before: dict[str, Any], after: dict[str, Any], route: str) -> dict[str, int]:
    """Requests to ``route`` per job between two snapshots."""
    old, new = before.get("jobs", {}), after.get("jobs", {})
    return {job: c.get(route, 0) - old.get(job, {}).get(route, 0) for job, c in new.items()}


def finished_at(emulator: RunningEmulator) -> dict[str, float]:
    """The emulator's ``finished`` timestamp (epoch seconds) of every job that has one."""
    return {
        job["id"]: datetime.fromisoformat(job["finished"]).timestamp()
        for job in emulator.jobs()
        if job["finished"]
    }


class Probe:
    """Times one admin request to the emulator each second: how responsive the service was under load."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.latencies: list[float] = []
        self._emulator = emulator
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            started = time.perf_counter()
            try:
                self._emulator.admin("GET", "/health")
            except Exception:
                continue
            self.latencies.append(time.perf_counter() - started)

    def median_ms(self) -> float | None:
        value = percentile(self.latencies, 0.5)
        return None if value is None else value * 1000

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
