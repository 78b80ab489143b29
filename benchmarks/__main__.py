"""``python -m benchmarks [--quick] [--scenario NAME ...] [--package-rev REV]``.

Runs the chosen scenarios one after another (all by default), prints each one's table with
every figure beside its goal, and writes ``results/<scenario>.md`` and ``results/<scenario>.json``.
A scenario that fails is reported and the others still run; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.harness.code import ROOT, CodeUnderTest, code_under_test
from benchmarks.harness.context import Bench
from benchmarks.harness.cpus import CpuPlan, pin
from benchmarks.harness.machine import machine_info, package_versions
from benchmarks.report import RunInfo, save, terminal
from benchmarks.scenarios import NAMES, runner

RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--scenario", action="append", choices=NAMES, help="run this scenario (repeatable; default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="few jobs and short queues: minutes, not an hour"
    )
    parser.add_argument(
        "--package-rev", help="measure this commit's prefect_qiskit_jobs (git archive), e.g. HEAD"
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the emulator and the measured processes on separate halves of the CPUs (default: on)",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where results are written")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs) and say where")
    return parser.parse_args(argv)


def run_one(name: str, bench: Bench, info: dict[str, Any], out_dir: Path, command: str) -> None:
    started = time.time()
    print(f"\n### {name}{' (quick)' if bench.quick else ''}: started", flush=True)
    summary = runner(name)(bench)
    duration = time.time() - started
    code: CodeUnderTest = bench.code
    run = RunInfo(
        date=datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d"),
        started=datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        duration_seconds=duration,
        command=command,
        machine=info["machine"],
        versions=info["versions"],
        code=code.as_json(),
        code_text=code.describe(),
        cpus=bench.cpus.as_json(),
        cpus_text=bench.cpus.describe(),
    )
    print("\n" + terminal(summary), flush=True)
    for path in save(summary, run, out_dir):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"{name} took {duration / 60:.1f} min", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.scenario or list(NAMES)
    command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
    # Everything here talks to 127.0.0.1: no proxy may intercept it.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    info: dict[str, Any] = {"machine": machine_info()}  # before pinning narrows the CPUs
    cpus = CpuPlan.split(args.pin)
    pin(cpus.waiters)
    failed: list[str] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="benchmarks-"))
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        # This process and every child keep Prefect's files here, never in the user's ~/.prefect.
        os.environ["PREFECT_HOME"] = str(workdir / "prefect-home")
        os.environ.pop("PREFECT_API_URL", None)
        code = stack.enter_context(code_under_test(args.package_rev, workdir))
        info["versions"] = package_versions()
        print(f"prefect_qiskit_jobs: {code.source} ({code.commit[:12]}); CPUs: {cpus.describe()}", flush=True)
        for name in names:
            bench = Bench(code, cpus, workdir / name, args.quick)
            try:
                run_one(name, bench, info, args.out_dir.resolve(), command)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                print(f"{name} FAILED; going on with the others", file=sys.stderr, flush=True)
        if args.keep:
            print(f"scratch directory (logs, job lists, raw results): {workdir}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
