"""Submit → wait → fetch of one zero-queue job, through the package and through the raw client.

``python -m benchmarks.children.roundtrip --reps N ...``: after one unmeasured warm-up of each,
the two alternate (ABBA, so neither always runs first), each run timed end to end, the package's
also per phase, and the emulator's request counts read around every run (its admin routes are
not counted). Outside any flow run, with the Prefect API the environment names.
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
    args = parser.parse_args(argv)
    from prefect_qiskit_jobs import get_backend

    get_backend(BACKEND)  # the package's client and IAM token, as the raw client's below
    service = client.service()
    backend = service.backend(BACKEND)
    pubs = [(client.bell_for(backend), None, args.shots)]
    runs = {"package": package_run(pubs, args.shots), "raw": raw_run(backend, pubs, args.shots)}
    for once in runs.values():
        once()  # warm-up: first task runs, first job of each client; not measured
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for rep in range(args.reps):
        order = ("package", "raw") if rep % 2 == 0 else ("raw", "package")
        for name in order:
            before = emulator_requests(args.emulator_url)
            timing = runs[name]()
            timing["requests"] = emulator_requests(args.emulator_url) - before
            timings[name].append(timing)
            print(f"{name} #{rep}: {timing['total']:.2f} s", file=sys.stderr, flush=True)
    package_file = getattr(sys.modules.get("prefect_qiskit_jobs"), "__file__", None)
    Path(args.result_file).write_text(json.dumps({"timings": timings, "package_file": package_file}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
