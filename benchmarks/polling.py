"""How much it costs to wait for N IBM Quantum jobs: the package's watcher against per-job polling.

Two ways of waiting for the same N queued jobs are compared, for N = 10, 100 and 1000:

- ``await_jobs``: ``prefect_qiskit_jobs.sensor.await_jobs`` on all N jobs with the default
  ``PollPolicy()``. The jobs carry one flow-run tag, as the submit task tags them, so the process's
  watcher reads their statuses in batches (one ``GET /jobs?pending=true&tags=...`` per page of 100).
- ``per-job 0.5 s``: what ``job.result()`` does, once per job. One thread per job runs the client's
  own loop, ``RuntimeJobV2.wait_for_final_state(poll_interval=0.5)``: ``GET /jobs/{id}`` every 0.5 s
  until the job is final.

Each measured wait runs in a fresh child process (``python -m benchmarks.polling --child ...``), so
its CPU time and memory are its own; the emulator runs in a third process (``start_emulator``).

The timeline of one run:

1. The parent empties the emulator and submits N Sampler jobs (a 2-qubit Bell circuit, few shots)
   to ``ibmq_manila``. The emulator is configured to hold every job in its queue, so nothing runs
   while jobs are being submitted. Submission is not measured.
2. The child imports what it needs, builds its client and authenticates (the submit task would have
   done that already in a real flow), builds its job handles, says READY and waits. This set-up is
   excluded from the request counts and the CPU time (but the RSS high-water mark includes it).
3. The parent reads the emulator's request counters and says GO; the child starts waiting.
   With ``--pin`` (the default) the emulator runs on one half of the CPUs and the parent and the
   children on the other, so that executing the jobs (Aer, ~0.25 CPU s per job whatever the shots)
   does not steal the waiting process's CPU.
4. ``--queue-delay`` seconds after GO, the parent releases the queue: all N jobs become eligible
   at once, and the emulator runs ``--concurrency`` of them at a time.
5. The child returns when it has seen every job final, and writes when it learned of each one.
   The parent reads the counters again and the emulator's ``finished`` timestamp of every job.

Figures (per method and N):

- status requests per job: ``GET /jobs`` + ``GET /jobs/{job_id}`` between GO and the end, over N;
- metrics requests per job: ``GET /jobs/{job_id}/metrics`` over N (queue positions, run timestamps);
- detection lag: for each job, from the emulator's ``finished`` timestamp to the moment the waiting
  code learned the job was final (median, p95, max);
- peak RSS: the child's RSS high-water mark (``VmHWM``), and its RSS when waiting started;
- CPU seconds: user + system time of the child between GO and the end of the wait (all threads);
- emulator CPU: the emulator process's CPU seconds over the same span (it also runs the jobs).

Nothing here passes or fails: the script measures, prints, and saves JSON and Markdown under
``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
READY = "POLLING-BENCHMARK-CHILD-READY"
GO = "GO"

METHODS = {
    "ours": "await_jobs (batched watcher, PollPolicy())",
    "baseline": "per-job thread, wait_for_final_state(poll_interval=0.5)",
    # Not run by default: separates the cost of the queue-position reads from the rest.
    "ours-no-positions": "await_jobs with PollPolicy(queue_position_every=None) (diagnostic)",
}
SHORT_NAMES = {"ours": "await_jobs", "baseline": "per-job 0.5 s", "ours-no-positions": "await_jobs, no pos."}
STATUS_ROUTES = ("GET /jobs", "GET /jobs/{job_id}")
METRICS_ROUTE = "GET /jobs/{job_id}/metrics"
BACKEND_FOLDER = "manila"
BACKEND = "ibmq_manila"
# The emulator's own queue delay: long enough that no job starts before the parent releases them.
HOLD_SECONDS = 7 * 24 * 3600.0
FULL_SIZES = (10, 100, 1000)
QUICK_SIZES = (10, 100)
FULL_QUEUE_DELAY = 20.0
QUICK_QUEUE_DELAY = 5.0
PACKAGES = (
    "prefect-qiskit-jobs",
    "prefect",
    "qiskit",
    "qiskit-ibm-runtime",
    "qiskit-aer",
    "requests",
    "urllib3",
    "fastapi",
    "uvicorn",
    "pydantic",
    "psutil",
)


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    methods: tuple[str, ...]
    queue_delay: float
    concurrency: int
    shots: int
    baseline_poll_interval: float
    max_wait: float
    submit_threads: int
    quick: bool
    waiter_cpus: tuple[int, ...] | None
    emulator_cpus: tuple[int, ...] | None


# ======================================================================================
# small helpers
# ======================================================================================
def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolation percentile (``fraction`` in [0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``); None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# ======================================================================================
# the child: one measured wait
# ======================================================================================
Waiter = Callable[[float], tuple[dict[str, float], dict[str, str], list[str]]]


def prepare_ours(raw_jobs: list[dict[str, Any]], positions: bool = True) -> Waiter:
    """Set up ``await_jobs``: credentials, the shared gateway (authenticated), job refs."""
    import asyncio

    from prefect.logging import get_logger

    from prefect_qiskit_jobs.blocks import IBMQuantumCredentials
    from prefect_qiskit_jobs.models import JobRef, JobSnapshot, PollPolicy
    from prefect_qiskit_jobs.monitoring import WaitMonitor
    from prefect_qiskit_jobs.runtime import gateway_for
    from prefect_qiskit_jobs.sensor import await_jobs
    from prefect_qiskit_jobs.tags import FLOW_RUN_PREFIX

    policy = PollPolicy() if positions else PollPolicy(queue_position_every=None)
    jobs = [JobRef.model_validate(job) for job in raw_jobs]
    credentials = IBMQuantumCredentials.from_environment()
    gateway = gateway_for(credentials)
    flow_tag = next(t for t in jobs[0].tags if t.startswith(FLOW_RUN_PREFIX))
    # The submit task has already built this process's client and fetched an IAM token.
    gateway.list_jobs(tags=[flow_tag], pending=True, limit=1)
    detected: dict[str, float] = {}

    class TimedMonitor(WaitMonitor):
        """The default monitor of ``await_jobs``, noting when the wait first sees each job final."""

        async def observe(self, snapshot: JobSnapshot) -> None:
            if snapshot.status.is_final and snapshot.job_id not in detected:
                detected[snapshot.job_id] = time.time()
            await super().observe(snapshot)

    def wait(deadline: float) -> tuple[dict[str, float], dict[str, str], list[str]]:
        monitor = TimedMonitor(jobs, get_logger("prefect_qiskit_jobs.sensor"), None, None)
        errors: list[str] = []
        try:
            asyncio.run(
                await_jobs(
                    jobs,
                    credentials=credentials,
                    poll=policy,
                    timeout=max(deadline - time.time(), 1.0),
                    cancel_on_timeout=False,
                    monitor=monitor,
                )
            )
        except Exception as exc:  # a timeout or an IBM error: keep what was measured
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        statuses = {job_id: s.status.value for job_id, s in monitor.snapshots.items() if s is not None}
        return detected, statuses, errors

    return wait


def prepare_baseline(raw_jobs: list[dict[str, Any]], poll_interval: float) -> Waiter:
    """Set up the raw client's job handles, as ``SamplerV2.run`` returns them (no request per job)."""
    from qiskit_ibm_runtime import QiskitRuntimeService, RuntimeJobV2
    from qiskit_ibm_runtime.exceptions import RuntimeJobTimeoutError

    service = QiskitRuntimeService()  # the QISKIT_IBM_* environment points at the emulator
    backend = service.backend(raw_jobs[0]["backend"])
    # What QiskitRuntimeService._run builds after the POST: one shared backend and REST client.
    client = service._active_api_client
    jobs = [
        RuntimeJobV2(
            backend=backend,
            api_client=client,
            job_id=job["job_id"],
            program_id=job["primitive"],
            service=service,
            tags=list(job["tags"]),
        )
        for job in raw_jobs
    ]

    def wait(deadline: float) -> tuple[dict[str, float], dict[str, str], list[str]]:
        detected: dict[str, float] = {}
        statuses: dict[str, str] = {}
        errors: list[str] = []

        def follow(job: RuntimeJobV2) -> None:
            try:
                job.wait_for_final_state(
                    timeout=max(deadline - time.time(), 0.1), poll_interval=poll_interval
                )
            except RuntimeJobTimeoutError:
                errors.append(f"{job.job_id()}: timed out")
                return
            except Exception as exc:  # what job.result() would raise: record it and go on
                errors.append(f"{job.job_id()}: {type(exc).__name__}: {exc}"[:300])
                return
            detected[job.job_id()] = time.time()
            statuses[job.job_id()] = str(job.status())  # final: answered from memory, no request

        threads = [threading.Thread(target=follow, args=(job,), daemon=True) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return detected, statuses, errors

    return wait


class Sampler:
    """Samples the child's RSS and thread count twice a second while it waits."""

    def __init__(self) -> None:
        self.max_threads = threading.active_count()
        self.max_rss_kib = proc_status_kib("VmRSS") or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="benchmark-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.max_threads = max(self.max_threads, threading.active_count())
            self.max_rss_kib = max(self.max_rss_kib, proc_status_kib("VmRSS") or 0)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class DiscardedConnections(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection" (a TCP connection thrown away).

    The client's REST session keeps at most 10 connections per host; a thread that finds none free
    opens a new one and closes it afterwards. urllib3's own NullHandler hides the warning unless
    logging is configured (Prefect configures it), so it is counted here, the same way in both waits.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is full" in record.getMessage():
            self.count += 1


def child_main(args: argparse.Namespace) -> int:
    """One measured wait: set up, say READY, wait for GO, wait for the jobs, write what happened."""
    raw_jobs = json.loads(Path(args.jobs_file).read_text())
    discarded = DiscardedConnections()
    logging.getLogger("urllib3.connectionpool").addHandler(discarded)
    setup_started = time.time()
    if args.child == "baseline":
        wait = prepare_baseline(raw_jobs, args.poll_interval)
    else:
        wait = prepare_ours(raw_jobs, positions=args.child == "ours")
    setup_seconds = time.time() - setup_started
    setup_cpu = cpu_seconds(resource.getrusage(resource.RUSAGE_SELF))
    print(READY, flush=True)
    if sys.stdin.readline().strip() != GO:
        return 3
    rss_at_start = proc_status_kib("VmRSS")
    hwm_at_start = proc_status_kib("VmHWM")
    threads_at_start = threading.active_count()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    with Sampler() as sampler:
        detected, statuses, errors = wait(started + args.max_wait)
    ended = time.time()
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "method": args.child,
        "pid": os.getpid(),
        "setup_seconds": setup_seconds,
        "setup_cpu_seconds": setup_cpu,
        "wait_started": started,
        "wait_ended": ended,
        "cpu_user_seconds": usage_after.ru_utime - usage_before.ru_utime,
        "cpu_system_seconds": usage_after.ru_stime - usage_before.ru_stime,
        "rss_at_start_kib": rss_at_start,
        "hwm_at_start_kib": hwm_at_start,
        "peak_rss_kib": proc_status_kib("VmHWM") or usage_after.ru_maxrss,
        "peak_rss_sampled_during_wait_kib": sampler.max_rss_kib,
        "threads_at_start": threads_at_start,
        "max_threads_during_wait": sampler.max_threads,
        "package_file": getattr(sys.modules.get("prefect_qiskit_jobs"), "__file__", None),
        "discarded_connections": discarded.count,
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "detected": detected,
        "statuses": statuses,
        "errors": errors,
    }
    Path(args.result_file).write_text(json.dumps(result))
    return 0


# ======================================================================================
# the parent: emulator, submission, orchestration, figures
# ======================================================================================
def bell_circuit(gateway: Any) -> Any:
    """A 2-qubit Bell circuit transpiled once for the backend (ISA), as a submit task would get it."""
    from qiskit import QuantumCircuit
    from qiskit.transpiler import generate_preset_pass_manager

    circuit = QuantumCircuit(2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    backend = gateway.backend(BACKEND)
    return generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)


# The emulator decodes job parameters (QPY) on several threads at once; on CPython 3.11 that can fail
# now and then with "AST constructor recursion depth mismatch" (CPython's ast module is not
# thread-safe there). It answers 400 and creates no job, so submitting again is safe.
SPURIOUS_REJECTION = "recursion depth mismatch"
SUBMIT_ATTEMPTS = 5


def submit_jobs(gateway: Any, circuit: Any, size: int, settings: Settings) -> tuple[list[Any], int]:
    """N Sampler jobs sharing one flow-run tag, each with its own submit key (as the submit task tags).

    Returns the refs and how many submissions the emulator spuriously rejected and were made again.
    """
    from concurrent.futures import ThreadPoolExecutor

    from prefect_qiskit_jobs import tags
    from prefect_qiskit_jobs.exceptions import IQPError
    from prefect_qiskit_jobs.models import Primitive

    flow_run_id = uuid.uuid4()
    retries: list[str] = []

    def submit(_index: int) -> Any:
        for attempt in range(SUBMIT_ATTEMPTS):
            job_tags = tags.job_tags(flow_run_id=flow_run_id, task_run_id=None, submit_key=uuid.uuid4().hex)
            try:
                return gateway.submit(
                    Primitive.SAMPLER, [(circuit, None, settings.shots)], BACKEND, {}, job_tags
                )
            except IQPError as exc:
                if SPURIOUS_REJECTION not in str(exc) or attempt == SUBMIT_ATTEMPTS - 1:
                    raise
                retries.append(str(exc)[:200])
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=settings.submit_threads) as pool:
        return list(pool.map(submit, range(size))), len(retries)


