"""A cancelling layer sends its cancels side by side and confirms them with one listing per run.

Driven with a plain fake gateway (pure logic, no server): its cancel requests meet at a barrier
that only opens when all of them are in flight at once, as they must be when IBM is slow.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.ibm.gateway import CancelOutcome
from prefect_qiskit_jobs.ibm.tags import flow_run_tag
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, Primitive

JOBS = 10
GUARD = 30  # seconds: only requests sent one at a time ever reach this


class SlowIBM:
    """Cancels answer only once every one of them has been sent; the run's listing shows the ends."""

    def __init__(self, run_tag: str, already_final: str) -> None:
        self.barrier = threading.Barrier(JOBS, timeout=GUARD)
        self.run_tag = run_tag
        self.already_final = already_final
        self.cancels: list[str] = []
        self.listings = 0
        self.reads = 0
        self._lock = threading.Lock()

    def cancel(self, job_id: str) -> CancelOutcome:
        with self._lock:
            self.cancels.append(job_id)
        self.barrier.wait()
        return CancelOutcome.ALREADY_FINAL if job_id == self.already_final else CancelOutcome.CANCELLED

    def list_jobs(self, *, tags: list[str], **_: Any) -> list[JobSnapshot]:
        assert tags == [self.run_tag]
        self.listings += 1
        ended = dict.fromkeys(self.cancels, JobStatus.CANCELLED)
        ended[self.already_final] = JobStatus.DONE
        return [
            JobSnapshot(job_id=job_id, status=status, tags=(self.run_tag,))
            for job_id, status in ended.items()
        ]

    def read(self, job_id: str) -> JobSnapshot:
        self.reads += 1
        raise AssertionError("jobs of one run are confirmed by listing, not read one by one")


def test_cancels_go_out_at_once_exactly_once_each_and_are_confirmed_by_one_listing() -> None:
    run_tag = flow_run_tag(uuid.uuid4())
    ids = [f"fan{uuid.uuid4().hex[:12]}" for _ in range(JOBS)]
    gateway: Any = SlowIBM(run_tag, already_final=ids[0])
    jobs = [JobSnapshot(job_id=job_id, status=JobStatus.RUNNING, tags=(run_tag,)) for job_id in ids]
    lines: list[str] = []

    reports = cancel_jobs(gateway, jobs, Layer.HOOK, lines.append, sleep=lambda _: None)
    again = cancel_jobs(gateway, jobs, Layer.REAPER, lines.append, sleep=lambda _: None)

    assert sorted(gateway.cancels) == sorted(ids)  # one request each, the second layer sends none
    assert again == []
    assert gateway.listings == 1
    assert {r.job_id: (r.sent, r.final_status) for r in reports} == {
        job_id: (job_id != ids[0], JobStatus.DONE if job_id == ids[0] else JobStatus.CANCELLED)
        for job_id in ids
    }
    assert f"job {ids[0]}: already final, nothing to cancel by the flow hook (now DONE)" in lines


class SlowIBMThatReads(SlowIBM):
    """A job known only by its id carries no run tag: its end is read alone."""

    def read(self, job_id: str) -> JobSnapshot:
        self.reads += 1
        return JobSnapshot(job_id=job_id, status=JobStatus.CANCELLED)


def test_references_and_ids_are_cancelled_as_they_are_given() -> None:
    run_tag = flow_run_tag(uuid.uuid4())
    ids = [f"ref{uuid.uuid4().hex[:12]}" for _ in range(JOBS)]
    gateway: Any = SlowIBMThatReads(run_tag, already_final=ids[0])
    refs = [
        JobRef(job_id=job_id, backend="ibmq_manila", primitive=Primitive.SAMPLER, tags=(run_tag,))
        for job_id in ids[:5]
    ]
    final_seen = JobSnapshot(job_id=f"end{uuid.uuid4().hex[:12]}", status=JobStatus.DONE, tags=(run_tag,))

    reports = cancel_jobs(
        gateway, [*refs, *ids[5:], final_seen], Layer.SENSOR, [].append, sleep=lambda _: None
    )

    # A reference or an id may be pending: each gets one request; a job seen final gets none.
    assert sorted(gateway.cancels) == sorted(ids)
    assert sorted(report.job_id for report in reports) == sorted(ids)
    assert gateway.reads == len(ids[5:])  # the ids alone; the references by their run's listing
