"""Cancelling jobs exactly once, whichever layer asks: the sensor, a flow hook or the reaper.

Three layers, because no single one sees every ending: the sensor cancels what it awaits when it
is interrupted; flow hooks (``on_cancellation``/``on_crashed``, opt-in ``on_failure``) cancel what
the run's tag finds pending; the reaper cancels pending jobs of runs that Prefect shows
Cancelled or Crashed, which covers SIGKILL and dead supervisors.

They often run in different processes, one after another, while IBM is still stopping the jobs:
IBM accepts a running job's cancel at once but stops it seconds or minutes later, and Prefect's
runner kills a cancelled run's process after 30 s, then runs its ``on_cancellation`` hook in
another process, which lists the jobs still Running. So the record that a cancel was sent is
kept where every layer of every process looks anyway, on the job at IBM: once IBM has accepted
a job's cancel, the layer that sent it adds the tag ``prefect-cancel-requested``
(``CANCEL_REQUESTED_TAG``, ``PUT /jobs/{id}/tags`` with the job's other tags kept). A layer that
lists or reads a job carrying it sends nothing and only confirms that the job ends. The tag is
written after IBM's answer, never before: a mark written first and then a lost request would
leave a job running that no layer would cancel. The cost is two narrow windows in which a
later layer of another process asks again (harmless, IBM accepts it once more): the sending
process dies between IBM's answer and the tag, or the tag is refused (logged, with the job id).
Within one process, a job that a layer is cancelling, or has had an answer for, is skipped
outright. IBM's 409 ("already final") counts as success and leaves the result readable.

A layer sends its cancels side by side, then confirms them (and the jobs it found already
requested) together, by listing each run's jobs until they are seen final for at most
``CONFIRM_SECONDS`` (a failed read leaves a job unconfirmed, never resent). It reports each job
with its id and the layer, and names in one line the jobs IBM has not stopped by then: they are
still stopping, and the reaper confirms their end later without cancelling them again. A flow
hook's line lands in the run's log before Prefect sets the run Cancelled.

Sessions and batches (see ``sessions``) end with the run: a layer cancelling because the run is
ending also cancels every pending job of each session its jobs are in (found by the
``prefect-session:<id>`` tag), once each, then the session itself, once per process; across
processes, a later layer finds a session only through jobs still pending in it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from prefect_qiskit_jobs.errors import IQPError
from prefect_qiskit_jobs.ibm.gateway import CancelOutcome, IQPGateway
from prefect_qiskit_jobs.ibm.tags import (
    CANCEL_REQUESTED_TAG,
    DETACHED_TAG,
    FLOW_RUN_PREFIX,
    SESSION_PREFIX,
    flow_run_tag,
    session_tag,
    value_of,
)
from prefect_qiskit_jobs.limits.rate import resend_refused
from prefect_qiskit_jobs.logs import id_list
from prefect_qiskit_jobs.models import Backoff, JobRef, JobSnapshot, JobStatus, job_id_of

# Cancels one layer sends side by side; IBM takes seconds to answer each.
CANCELS_AT_ONCE = 16
# Pauses between confirming listings: 0.1 s doubling up to 2 s, no jitter (one confirmer per layer).
CONFIRM_BACKOFF = Backoff(initial=0.1, multiplier=2.0, cap=2.0, jitter=0.0)
# A cancel IBM refuses with 429 (which did nothing) is sent again, waiting Retry-After or backing
# off from 1 s up to this, for at most five of these windows; other failures go to the next layer.
CANCEL_RESEND_WINDOW = 8.0
# How long a layer confirms its cancels: IBM takes seconds to stop a running job.
CONFIRM_SECONDS = 30.0


class Layer(str, Enum):
    """Who cancelled: named in every log line about a cancel."""

    SENSOR = "sensor"
    HOOK = "flow hook"
    REAPER = "reaper"
    RESUMER = "resumer"
    COMMAND = "jobs cancel command"


@dataclass(frozen=True)
class CancelReport:
    """What happened to one job: ``sent`` says whether this call sent the cancel request.

    ``requested_earlier``: IBM had accepted a cancel of the job before (it carried
    ``CANCEL_REQUESTED_TAG``), so this call only confirmed it.
    """

    job_id: str
    sent: bool
    outcome: str
    final_status: JobStatus | None
    requested_earlier: bool = False

    @property
    def stopping(self) -> bool:
        """IBM accepted the cancel but the job was not seen final."""
        cancelled = self.sent or self.requested_earlier
        return cancelled and not (self.final_status is not None and self.final_status.is_final)

    def describe(self, layer: Layer) -> str:
        final = self.final_status.value if self.final_status else "not yet confirmed"
        return f"job {self.job_id}: {self.outcome} by the {layer.value} (now {final})"


# Jobs a layer of this process is cancelling right now, and jobs IBM has already answered for
# (cancel accepted, or 409): no layer of this process asks IBM about those again. A job seen
# pending by a later layer may just not look cancelled yet; a second request would be redundant.
_in_flight: set[str] = set()
_answered: set[str] = set()
_in_flight_lock = threading.Lock()
# Sessions a layer of this process has taken on to cancel: none is cancelled twice.
_sessions_claimed: set[str] = set()


@dataclass(frozen=True)
class CancelTarget:
    """What a layer needs of a job to cancel it: its id, its tags (run, session), whether it is final.

    ``read``: the tags are IBM's as read (a snapshot), not the ones the job was submitted with.
    """

    job_id: str
    tags: tuple[str, ...] = ()
    final: bool = False
    read: bool = False

    @property
    def requested(self) -> bool:
        """IBM has accepted a cancel of this job already (a layer tagged it): confirm, never resend."""
        return CANCEL_REQUESTED_TAG in self.tags

    @classmethod
    def of(cls, job: JobRef | JobSnapshot | str) -> CancelTarget:
        """A job as a reference, a snapshot just read, or an id (checked); a snapshot tells if it is final."""
        if isinstance(job, JobSnapshot):
            return cls(job.job_id, job.tags, job.status.is_final, read=True)
        if isinstance(job, JobRef):
            return cls(job.job_id, job.tags)
        return cls(job_id_of(job))


def cancel_jobs(
    gateway: IQPGateway,
    jobs: Iterable[JobRef | JobSnapshot | str],
    layer: Layer,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    end_sessions: bool = False,
) -> list[CancelReport]:
    """Cancel each non-final job once, all at once, then confirm them; blocking (async callers use a thread).

    IBM takes seconds to answer a cancel and more to stop a running job, so the requests go out
    side by side (at most ``CANCELS_AT_ONCE``), each accepted one is tagged as requested, and the
    ends are confirmed together: one listing per flow run of the jobs (a job without a run tag is
    read alone), repeated with growing pauses for at most ``CONFIRM_SECONDS``. A job already
    tagged as requested (by a layer of any process) gets no request, only the confirmation. With
    ``end_sessions`` (the run is ending), the pending jobs of the sessions the jobs are in are
    cancelled too, then each session.
    """
    pending = [target for target in map(CancelTarget.of, jobs) if not target.final]
    requested = {job.job_id: job for job in pending if job.requested}
    claimed = _claim([job for job in pending if not job.requested])
    # A tagged job's session may still be open (a wait that timed out cancels jobs, not sessions).
    session_ids = _claim_sessions([*claimed, *requested.values()]) if end_sessions else []
    if session_ids:
        more = _pending_in(gateway, session_ids, log)
        requested.update({job.job_id: job for job in more if job.requested})
        claimed += _claim([job for job in more if not job.requested])
    if not claimed and not session_ids and not requested:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(CANCELS_AT_ONCE, len(claimed)))) as pool:
        outcomes = list(pool.map(lambda job: _send(gateway, job, layer, log), claimed))
        for session_id in session_ids:
            _end_session(gateway, session_id, layer, log)
    sent = {
        job.job_id: outcome for job, outcome in zip(claimed, outcomes, strict=True) if outcome is not None
    }
    confirming = [job for job in claimed if job.job_id in sent] + list(requested.values())
    finals = _confirm_all(gateway, confirming, sleep)
    reports = []
    for job in claimed:
        outcome = sent.get(job.job_id)
        if outcome is None:
            continue
        text = "cancel sent" if outcome is CancelOutcome.CANCELLED else "already final, nothing to cancel"
        reports.append(
            CancelReport(job.job_id, outcome is CancelOutcome.CANCELLED, text, finals.get(job.job_id))
        )
    for job in requested.values():
        text = "cancel accepted earlier, confirmed (nothing sent)"
        reports.append(CancelReport(job.job_id, False, text, finals.get(job.job_id), requested_earlier=True))
    for report in reports:
        log(report.describe(layer))
    stopping = [report.job_id for report in reports if report.stopping]
    if stopping:
        log(
            f"{len(stopping)} job(s) still stopping after {CONFIRM_SECONDS:g} s of confirming: "
            f"{id_list(stopping, shown=len(stopping))}; IBM accepted their cancel, the reaper will "
            "confirm they end (without cancelling them again)"
        )
    return reports


def _claim(jobs: list[CancelTarget]) -> list[CancelTarget]:
    """The jobs no other layer of this process is cancelling or has had an answer for; now ours."""
    unique = list({job.job_id: job for job in jobs}.values())
    with _in_flight_lock:
        mine = [job for job in unique if job.job_id not in _in_flight and job.job_id not in _answered]
        _in_flight.update(job.job_id for job in mine)
    return mine


def _claim_sessions(jobs: list[CancelTarget]) -> list[str]:
    """The sessions of ``jobs`` that no layer of this process has taken on yet; now ours."""
    found = {value_of(job.tags, SESSION_PREFIX) for job in jobs}
    with _in_flight_lock:
        mine = sorted(
            session_id for session_id in found if session_id and session_id not in _sessions_claimed
        )
        _sessions_claimed.update(mine)
    return mine


def _pending_in(
    gateway: IQPGateway, session_ids: list[str], log: Callable[[str], None]
) -> list[CancelTarget]:
    """The pending jobs of these sessions: they end with the session, each with its own cancel."""
    pending: list[JobSnapshot] = []
    for session_id in session_ids:
        try:
            pending += gateway.list_jobs(tags=[session_tag(session_id)], pending=True)
        except IQPError as exc:
            log(f"Could not list the jobs of session {session_id}: {exc}; cancelling the session ends them")
    return [CancelTarget.of(job) for job in pending if DETACHED_TAG not in job.tags]


def _end_session(gateway: IQPGateway, session_id: str, layer: Layer, log: Callable[[str], None]) -> None:
    """Cancel a session once its jobs' cancels are sent: no job can join it after."""
    try:
        outcome = gateway.cancel_session(session_id)
    except IQPError as exc:
        log(f"Could not cancel session {session_id} ({layer.value}): {exc}; it ends at its maximum TTL")
        return
    done = "cancelled" if outcome is CancelOutcome.CANCELLED else "already ended"
    log(f"session {session_id}: {done} by the {layer.value}")