class ChildOutput:
    """Reads the child's stdout on a thread: notices READY, and keeps the pipe drained."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.ready = threading.Event()
        self.lines: list[str] = []
        self._child = child
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._child.stdout is not None
        for raw in self._child.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line == READY:
                self.ready.set()
            else:
                self.lines.append(line)


class Probe:
    """Times one admin request to the emulator each second: how responsive the service is under load."""

    def __init__(self, emulator: Any) -> None:
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

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class OtherLoad:
    """CPU seconds the whole machine spent on processes other than this benchmark's, over a run.

    The machine may be shared: this says how much of it something else was using meanwhile.
    """

    def __init__(self) -> None:
        self._busy = self._machine_busy()
        self._own = resource.getrusage(resource.RUSAGE_SELF)

    @staticmethod
    def _machine_busy() -> float | None:
        try:
            import psutil

            t = psutil.cpu_times()
        except Exception:
            return None
        return float(sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal")))

    def seconds(self, known: float) -> float | None:
        """Busy machine time since construction minus ``known`` (waiter + emulator) and the parent's own."""
        now = self._machine_busy()
        if now is None or self._busy is None:
            return None
        own = cpu_seconds(resource.getrusage(resource.RUSAGE_SELF)) - cpu_seconds(self._own)
        return max(0.0, now - self._busy - known - own)


