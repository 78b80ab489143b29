"""One measured wait for N jobs: ``python -m benchmarks.children.waiter --method await_jobs ...``.

Set-up (imports, client, IAM token, job handles) happens before READY; after GO the child waits
until every job is final, notes when it learned of each, and writes what it measured as JSON.

- ``await_jobs``: the package's ``await_jobs`` on all jobs with the default ``PollPolicy()``; a
  subclass of its default monitor notes the moment each job is first seen final.
- ``per-job``: what ``job.result()`` does, once per job: a thread per job running the client's
  ``RuntimeJobV2.wait_for_final_state(poll_interval=...)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import client
from benchmarks.harness.child import handshake
from benchmarks.harness.sampling import own_cpu_seconds, status_bytes

# A wait: given its deadline, returns when it saw each job final, final statuses, and errors.
Outcome = tuple[dict[str, float], dict[str, str], list[str]]
Wait = Callable[[float], Outcome]


def prepare_await_jobs(refs: list[dict[str, Any]]) -> Wait:
    import asyncio

    from prefect.logging import get_logger

    from prefect_qiskit_jobs import JobRef, JobSnapshot, PollPolicy, get_backend
    from prefect_qiskit_jobs.wait.display import WaitMonitor
    from prefect_qiskit_jobs.wait.sensor import await_jobs

    jobs = [JobRef.model_validate(job) for job in refs]
    # A submit task would already have built this process's client and fetched an IAM token.
    get_backend(jobs[0].backend)
    detected: dict[str, float] = {}

    class TimedMonitor(WaitMonitor):
        """``await_jobs``'s default monitor, noting when the wait first sees each job final."""

        async def observe(self, snapshot: JobSnapshot) -> None:
            if snapshot.status.is_final and snapshot.job_id not in detected:
                detected[snapshot.job_id] = time.time()
            await super().observe(snapshot)

    def wait(deadline: float) -> Outcome:
        monitor = TimedMonitor(jobs, get_logger("prefect_qiskit_jobs.wait.sensor"), None, None)
        errors: list[str] = []
        try:
            asyncio.run(
                await_jobs(
                    jobs,
                    poll=PollPolicy(),
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


def prepare_per_job(refs: list[dict[str, Any]], poll_interval: float) -> Wait:
    from qiskit_ibm_runtime.exceptions import RuntimeJobTimeoutError

    handles = client.job_handles(client.service(), refs)

    def wait(deadline: float) -> Outcome:
        detected: dict[str, float] = {}
        statuses: dict[str, str] = {}
        errors: list[str] = []

        def follow(job: Any) -> None:
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

        threads = [threading.Thread(target=follow, args=(job,), daemon=True) for job in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return detected, statuses, errors

    return wait


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.children.waiter")
    parser.add_argument("--method", choices=("await_jobs", "per-job"), required=True)
    parser.add_argument("--jobs-file", required=True)
    parser.add_argument("--result-file", required=True)
    parser.add_argument("--max-wait", type=float, required=True)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    refs = json.loads(Path(args.jobs_file).read_text())
    setup_started = time.time()
    if args.method == "await_jobs":
        wait = prepare_await_jobs(refs)
    else:
        wait = prepare_per_job(refs, args.poll_interval)
    setup_seconds = time.time() - setup_started
    if not handshake():
        return 3
    rss_at_start = status_bytes("VmRSS")
    user_before, system_before = own_cpu_seconds()
    started = time.time()
    detected, statuses, errors = wait(started + args.max_wait)
    ended = time.time()
    user_after, system_after = own_cpu_seconds()
    result = {
        "setup_seconds": setup_seconds,
        "wait_started": started,
        "wait_ended": ended,
        "cpu_seconds": (user_after - user_before) + (system_after - system_before),
        "rss_at_start_bytes": rss_at_start,
        "peak_rss_bytes": status_bytes("VmHWM"),
        "package_file": getattr(sys.modules.get("prefect_qiskit_jobs"), "__file__", None),
        "detected": detected,
        "statuses": statuses,
        "errors": errors,
    }
    Path(args.result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