def _send(
    gateway: IQPGateway, job: CancelTarget, layer: Layer, log: Callable[[str], None]
) -> CancelOutcome | None:
    answered = False
    try:
        outcome = resend_refused(
            lambda: gateway.cancel(job.job_id),
            log,
            CANCEL_RESEND_WINDOW,
            refused=f"the cancel of job {job.job_id} (429)",
        )
        answered = True
    except IQPError as exc:
        log(f"Could not cancel job {job.job_id} ({layer.value}): {exc}; the next layer will retry")
        return None
    finally:
        with _in_flight_lock:  # one step, so no other layer finds the job in neither set
            _in_flight.discard(job.job_id)
            if answered:
                _answered.add(job.job_id)
    if outcome is CancelOutcome.CANCELLED:
        _mark_requested(gateway, job, layer, log)
    return outcome


def _mark_requested(gateway: IQPGateway, job: CancelTarget, layer: Layer, log: Callable[[str], None]) -> None:
    """Tag the job at IBM as cancel-requested, its other tags kept, so no later layer asks again.

    IBM replaces a job's tags as a whole, so they are read first unless the target was just read.
    """
    try:
        tags = list(job.tags if job.read else gateway.read(job.job_id).tags)
        if CANCEL_REQUESTED_TAG not in tags:
            gateway.replace_tags(job.job_id, [*tags, CANCEL_REQUESTED_TAG])
    except IQPError as exc:
        log(
            f"Could not mark job {job.job_id} as cancel-requested ({layer.value}): {exc}; "
            "IBM accepted its cancel, but a layer of another process may ask again"
        )