def emulator_cpu(emulator: Any) -> float | None:
    try:
        import psutil

        times = psutil.Process(emulator.process.pid).cpu_times()
    except Exception:
        return None
    return float(times.user + times.system)


def counter_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    routes_before, routes_after = before.get("routes", {}), after.get("routes", {})
    delta = {route: count - routes_before.get(route, 0) for route, count in routes_after.items()}
    return {route: count for route, count in sorted(delta.items()) if count}


def per_job_delta(before: dict[str, Any], after: dict[str, Any], route: str) -> list[int]:
    jobs_before, jobs_after = before.get("jobs", {}), after.get("jobs", {})
    return [
        counts.get(route, 0) - jobs_before.get(job_id, {}).get(route, 0)
        for job_id, counts in jobs_after.items()
    ]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def submit_held(
    emulator: Any, gateway: Any, circuit: Any, size: int, settings: Settings, jobs_file: Path
) -> tuple[float, int, int]:
    """Empty the emulator, submit N jobs (held queued), write their refs.

    Returns the seconds taken, the jobs not queued (should be 0), and the submissions made again.
    """
    emulator.reset(jobs=True)
    started = time.time()
    refs, resubmitted = submit_jobs(gateway, circuit, size, settings)
    seconds = time.time() - started
    jobs_file.write_text(json.dumps([ref.model_dump(mode="json") for ref in refs]))
    jobs = emulator.jobs()
    if len(jobs) != size:
        raise RuntimeError(f"the emulator holds {len(jobs)} jobs after {size} submissions")
    return seconds, sum(1 for job in jobs if job["status"] != "Queued"), resubmitted


