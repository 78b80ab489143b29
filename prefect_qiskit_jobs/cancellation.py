"""Cancelling jobs exactly once, whichever layer asks: the sensor, a flow hook or the reaper.

A layer cancels only jobs it has just seen non-final; a job already being cancelled by another
layer of this process is skipped; IBM's 409 ("already final") counts as success and leaves the
result readable. Each cancel is confirmed by reading the job until it is seen final, and reported
with the job id and the layer that sent it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from .exceptions import IQPError
from .models import JobSnapshot, JobStatus
from .runtime import CancelOutcome, IQPGateway

CONFIRM_READS = 8
CONFIRM_FIRST_PAUSE = 0.1


class Layer(str, Enum):
    """Who cancelled: named in every log line about a cancel."""

    SENSOR = "sensor"
    HOOK = "flow hook"
    REAPER = "reaper"


@dataclass(frozen=True)
class CancelReport:
    """What happened to one job: ``sent`` says whether this call sent the cancel request."""

    job_id: str
    sent: bool
    outcome: str
    final_status: JobStatus | None

    def describe(self, layer: Layer) -> str:
        final = self.final_status.value if self.final_status else "not yet confirmed"
        return f"job {self.job_id}: {self.outcome} by the {layer.value} (now {final})"


_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def cancel_jobs(
    gateway: IQPGateway,
    jobs: Iterable[JobSnapshot],
    layer: Layer,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> list[CancelReport]:
    """Cancel each non-final job once and confirm it; blocking, so async callers use a thread."""
    reports = []
    for job in jobs:
        if job.status.is_final:
            continue
        with _in_flight_lock:
            if job.job_id in _in_flight:
                continue
            _in_flight.add(job.job_id)
        try:
            report = _cancel_one(gateway, job.job_id, sleep)
        except IQPError as exc:
            log(f"Could not cancel job {job.job_id} ({layer.value}): {exc}; the next layer will retry")
            continue
        finally:
            with _in_flight_lock:
                _in_flight.discard(job.job_id)
        log(report.describe(layer))
        reports.append(report)
    return reports


def _cancel_one(gateway: IQPGateway, job_id: str, sleep: Callable[[float], None]) -> CancelReport:
    outcome = gateway.cancel(job_id)
    sent_text = "cancel sent" if outcome is CancelOutcome.CANCELLED else "already final, nothing to cancel"
    pause = CONFIRM_FIRST_PAUSE
    status: JobStatus | None = None
    for _ in range(CONFIRM_READS):
        status = gateway.read(job_id).status
        if status.is_final:
            break
        sleep(pause)
        pause *= 2
    return CancelReport(job_id, outcome is CancelOutcome.CANCELLED, sent_text, status)