def _confirm_all(
    gateway: IQPGateway, jobs: list[CancelTarget], sleep: Callable[[float], None]
) -> dict[str, JobStatus]:
    """The statuses of ``jobs`` once seen final (or as last seen, when the time runs out).

    A failed read only leaves a job unconfirmed; it never makes anyone send a cancel again.
    """
    seen: dict[str, JobStatus] = {}
    attempt, waited = 0, 0.0
    while True:
        open_jobs = [job for job in jobs if not (job.job_id in seen and seen[job.job_id].is_final)]
        if not open_jobs:
            return seen
        groups: dict[str | None, list[CancelTarget]] = {}
        for job in open_jobs:
            groups.setdefault(value_of(job.tags, FLOW_RUN_PREFIX), []).append(job)
        for run_id, members in groups.items():
            with contextlib.suppress(IQPError):
                if run_id is not None and len(members) > 1:
                    listed = {s.job_id: s.status for s in gateway.list_jobs(tags=[flow_run_tag(run_id)])}
                    seen.update({job.job_id: listed[job.job_id] for job in members if job.job_id in listed})
                else:
                    for job in members:
                        seen[job.job_id] = gateway.read(job.job_id).status
        if waited >= CONFIRM_SECONDS:
            return seen
        pause = CONFIRM_BACKOFF.delay(attempt)
        sleep(pause)
        waited += pause
        attempt += 1
