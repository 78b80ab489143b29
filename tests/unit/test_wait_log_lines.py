"""What a wait writes to the run log: a line per change for a few jobs, a tally for many.

The monitor runs outside any task run here (no displays), with a logger that keeps its lines.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from prefect_qiskit_jobs import JobRef, JobSnapshot, JobStatus, Primitive
from prefect_qiskit_jobs.logs import id_list
from prefect_qiskit_jobs.wait.display import LOG_EACH_JOB_UP_TO, WaitMonitor


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def monitor_of(count: int) -> tuple[WaitMonitor, list[JobRef], Lines]:
    jobs = [
        JobRef(job_id=f"d{index:019d}", backend="ibm_brisbane", primitive=Primitive.SAMPLER)
        for index in range(count)
    ]
    logger = logging.getLogger(f"test-wait-log-lines-{count}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    lines = Lines()
    logger.handlers = [lines]
    return WaitMonitor(jobs, logger, None, None), jobs, lines


def see(monitor: WaitMonitor, job: JobRef, status: JobStatus) -> None:
    asyncio.run(monitor.observe(JobSnapshot(job_id=job.job_id, status=status)))


def test_a_small_wait_logs_each_change_of_each_job() -> None:
    monitor, jobs, lines = monitor_of(3)
    for job in jobs:
        see(monitor, job, JobStatus.QUEUED)
    see(monitor, jobs[0], JobStatus.QUEUED)  # no change, no line
    see(monitor, jobs[0], JobStatus.DONE)
    asyncio.run(monitor.flush(final=True))
    expected = [f"Job {job.job_id} on ibm_brisbane is QUEUED" for job in jobs]
    assert lines.lines == [*expected, f"Job {jobs[0].job_id} on ibm_brisbane is DONE"]


def test_a_final_line_says_when_the_job_started_and_finished_and_its_qpu_seconds() -> None:
    monitor, jobs, lines = monitor_of(1)
    see(monitor, jobs[0], JobStatus.QUEUED)
    done = JobSnapshot(
        job_id=jobs[0].job_id,
        status=JobStatus.DONE,
        running=datetime(2026, 11, 22, 1, 5, 0, tzinfo=timezone.utc),
        finished=datetime(2026, 11, 22, 1, 5, 7, tzinfo=timezone.utc),
        quantum_seconds=4.25,
    )
    asyncio.run(monitor.observe(done))
    assert lines.lines[-1] == (
        f"Job {jobs[0].job_id} on ibm_brisbane is DONE "
        "(started 2026-11-22 01:05:00, finished 2026-11-22 01:05:07, 4.25 QPU seconds)"
    )


def test_a_large_wait_logs_a_tally_and_a_line_only_for_jobs_that_fail_or_are_cancelled() -> None:
    count = LOG_EACH_JOB_UP_TO + 1
    monitor, jobs, lines = monitor_of(count)
    for job in jobs:
        see(monitor, job, JobStatus.QUEUED)
    see(monitor, jobs[0], JobStatus.ERROR)
    see(monitor, jobs[1], JobStatus.DONE)
    asyncio.run(monitor.flush(final=True))

    per_job = [line for line in lines.lines if line.startswith("Job ")]
    assert per_job == [f"Job {jobs[0].job_id} on ibm_brisbane is ERROR"]
    tallies = [line for line in lines.lines if line.startswith(f"{count} jobs: ")]
    # The first change is told at once; the rest within the interval are folded into the last.
    assert tallies[0] == f"{count} jobs: 1 QUEUED, {count - 1} not yet read"
    assert tallies[-1] == f"{count} jobs: {count - 2} QUEUED, 1 ERROR, 1 DONE"
    assert len(tallies) == 2


def test_long_id_lists_are_cut_short_in_log_lines() -> None:
    ids = [f"d{index}" for index in range(12)]
    assert id_list(ids) == "d0, d1, d2, d3, d4, d5, d6, d7, d8, d9 and 2 more"
    assert id_list(ids[:2]) == "d0, d1"


def test_ibm_unreachable_is_logged_once_shown_in_the_rows_and_cleared_when_it_answers() -> None:
    monitor, jobs, lines = monitor_of(2)
    for job in jobs:
        see(monitor, job, JobStatus.QUEUED)

    for job in jobs:
        monitor.outage(job.job_id, "Could not reach IBM Quantum: connection refused")
    monitor.outage(jobs[0].job_id, "connection refused again")  # no second warning
    during = [row["reason"] for row in monitor._rows()]
    monitor.outage(jobs[0].job_id, None)
    see(monitor, jobs[1], JobStatus.DONE)  # a snapshot says IBM answers, too

    assert all(reason.startswith("IBM Quantum unreachable since ") for reason in during), during
    assert all(reason.endswith(" UTC") for reason in during), during
    assert [row["reason"] for row in monitor._rows()] == ["", ""]
    warnings = [line for line in lines.lines if "unreachable" in line]
    assert len(warnings) == 1, lines.lines
    assert "(Could not reach IBM Quantum: connection refused); the wait goes on" in warnings[0]
    assert lines.lines[-2].startswith("IBM Quantum answers again, after "), lines.lines