def start_child(
    method: str, settings: Settings, jobs_file: Path, result_file: Path, log_file: Path, code_dir: Path
) -> subprocess.Popen[bytes]:
    """The measured process: ``python -m benchmarks.polling --child METHOD ...`` in ``code_dir``."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.polling",
        "--child",
        method,
        "--jobs-file",
        str(jobs_file),
        "--result-file",
        str(result_file),
        "--max-wait",
        str(settings.max_wait),
        "--poll-interval",
        str(settings.baseline_poll_interval),
    ]
    with log_file.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=code_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=os.environ.copy(),
        )


def run_once(
    emulator: Any,
    gateway: Any,
    circuit: Any,
    method: str,
    size: int,
    settings: Settings,
    workdir: Path,
    code_dir: Path,
) -> dict[str, Any]:
    """Submit N held jobs, start the child, GO, release after the queue delay, collect the figures."""
    print(f"\n[{method} N={size}] submitting {size} jobs ...", flush=True)
    jobs_file = workdir / f"{method}-{size}-jobs.json"
    result_file = workdir / f"{method}-{size}-result.json"
    log_file = workdir / f"{method}-{size}-child.log"
    submit_seconds, not_queued, resubmitted = submit_held(
        emulator, gateway, circuit, size, settings, jobs_file
    )
    print(
        f"[{method} N={size}] submitted in {submit_seconds:.1f} s; starting the waiting process", flush=True
    )
    capped = False
    child = start_child(method, settings, jobs_file, result_file, log_file, code_dir)
    try:
        output = ChildOutput(child)
        if not output.ready.wait(timeout=600):
            raise RuntimeError(f"the {method} child never became ready:\n{log_tail(log_file)}")
        before = emulator.stats()
        emulator_cpu_before = emulator_cpu(emulator)
        others = OtherLoad()
        assert child.stdin is not None
        child.stdin.write(f"{GO}\n".encode())
        child.stdin.flush()
        go = time.time()
        load_at_go = os.getloadavg()
        while time.time() < go + settings.queue_delay and child.poll() is None:
            time.sleep(0.05)
        release_requested = time.time()
        emulator.release()
        released = time.time()
        print(f"[{method} N={size}] released the queue {released - go:.1f} s after GO; waiting", flush=True)
        with Probe(emulator) as probe:
            try:
                child.wait(timeout=settings.max_wait + 120)
            except subprocess.TimeoutExpired:
                capped = True
        after = emulator.stats()
        emulator_cpu_after = emulator_cpu(emulator)
        load_at_end = os.getloadavg()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    if child.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"the {method} child exited with {child.returncode}:\n{log_tail(log_file)}")
    measured = json.loads(result_file.read_text())
    package_file = measured["package_file"]
    if package_file and not Path(package_file).resolve().is_relative_to(code_dir.resolve()):
        raise RuntimeError(f"the {method} child imported {package_file}, not the code in {code_dir}")
    emulator_seconds = (
        None
        if emulator_cpu_before is None or emulator_cpu_after is None
        else emulator_cpu_after - emulator_cpu_before
    )
    waiter_seconds = measured["cpu_user_seconds"] + measured["cpu_system_seconds"]
    others_seconds = others.seconds(waiter_seconds + (emulator_seconds or 0.0))
    finished = {
        job["id"]: datetime.fromisoformat(job["finished"]).timestamp()
        for job in emulator.jobs()
        if job["finished"]
    }
    return figures(
        method=method,
        size=size,
        measured=measured,
        finished=finished,
        counters=counter_delta(before, after),
        per_job_gets=per_job_delta(before, after, "GET /jobs/{job_id}"),
        emulator_cpu=emulator_seconds,
        timeline={
            "go": go,
            "release_requested": release_requested,
            "released": released,
            "submit_seconds": submit_seconds,
        },
        notes={
            "capped": capped or bool(measured["errors"]),
            "package_file": package_file,
            "not_queued_at_go": not_queued,
            "submissions_made_again": resubmitted,
            "emulator_probe_p50_ms": round_or_none(_ms(percentile(probe.latencies, 0.5)), 1),
            "emulator_probe_p95_ms": round_or_none(_ms(percentile(probe.latencies, 0.95)), 1),
            "other_processes_cpu_seconds": round_or_none(others_seconds, 1),
            "load_average_at_go": [round(x, 2) for x in load_at_go],
            "load_average_at_end": [round(x, 2) for x in load_at_end],
            "discarded_connections": measured["discarded_connections"],
            "waiter_cpu_affinity": measured["cpu_affinity"],
        },
    )


def figures(
    *,
    method: str,
    size: int,
    measured: dict[str, Any],
    finished: dict[str, float],
    counters: dict[str, int],
    per_job_gets: list[int],
    emulator_cpu: float | None,
    timeline: dict[str, float],
    notes: dict[str, Any],
) -> dict[str, Any]:
    """The figures of one run, from the child's report and the emulator's counters and timestamps."""
    detected: dict[str, float] = measured["detected"]
    lags = [detected[job_id] - finished[job_id] for job_id in detected if job_id in finished]
    status_requests = sum(counters.get(route, 0) for route in STATUS_ROUTES)
    metrics_requests = counters.get(METRICS_ROUTE, 0)
    wait_seconds = measured["wait_ended"] - measured["wait_started"]
    last_finished = max((finished[j] for j in detected if j in finished), default=None)
    cpu = measured["cpu_user_seconds"] + measured["cpu_system_seconds"]
    kib = 1024.0
    statuses: dict[str, int] = {}
    for status in measured["statuses"].values():
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "method": method,
        "method_description": METHODS[method],
        "jobs": size,
        "jobs_detected_final": len(detected),
        "final_statuses": statuses,
        "status_requests": status_requests,
        "status_requests_per_job": status_requests / size,
        "list_requests": counters.get("GET /jobs", 0),
        "job_get_requests": counters.get("GET /jobs/{job_id}", 0),
        "job_get_requests_per_job_max": max(per_job_gets, default=0),
        "metrics_requests": metrics_requests,
        "metrics_requests_per_job": metrics_requests / size,
        "all_requests": sum(counters.values()),
        "requests_by_route": counters,
        "request_rate_per_second": sum(counters.values()) / wait_seconds if wait_seconds > 0 else None,
        "lag_median_s": round_or_none(percentile(lags, 0.5)),
        "lag_p95_s": round_or_none(percentile(lags, 0.95)),
        "lag_max_s": round_or_none(max(lags, default=None) if lags else None),
        "lag_min_s": round_or_none(min(lags) if lags else None),
        "lags_s": sorted(round(lag, 3) for lag in lags),
        "wait_seconds": round(wait_seconds, 3),
        "makespan_seconds": round_or_none(
            None if last_finished is None else last_finished - timeline["release_requested"]
        ),
        "released_after_go_s": round(timeline["release_requested"] - timeline["go"], 3),
        "release_call_seconds": round(timeline["released"] - timeline["release_requested"], 3),
        "finished_after_release_and_lag_s": sorted(
            [round(finished[job_id] - timeline["release_requested"], 2), round(at - finished[job_id], 3)]
            for job_id, at in detected.items()
            if job_id in finished
        ),
        "cpu_seconds": round(cpu, 3),
        "cpu_user_seconds": round(measured["cpu_user_seconds"], 3),
        "cpu_system_seconds": round(measured["cpu_system_seconds"], 3),
        "peak_rss_mib": round(measured["peak_rss_kib"] / kib, 1),
        "rss_at_wait_start_mib": round((measured["rss_at_start_kib"] or 0) / kib, 1),
        "peak_rss_during_wait_sampled_mib": round(measured["peak_rss_sampled_during_wait_kib"] / kib, 1),
        "peak_rss_before_wait_mib": round((measured["hwm_at_start_kib"] or 0) / kib, 1),
        "max_threads": measured["max_threads_during_wait"],
        "child_setup_seconds": round(measured["setup_seconds"], 3),
        "child_setup_cpu_seconds": round(measured["setup_cpu_seconds"], 3),
        "emulator_cpu_seconds": round_or_none(emulator_cpu),
        "submit_seconds": round(timeline["submit_seconds"], 3),
        "errors": measured["errors"][:20],
        "error_count": len(measured["errors"]),
        **notes,
    }


# ======================================================================================
# reporting
# ======================================================================================
COLUMNS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("method", "<", lambda r: SHORT_NAMES[r["method"]]),
    ("N", ">", lambda r: str(r["jobs"])),
    ("status req/job", ">", lambda r: f"{r['status_requests_per_job']:.2f}"),
    ("(list + get)", ">", lambda r: f"{r['list_requests']} + {r['job_get_requests']}"),
    ("metrics req/job", ">", lambda r: f"{r['metrics_requests_per_job']:.2f}"),
    ("lag p50 s", ">", lambda r: _num(r["lag_median_s"], 2)),
    ("lag p95 s", ">", lambda r: _num(r["lag_p95_s"], 2)),
    ("lag max s", ">", lambda r: _num(r["lag_max_s"], 2)),
    ("peak RSS MiB", ">", lambda r: f"{r['peak_rss_mib']:.0f}"),
    ("RSS at start MiB", ">", lambda r: f"{r['rss_at_wait_start_mib']:.0f}"),
    ("CPU s", ">", lambda r: f"{r['cpu_seconds']:.2f}"),
    ("threads", ">", lambda r: str(r["max_threads"])),
    ("wait s", ">", lambda r: f"{r['wait_seconds']:.0f}"),
    ("emulator CPU s", ">", lambda r: _num(r["emulator_cpu_seconds"], 0)),
    ("probe p50 ms", ">", lambda r: _num(r["emulator_probe_p50_ms"], 0)),
    ("others CPU s", ">", lambda r: _num(r["other_processes_cpu_seconds"], 0)),
    ("final", ">", lambda r: f"{r['jobs_detected_final']}/{r['jobs']}"),
)


def _cpus(cpus: list[int] | None) -> str:
    return ",".join(str(cpu) for cpu in cpus or [])


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def text_table(runs: list[dict[str, Any]]) -> str:
    rows = [[render(run) for _name, _align, render in COLUMNS] for run in runs]
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, (name, _a, _r) in enumerate(COLUMNS)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}"
            for cell, width, (_n, align, _r) in zip(cells, widths, COLUMNS, strict=True)
        )

    header = line([name for name, _align, _render in COLUMNS])
    return "\n".join([header, "-" * len(header), *(line(row) for row in rows)])


def markdown_table(runs: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(name for name, _align, _render in COLUMNS) + " |"
    rule = "|" + "|".join("---:" if align == ">" else "---" for _name, align, _render in COLUMNS) + "|"
    body = ["| " + " | ".join(render(run) for _n, _a, render in COLUMNS) + " |" for run in runs]
    return "\n".join([header, rule, *body])


def markdown_report(report: dict[str, Any]) -> str:
    settings, machine, code = report["settings"], report["machine"], report["code"]
    versions = ", ".join(f"{name} {version}" for name, version in report["versions"].items())
    capped = [f"{SHORT_NAMES[r['method']]} N={r['jobs']}" for r in report["runs"] if r["capped"]]
    unsuccessful = [
        f"{SHORT_NAMES[r['method']]} N={r['jobs']}: "
        + ", ".join(f"{count} {status}" for status, count in sorted(r["final_statuses"].items()))
        for r in report["runs"]
        if set(r["final_statuses"]) - {"DONE"}
    ]
    lines = [
        f"# Waiting for N jobs: `await_jobs` against per-job polling ({report['date']})",
        "",
        f"Command: `{report['command']}` — took {report['duration_seconds'] / 60:.1f} min.",
        "",
        markdown_table(report["runs"]),
        "",
        f"- Jobs: Sampler, 2-qubit Bell circuit, {settings['shots']} shots, on `{settings['backend']}` "
        f"of the local emulator; all N held queued for {settings['queue_delay']} s after the wait "
        f"starts, then released at once and run {settings['concurrency']} at a time.",
        "- `await_jobs`: default `PollPolicy()`, jobs tagged with one flow run. `per-job 0.5 s`: one "
        f"thread per job running `RuntimeJobV2.wait_for_final_state(poll_interval="
        f"{settings['baseline_poll_interval']})`, the loop of `job.result()`.",
        "- status req/job = (`GET /jobs` + `GET /jobs/{job_id}`) / N; metrics req/job = "
        "`GET /jobs/{job_id}/metrics` / N; counted by the emulator between GO and the end of the wait.",
        "- lag = emulator's `finished` timestamp → the moment the waiting code learned the job was "
        "final. peak RSS = the waiting process's high-water mark (includes imports); CPU s = its "
        "user+sys seconds while waiting; threads = most threads alive (incl. one sampler thread); "
        "wait s = GO → last job seen final; emulator CPU s also includes executing the jobs; probe p50 "
        "ms = median round trip of a 1/s request to the emulator's health route during the run; "
        "others CPU s = CPU seconds the machine spent on processes outside this benchmark meanwhile "
        "(a shared machine makes every other figure noisier).",
        (
            f"- CPUs: the waiting process (and this script) on CPU {_cpus(settings['waiter_cpus'])}, "
            f"the emulator on CPU {_cpus(settings['emulator_cpus'])}, so that executing jobs with Aer "
            "does not take the waiting process's CPU (other processes on the machine still may)."
            if settings["waiter_cpus"]
            else "- CPUs: not pinned; the emulator's job execution competes with the waiting process."
        ),
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, {machine['platform']}, Python {machine['python']}.",
        f"- Versions: {versions}.",
        f"- Code measured: `prefect_qiskit_jobs` from {code['source']}, commit `{code['commit'][:12]}`"
        + (
            f" plus uncommitted changes to {', '.join(code['working_tree_package_changes'])}"
            if code["source"] == "working tree" and code["working_tree_package_changes"]
            else ""
        )
        + ".",
        "- Jobs that did not end DONE (they still count: the wait saw them final): "
        + ("; ".join(unsuccessful) if unsuccessful else "none")
        + ".",
        f"- Capped or incomplete runs: {', '.join(capped) if capped else 'none'} "
        f"(each wait is bounded at {settings['max_wait']} s).",
    ]
    return "\n".join(lines) + "\n"


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpus": len(affinity(0)) if affinity else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def git_info() -> dict[str, Any]:
    changed = git("status", "--porcelain", "--", "prefect_qiskit_jobs").splitlines()
    return {
        "head": git("rev-parse", "HEAD").strip(),
        "working_tree_package_changes": [line[3:] for line in changed],
    }


def pin_package(rev: str | None, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Where the emulator and the children import ``prefect_qiskit_jobs`` from, and what that code is.

    Without ``rev``: this checkout's working tree, as installed. With ``rev``: that commit's
    ``prefect_qiskit_jobs``, exported with ``git archive`` into ``tmp`` next to a copy of this
    benchmark, so that edits made to the working tree while the benchmark runs change nothing. The
    parent then works from that directory: ``python -m`` puts the current directory first on
    ``sys.path`` in the emulator and in every child.
    """
    if rev is None:
        info = git_info()
        return ROOT, {"source": "working tree", "commit": info["head"], **info}
    import shutil
    import tarfile

    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    code = tmp / "code"
    (code / "benchmarks").mkdir(parents=True)
    archive = tmp / "package.tar"
    git("archive", "--format=tar", "-o", str(archive), commit, "prefect_qiskit_jobs")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(code, filter="data")
        else:  # Pythons without extraction filters; this is our own repository's archive
            tar.extractall(code)
    for name in ("__init__.py", "polling.py"):
        shutil.copy2(Path(__file__).with_name(name), code / "benchmarks" / name)
    sys.path.insert(0, str(code))
    os.chdir(code)
    import prefect_qiskit_jobs

    if not Path(prefect_qiskit_jobs.__file__ or "").resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"prefect_qiskit_jobs was imported from {prefect_qiskit_jobs.__file__}, not {code}")
    return code, {"source": f"git archive of {rev}", "commit": commit, **git_info()}


