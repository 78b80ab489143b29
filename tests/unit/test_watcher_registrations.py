"""A late reply for a wait that has ended never drops a newer wait's registration for the same job.

The watcher is driven with a plain fake gateway (pure logic, no server): its reads are held and
released by the test through thread events, so the order of events is exact.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, PollPolicy, Primitive
from prefect_qiskit_jobs.wait.watcher import JobWatcher

JOB_ID = "d1late0reply0job"
QUICK = PollPolicy(initial=0.01, growth=0, cap=0.01, jitter=0, queue_position_every=None)
GUARD = 30  # seconds: only a hang ever reaches this


class HeldReads:
    """A gateway whose reads answer, in order, the statuses the test releases one by one."""

    def __init__(self) -> None:
        self.started: queue.Queue[int] = queue.Queue()
        self.answers: queue.Queue[JobStatus] = queue.Queue()
        self.calls = 0
        self._lock = threading.Lock()

    def read(self, job_id: str) -> JobSnapshot:
        with self._lock:
            self.calls += 1
            number = self.calls
        self.started.put(number)
        return JobSnapshot(job_id=job_id, status=self.answers.get(timeout=GUARD))

    def metrics(self, job_id: str) -> dict[str, Any]:
        return {}

    def list_jobs(self, **_: Any) -> list[JobSnapshot]:
        return []

    def scrub(self, text: str) -> str:
        return text


def test_a_late_final_reply_for_an_ended_wait_leaves_the_newer_wait_watching() -> None:
    watcher = JobWatcher(seed=1)
    gateway: Any = HeldReads()
    job = JobRef(job_id=JOB_ID, backend="ibmq_manila", primitive=Primitive.SAMPLER)
    first: queue.Queue[Any] = queue.Queue()
    second: queue.Queue[Any] = queue.Queue()

    old = watcher.watch(gateway, job, QUICK, first.put)
    assert gateway.started.get(timeout=GUARD) == 1  # the first wait's read is in flight
    watcher.unwatch(gateway, JOB_ID, old)  # that wait ends (timed out, cancelled) meanwhile
    watcher.watch(gateway, job, QUICK, second.put)  # queued on the watcher before the reply below

    gateway.answers.put(JobStatus.DONE)  # the late reply to the ended wait's read
    assert gateway.started.get(timeout=GUARD) == 2  # the newer wait is still read
    gateway.answers.put(JobStatus.QUEUED)
    assert second.get(timeout=GUARD).status is JobStatus.QUEUED
    gateway.answers.put(JobStatus.DONE)

    assert second.get(timeout=GUARD).status is JobStatus.DONE
    assert first.empty()
