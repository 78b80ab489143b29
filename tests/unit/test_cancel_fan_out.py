"""A cancelling layer sends its cancels side by side and confirms them with one listing per run.

Driven with a plain fake gateway (pure logic, no server): its cancel requests meet at a barrier
that only opens when all of them are in flight at once, as they must be when IBM is slow. Each
accepted cancel is recorded on the job as a tag, which any later layer reads as "only confirm".
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from prefect_qiskit_jobs.cancel.fan_out import CONFIRM_SECONDS, Layer, cancel_jobs
from prefect_qiskit_jobs.errors import IQPError, IQPUnavailableError
from prefect_qiskit_jobs.ibm.gateway import CancelOutcome
from prefect_qiskit_jobs.ibm.tags import CANCEL_REQUESTED_TAG, flow_run_tag
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
        self.tagged: dict[str, list[str]] = {}
        self.listings = 0
        self.reads = 0
        self._lock = threading.Lock()

    def replace_tags(self, job_id: str, tags: list[str]) -> None:
        with self._lock:
            self.tagged[job_id] = tags

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
    # Each accepted cancel is marked on the job, its tags kept; a job that had ended is not.
    assert gateway.tagged == {job_id: [run_tag, CANCEL_REQUESTED_TAG] for job_id in ids[1:]}
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
    # The ids are read to be confirmed; references and ids are read once for their current tags
    # before being marked (IBM replaces tags as a whole), except the one that had ended.
    assert gateway.reads == len(ids[5:]) + len(ids) - 1
    assert sorted(gateway.tagged) == sorted(ids[1:])


class StoppingIBM(SlowIBM):
    """IBM accepts every cancel at once but stops no job while the layer confirms."""

    def __init__(self, run_tag: str, jobs: int, refuse_tags: bool = False) -> None:
        super().__init__(run_tag, already_final="")
        self.barrier = threading.Barrier(jobs, timeout=GUARD)
        self.refuse_tags = refuse_tags

    def replace_tags(self, job_id: str, tags: list[str]) -> None:
        if self.refuse_tags:
            raise IQPError("IBM Quantum Platform could not tag job: 503", 503)
        super().replace_tags(job_id, tags)

    def list_jobs(self, *, tags: list[str], **_: Any) -> list[JobSnapshot]:
        self.listings += 1
        return [
            JobSnapshot(job_id=job_id, status=JobStatus.RUNNING, tags=tuple(self.tagged.get(job_id, [])))
            for job_id in self.cancels
        ]

    def read(self, job_id: str) -> JobSnapshot:  # a run's lone job is read, not listed
        self.reads += 1
        return JobSnapshot(job_id=job_id, status=JobStatus.RUNNING, tags=(self.run_tag,))


def test_a_job_whose_cancel_ibm_accepted_earlier_is_only_confirmed_by_any_later_layer() -> None:
    run_tag = flow_run_tag(uuid.uuid4())
    ids = [f"req{uuid.uuid4().hex[:12]}" for _ in range(2)]
    gateway: Any = StoppingIBM(run_tag, jobs=len(ids))
    first = [JobSnapshot(job_id=job_id, status=JobStatus.RUNNING, tags=(run_tag,)) for job_id in ids]
    slept: list[float] = []
    sent = cancel_jobs(gateway, first, Layer.SENSOR, [].append, sleep=slept.append)
    assert sum(slept) >= CONFIRM_SECONDS  # IBM never stopped them: the layer confirmed until its cap
    # What a layer of another process lists next: the jobs still Running, now tagged.
    listed = [
        JobSnapshot(job_id=job_id, status=JobStatus.RUNNING, tags=(run_tag, CANCEL_REQUESTED_TAG))
        for job_id in ids
    ]
    lines: list[str] = []

    confirmed = cancel_jobs(gateway, listed, Layer.HOOK, lines.append, sleep=lambda _: None)

    assert gateway.cancels == ids  # the hook sent nothing
    assert [(r.sent, r.stopping) for r in sent] == [(True, True)] * len(ids)
    assert [(r.job_id, r.sent, r.requested_earlier, r.stopping) for r in confirmed] == [
        (job_id, False, True, True) for job_id in ids
    ]
    assert f"job {ids[0]}: cancel accepted earlier, confirmed (nothing sent) by the flow hook" in lines[0]
    assert lines[-1].startswith(f"2 job(s) still stopping after {CONFIRM_SECONDS:g} s of confirming: ")
    assert all(job_id in lines[-1] for job_id in ids)
    assert "the reaper will confirm they end (without cancelling them again)" in lines[-1]


def test_a_cancel_ibm_accepted_counts_as_sent_even_when_the_mark_is_refused() -> None:
    run_tag = flow_run_tag(uuid.uuid4())
    job_id = f"tag{uuid.uuid4().hex[:12]}"
    gateway: Any = StoppingIBM(run_tag, jobs=1, refuse_tags=True)
    lines: list[str] = []

    (report,) = cancel_jobs(
        gateway,
        [JobSnapshot(job_id=job_id, status=JobStatus.RUNNING, tags=(run_tag,))],
        Layer.SENSOR,
        lines.append,
        sleep=lambda _: None,
    )

    assert (report.sent, gateway.cancels, gateway.tagged) == (True, [job_id], {})
    assert any(
        line.startswith(f"Could not mark job {job_id} as cancel-requested (sensor)")
        and "a layer of another process may ask again" in line
        for line in lines
    )


@pytest.mark.parametrize("status", [JobStatus.CANCELLED, JobStatus.DONE])
def test_a_tagged_job_seen_final_is_left_alone(status: JobStatus) -> None:
    gateway: Any = StoppingIBM(flow_run_tag(uuid.uuid4()), jobs=1)
    seen = JobSnapshot(job_id=f"end{uuid.uuid4().hex[:12]}", status=status, tags=(CANCEL_REQUESTED_TAG,))

    assert cancel_jobs(gateway, [seen], Layer.REAPER, [].append, sleep=lambda _: None) == []
    assert gateway.listings == 0


class RefusingOnce:
    """IBM refuses the first cancel of each job with 429 (it did nothing), then accepts it."""

    def __init__(self, status: int | None) -> None:
        self.status = status
        self.cancels: list[str] = []

    def cancel(self, job_id: str) -> CancelOutcome:
        self.cancels.append(job_id)
        if self.cancels.count(job_id) == 1:
            raise IQPUnavailableError(
                "IBM Quantum Platform could not cancel the job", self.status, retry_after=0.01
            )
        return CancelOutcome.CANCELLED

    def replace_tags(self, job_id: str, tags: list[str]) -> None:
        pass

    def read(self, job_id: str) -> JobSnapshot:
        return JobSnapshot(job_id=job_id, status=JobStatus.CANCELLED)


def test_a_cancel_refused_with_429_is_sent_again_by_the_same_layer() -> None:
    gateway: Any = RefusingOnce(429)
    job_id = f"fan{uuid.uuid4().hex[:12]}"
    lines: list[str] = []

    (report,) = cancel_jobs(gateway, [job_id], Layer.SENSOR, lines.append, sleep=lambda _: None)

    assert gateway.cancels == [job_id, job_id]
    assert (report.sent, report.final_status) == (True, JobStatus.CANCELLED)
    assert any(f"IBM refused the cancel of job {job_id} (429); sending it again" in line for line in lines)


def test_a_cancel_that_failed_otherwise_is_left_to_the_next_layer() -> None:
    gateway: Any = RefusingOnce(503)  # it may have taken effect: never sent twice by one layer
    job_id = f"fan{uuid.uuid4().hex[:12]}"
    lines: list[str] = []

    reports = cancel_jobs(gateway, [job_id], Layer.SENSOR, lines.append, sleep=lambda _: None)

    assert (gateway.cancels, reports) == ([job_id], [])
    assert any("the next layer will retry" in line for line in lines)
