"""Threads held by capped submits started with ``.map()``, and the time of an uncapped ``.map()``.

``python -m benchmarks.submit_threads [--capped 1000] [--cap 10] [--uncapped 100]`` runs two flows
against emulators on 127.0.0.1 and a temporary Prefect API (``prefect_test_harness``):

- **capped**: ``submit_sampler_job.map`` of ``--capped`` jobs under ``max_jobs_in_flight=--cap``,
  on an emulator that keeps jobs queued until released. Once the cap is full and the submits wait,
  the flow reads ``threading.active_count()``; then it releases the queued jobs again and again
  until every job is created. Printed: threads while waiting, the peak seen by a sampler thread
  over the whole run, jobs created (``POST /jobs``), the emulator's peak of pending jobs.
- **uncapped**: ``submit_sampler_job.map`` of ``--uncapped`` jobs with no cap, on an emulator
  whose jobs run at once; printed: the flow's wall time and threads at its peak.

Run it on another checkout's package to compare (``PYTHONPATH=<export of main> python -m
benchmarks.submit_threads``). This is a script, not one of the suite's scenarios: its figures are
read by hand (``docs/guides/in-flight-cap.md`` quotes them).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

BACKEND = "ibmq_manila"
OPTIONS = {"default_shots": 16}


class PeakThreads:
    """The highest ``threading.active_count()`` seen, sampled every 50 ms on a thread of its own."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakThreads:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, threading.active_count())


def bell() -> Any:
    from qiskit import QuantumCircuit, transpile
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)


def point_at(emulator: Any) -> None:
    os.environ.update(emulator.environment())


def capped_run(jobs: int, cap: int, circuit: Any) -> dict[str, Any]:
    from prefect import flow

    from prefect_qiskit_jobs import IBMQuantumCredentials, submit_sampler_job
    from prefect_qiskit_jobs.emulator import EmulatorConfig, start_emulator

    with start_emulator(EmulatorConfig(queue_delay=3600, concurrency=8)) as emulator:
        point_at(emulator)
        credentials = IBMQuantumCredentials.for_emulator(emulator).model_copy(
            update={"max_jobs_in_flight": cap}
        )
        waiting_threads: list[int] = []

        @flow
        def many_jobs() -> int:
            futures = submit_sampler_job.map(
                [[circuit]] * jobs, backend=BACKEND, credentials=credentials, options=OPTIONS
            )
            while emulator.stats()["pending"] < cap:
                time.sleep(0.05)
            time.sleep(2.0)  # the other submits reach their wait (a script: a pause is fine here)
            waiting_threads.append(threading.active_count())
            while emulator.stats()["routes"].get("POST /jobs", 0) < jobs:
                emulator.release()
                time.sleep(0.1)
            return len({future.result().job_id for future in futures})

        started = time.monotonic()
        with PeakThreads() as peak:
            distinct = many_jobs()
        stats = emulator.stats()
        return {
            "jobs": jobs,
            "cap": cap,
            "threads_while_waiting": waiting_threads[0],
            "peak_threads": peak.peak,
            "distinct_job_ids": distinct,
            "POST /jobs": stats["routes"].get("POST /jobs", 0),
            "peak_pending": stats["peak_pending"],
            "seconds": round(time.monotonic() - started, 1),
        }


def uncapped_run(jobs: int, circuit: Any) -> dict[str, Any]:
    from prefect import flow

    from prefect_qiskit_jobs import submit_sampler_job
    from prefect_qiskit_jobs.emulator import EmulatorConfig, start_emulator

    with start_emulator(EmulatorConfig(concurrency=8)) as emulator:
        point_at(emulator)

        @flow
        def many_jobs() -> int:
            futures = submit_sampler_job.map([[circuit]] * jobs, backend=BACKEND, options=OPTIONS)
            return len({future.result().job_id for future in futures})

        many_jobs()  # warm-up: imports, the client's first requests, Prefect's first flow run
        emulator.reset(jobs=True)
        started = time.monotonic()
        with PeakThreads() as peak:
            distinct = many_jobs()
        return {
            "jobs": jobs,
            "seconds": round(time.monotonic() - started, 1),
            "peak_threads": peak.peak,
            "distinct_job_ids": distinct,
            "POST /jobs": emulator.stats()["routes"].get("POST /jobs", 0),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.submit_threads")
    parser.add_argument("--capped", type=int, default=1000, help="mapped submits under the cap (0: skip)")
    parser.add_argument("--cap", type=int, default=10)
    parser.add_argument("--uncapped", type=int, default=100, help="mapped submits with no cap (0: skip)")
    args = parser.parse_args(argv)

    from prefect.testing.utilities import prefect_test_harness

    import prefect_qiskit_jobs

    print(f"package: {prefect_qiskit_jobs.__file__}")
    circuit = bell()
    with prefect_test_harness(600):
        if args.uncapped:
            print("uncapped:", uncapped_run(args.uncapped, circuit), flush=True)
        if args.capped:
            print("capped:", capped_run(args.capped, args.cap, circuit), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