def save(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "polling-quick" if report["settings"]["quick"] else "polling"
    text = json.dumps(report, indent=2) + "\n"
    paths = [out_dir / f"{stem}-{report['date']}.json", out_dir / f"{stem}-latest.json"]
    for path in paths:
        path.write_text(text)
    markdown = out_dir / f"{stem}-latest.md"
    markdown.write_text(markdown_report(report))
    return [*paths, markdown]


# ======================================================================================
# entry points
# ======================================================================================
def run_all(settings: Settings, tmp: Path, code_dir: Path, runs: list[dict[str, Any]]) -> None:
    """Start the emulator and measure every (N, method) into ``runs``; the emulator is stopped after."""
    from prefect_qiskit_jobs.blocks import IBMQuantumCredentials
    from prefect_qiskit_jobs.emulator import EmulatorConfig, start_emulator
    from prefect_qiskit_jobs.runtime import gateway_for

    config = EmulatorConfig(
        backends=(BACKEND_FOLDER,), queue_delay=HOLD_SECONDS, concurrency=settings.concurrency
    )
    # The emulator and its threads inherit the CPUs of the thread that starts it; the children,
    # started later, inherit the waiter's CPUs.
    pin(settings.emulator_cpus)
    try:
        emulator = start_emulator(config)
    finally:
        pin(settings.waiter_cpus)
    with emulator:
        emulator.export_environment()  # the children find the emulator through QISKIT_IBM_* variables
        if settings.emulator_cpus is not None:
            emulator_affinity = tuple(sorted(os.sched_getaffinity(emulator.process.pid)))
            if emulator_affinity != settings.emulator_cpus:
                raise RuntimeError(f"the emulator runs on CPUs {emulator_affinity}")
        emulator_cwd = Path(os.readlink(f"/proc/{emulator.process.pid}/cwd"))
        if emulator_cwd.resolve() != code_dir.resolve():
            raise RuntimeError(f"the emulator runs in {emulator_cwd}, so it may not import {code_dir}")
        gateway = gateway_for(IBMQuantumCredentials.for_emulator(emulator))
        circuit = bell_circuit(gateway)
        for size in settings.sizes:
            for method in settings.methods:
                run = run_once(emulator, gateway, circuit, method, size, settings, tmp, code_dir)
                runs.append(run)
                print(
                    f"[{method} N={size}] {run['status_requests_per_job']:.2f} status req/job, "
                    f"lag p50 {_num(run['lag_median_s'], 2)} s / p95 {_num(run['lag_p95_s'], 2)} s, "
                    f"{run['cpu_seconds']:.2f} CPU s, peak RSS {run['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
        emulator.reset(jobs=True)


def pin(cpus: tuple[int, ...] | None) -> None:
    """Run the calling thread (and the threads and processes it starts from now on) on ``cpus``."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def split_cpus(enabled: bool) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """The waiter's CPUs and the emulator's: half each, so job execution never steals the waiter's CPU."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(available) < 2:
        return None, None
    half = len(available) // 2
    return tuple(available[:half]), tuple(available[half:])


@contextlib.contextmanager
def pinned(rev: str | None, tmp: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``pin_package`` for the duration of the block; the working directory is restored after."""
    cwd = Path.cwd()
    try:
        yield pin_package(rev, tmp)
    finally:
        os.chdir(cwd)


def parent_main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    out_dir = Path(args.out_dir).resolve()
    machine = machine_info()  # before any pinning narrows this process's CPUs
    started = time.time()
    print(
        f"Polling benchmark: sizes {settings.sizes}, methods {settings.methods}, "
        f"queue delay {settings.queue_delay} s, concurrency {settings.concurrency}, "
        f"{settings.shots} shots",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="polling-bench-") as tmp,
        pinned(args.package_rev, Path(tmp)) as (code_dir, code_info),
    ):
        print(f"prefect_qiskit_jobs: {code_info['source']} ({code_info['commit'][:12]})", flush=True)
        runs: list[dict[str, Any]] = []
        try:
            run_all(settings, Path(tmp), code_dir, runs)
        except BaseException as exc:
            if runs:  # keep what was measured, apart from the complete results
                path = out_dir / f"polling-incomplete-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
                out_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"error": repr(exc), "settings": asdict(settings), "runs": runs}))
                print(f"stopped early ({exc!r}); the runs so far are in {path}", file=sys.stderr)
            raise
    ended = time.time()
    report = {
        "benchmark": "polling",
        "date": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d"),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "finished": datetime.fromtimestamp(ended, timezone.utc).isoformat(),
        "duration_seconds": round(ended - started, 1),
        "command": " ".join(["python", "-m", "benchmarks.polling", *sys.argv[1:]]),
        "machine": machine,
        "versions": package_versions(),
        "code": code_info,
        "settings": {
            **asdict(settings),
            "backend": BACKEND,
            "circuit": "2-qubit Bell (h, cx, measure_all), transpiled for the backend",
            "poll_policy": "PollPolicy() defaults (ours-no-positions: queue_position_every=None)",
            "emulator_hold_seconds": HOLD_SECONDS,
            "submission": f"by the parent, {settings.submit_threads} threads, before the child starts",
            "child_setup": "imports, client, IAM token, job handles: before GO, not in requests or CPU",
        },
        "runs": runs,
    }
    print("\n" + text_table(runs))
    for path in save(report, out_dir):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"took {(ended - started) / 60:.1f} min")
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    default_sizes = QUICK_SIZES if args.quick else FULL_SIZES
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else default_sizes
    delay = (
        args.queue_delay
        if args.queue_delay is not None
        else (QUICK_QUEUE_DELAY if args.quick else FULL_QUEUE_DELAY)
    )
    methods = tuple(m.strip() for m in args.methods.split(","))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    waiter_cpus, emulator_cpus = split_cpus(args.pin)
    return Settings(
        waiter_cpus=waiter_cpus,
        emulator_cpus=emulator_cpus,
        sizes=sizes,
        methods=methods,
        queue_delay=delay,
        concurrency=args.concurrency,
        shots=args.shots,
        baseline_poll_interval=args.poll_interval,
        max_wait=args.max_wait,
        submit_threads=args.submit_threads,
        quick=args.quick,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.polling",
        description="Requests, detection lag, memory and CPU of waiting for N IBM Quantum jobs.",
    )
    parser.add_argument("--sizes", help="comma-separated job counts (default 10,100,1000; quick: 10,100)")
    parser.add_argument(
        "--queue-delay",
        type=float,
        help="seconds the jobs stay queued after the wait starts (default 20; quick: 5)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and a short queue delay")
    parser.add_argument("--methods", default="ours,baseline", help="which waits to measure: ours,baseline")
    parser.add_argument("--concurrency", type=int, default=50, help="jobs the emulator runs at once")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument(
        "--poll-interval", type=float, default=0.5, help="the baseline's seconds between status reads per job"
    )
    parser.add_argument(
        "--max-wait", type=float, default=1200.0, help="seconds after which a wait gives up (the cap)"
    )
    parser.add_argument("--submit-threads", type=int, default=4, help="threads submitting jobs (parent)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the emulator and the waiting processes on separate halves of the CPUs (default: on)",
    )
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument(
        "--package-rev",
        help="measure this commit's prefect_qiskit_jobs (git archive), not the working tree, e.g. HEAD",
    )
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--jobs-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return child_main(args) if args.child else parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
