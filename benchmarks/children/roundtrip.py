"""Submit → wait → fetch of zero-queue jobs, through the package and through the raw client.

``python -m benchmarks.children.roundtrip --reps N ...``: after one unmeasured warm-up of each,
the two alternate (ABBA, so neither always runs first), each run timed end to end, the package's
also per phase, and the emulator's request counts read around every run (its admin routes are
not counted). One job: outside any flow run, with the Prefect API the environment names.

``--many M --many-reps R`` then does the same for M jobs at once: the package in one flow run as a
user writes it (``submit_sampler_job.map``, ``wait_for_jobs``, ``fetch_job_results``), timed from
calling the flow to its return; the raw client submits all M, then calls ``.result()`` on each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import client
from benchmarks.harness.emulator import BACKEND

Run = Callable[[], dict[str, float]]


def emulator_requests(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/_emulator/stats", timeout=30) as response:
        return sum(json.loads(response.read())["routes"].values())


def package_run(pubs: list[Any], shots: int) -> Run:
    from prefect_qiskit_jobs import fetch_job_result, submit_sampler_job, wait_for_job

    def once() -> dict[str, float]:
        started = time.perf_counter()
        job = submit_sampler_job(pubs, backend=BACKEND)
        submitted = time.perf_counter()
        wait_for_job(job)
        waited = time.perf_counter()
        result = fetch_job_result(job)
        fetched = time.perf_counter()
        _check(result, shots)
        return {
            "total": fetched - started,
            "submit": submitted - started,
            "wait": waited - submitted,
            "fetch": fetched - waited,
        }

    return once


def raw_run(backend: Any, pubs: list[Any], shots: int) -> Run:
    from qiskit_ibm_runtime import SamplerV2

    def once() -> dict[str, float]:
        started = time.perf_counter()
        result = SamplerV2(mode=backend).run(pubs).result()
        _check(result, shots)
        return {"total": time.perf_counter() - started}

    return once


def package_flow_run(pubs: list[Any], shots: int, count: int) -> Run:
    from prefect import flow

    from prefect_qiskit_jobs import fetch_job_results, submit_sampler_job, wait_for_jobs

    @flow(name="roundtrip-many")
    def many() -> list[Any]:
        jobs = [future.result() for future in submit_sampler_job.map([pubs] * count, backend=BACKEND)]
        wait_for_jobs(jobs)
        return fetch_job_results(jobs)

    def once() -> dict[str, float]:
        started = time.perf_counter()
        results = many()
        total = time.perf_counter() - started
        for result in results:
            _check(result, shots)
        return {"total": total}

    return once


def raw_many_run(backend: Any, pubs: list[Any], shots: int, count: int) -> Run:
    from qiskit_ibm_runtime import SamplerV2

    def once() -> dict[str, float]:
        started = time.perf_counter()
        jobs = [SamplerV2(mode=backend).run(pubs) for _ in range(count)]
        results = [job.result() for job in jobs]
        total = time.perf_counter() - started
        for result in results:
            _check(result, shots)
        return {"total": total}

    return once


def alternate(
    runs: dict[str, Run], reps: int, url: str, label: str, warm_ups: dict[str, Run] | None = None
) -> dict[str, list[dict[str, float]]]:
    """``reps`` timed runs of each, ABBA, after one unmeasured warm-up of each (``warm_ups``: instead)."""
    for once in (warm_ups or runs).values():
        once()  # warm-up: first task runs, first job of each client; not measured
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for rep in range(reps):
        order = list(runs) if rep % 2 == 0 else list(reversed(runs))
        for name in order:
            before = emulator_requests(url)
            timing = runs[name]()
            timing["requests"] = emulator_requests(url) - before
            timings[name].append(timing)
            print(f"{label} {name} #{rep}: {timing['total']:.2f} s", file=sys.stderr, flush=True)
    return timings


def _check(result: Any, shots: int) -> None:
    counts = result[0].data.meas.get_counts()
    if sum(counts.values()) != shots:
        raise RuntimeError(f"a result has {sum(counts.values())} shots, not {shots}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.children.roundtrip")
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--emulator-url", required=True)
    parser.add_argument("--result-file", required=True)
    parser.add_argument("--many", type=int, default=0, help="jobs per run of the many-jobs case (0: none)")
    parser.add_argument("--many-reps", type=int, default=0)
    args = parser.parse_args(argv)
    from prefect_qiskit_jobs import get_backend

    get_backend(BACKEND)  # the package's client and IAM token, as the raw client's below
    service = client.service()
    backend = service.backend(BACKEND)
    pubs = [(client.bell_for(backend), None, args.shots)]
    runs = {"package": package_run(pubs, args.shots), "raw": raw_run(backend, pubs, args.shots)}
    timings = alternate(runs, args.reps, args.emulator_url, "one job")
    many: dict[str, list[dict[str, float]]] = {}
    if args.many and args.many_reps:
        many_runs = {
            "package": package_flow_run(pubs, args.shots, args.many),
            "raw": raw_many_run(backend, pubs, args.shots, args.many),
        }
        warm_ups = {  # a small flow run, not a whole one: imports and first runs are what it is for
            "package": package_flow_run(pubs, args.shots, 5),
            "raw": raw_many_run(backend, pubs, args.shots, 5),
        }
        many = alternate(many_runs, args.many_reps, args.emulator_url, f"{args.many} jobs", warm_ups)
    package_file = getattr(sys.modules.get("prefect_qiskit_jobs"), "__file__", None)
    Path(args.result_file).write_text(
        json.dumps({"timings": timings, "many": many, "package_file": package_file})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
