"""The watcher's schedule decides every read and reads every answer, with an injected clock and no server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from prefect_qiskit_jobs.errors import IQPError, IQPUnavailableError
from prefect_qiskit_jobs.ibm.tags import PROCESS_TAG, flow_run_tag
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, PollPolicy, Primitive
from prefect_qiskit_jobs.wait.schedule import (
    CLOCK_MARGIN,
    COALESCE_SECONDS,
    SWEEP_SECONDS,
    ListGroup,
    Member,
    Outage,
    ReadJob,
    ReadPosition,
    Schedule,
    Update,
)

POLICY = PollPolicy(
    initial=1.0, growth=0.1, cap=30, jitter=0, error_budget=2, queue_position_every=None, lag_bound=None
)
POSITIONS = POLICY.model_copy(update={"queue_position_every": 10.0})
RUN = flow_run_tag("run-1")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
GATEWAY = object()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def schedule(clock: Clock) -> Schedule:
    return Schedule(clock)


def member(n: int, *tags: str, backend: str = "ibm_kyiv", policy: PollPolicy = POLICY) -> Member:
    job = JobRef(
        job_id=f"d{n:019d}",
        backend=backend,
        primitive=Primitive.SAMPLER,
        tags=tags,
        created_at=T0 + timedelta(seconds=n),
    )
    return Member(GATEWAY, job, policy)


def snap(m: Member, status: JobStatus, **extra: Any) -> JobSnapshot:
    created = T0 + timedelta(seconds=int(m.job.job_id[1:]))
    return JobSnapshot(job_id=m.job.job_id, status=status, created=created, **extra)


def due(schedule: Schedule, clock: Clock, after: float = COALESCE_SECONDS) -> list[Any]:
    clock.now += after
    return schedule.next_reads()


# ----- grouping ----------------------------------------------------------------------------------


def test_the_jobs_of_one_flow_run_on_one_backend_are_read_by_one_listing(
    schedule: Schedule, clock: Clock
) -> None:
    members = [member(n, RUN) for n in range(5)]
    for m in members:
        schedule.add(m)

    reads = due(schedule, clock)

    assert len(reads) == 1
    assert isinstance(reads[0], ListGroup)
    assert reads[0].tag == RUN
    assert reads[0].backend == "ibm_kyiv"
    assert set(reads[0].members) == set(members)


def test_jobs_submitted_outside_any_run_are_listed_by_their_process_tag(
    schedule: Schedule, clock: Clock
) -> None:
    for n in range(100):
        schedule.add(member(n, PROCESS_TAG))

    reads = due(schedule, clock)

    assert [type(r) for r in reads] == [ListGroup]
    assert reads[0].tag == PROCESS_TAG


def test_backends_and_runs_make_separate_groups_and_untagged_jobs_are_read_alone(
    schedule: Schedule, clock: Clock
) -> None:
    schedule.add(member(1, RUN))
    schedule.add(member(2, RUN, backend="ibm_torino"))
    schedule.add(member(3, flow_run_tag("run-2")))
    schedule.add(member(4))
    schedule.add(member(5))

    reads = due(schedule, clock)

    assert sorted(type(r).__name__ for r in reads) == ["ListGroup"] * 3 + ["ReadJob"] * 2


def test_registrations_arriving_together_wait_briefly_to_be_read_together(
    schedule: Schedule, clock: Clock
) -> None:
    schedule.add(member(1, RUN))

    assert schedule.next_reads() == []
    assert schedule.wake_at() == clock.now + COALESCE_SECONDS


# ----- listings ------------------------------------------------------------------------------------


def test_the_first_listing_reads_every_page_then_only_the_oldest_page_until_a_sweep(
    schedule: Schedule, clock: Clock
) -> None:
    members = [member(n, RUN) for n in range(3)]
    for m in members:
        schedule.add(m)
    (first,) = due(schedule, clock)
    assert first.all_pages
    schedule.listed(first, [snap(m, JobStatus.QUEUED) for m in members], complete=True)

    (second,) = due(schedule, clock, after=POLICY.initial)
    assert not second.all_pages
    schedule.listed(second, [snap(m, JobStatus.QUEUED) for m in members], complete=False)

    clock.now += SWEEP_SECONDS
    (sweep,) = schedule.next_reads()
    assert sweep.all_pages


def test_a_listing_starts_at_the_oldest_unfinished_job_as_ibm_dated_it(
    schedule: Schedule, clock: Clock
) -> None:
    members = [member(n, RUN) for n in range(3)]
    for m in members:
        schedule.add(m)
    (first,) = due(schedule, clock)
    # Before IBM has been heard, the local creation times are trusted only with a margin.
    assert first.created_after == T0 - CLOCK_MARGIN
    schedule.listed(
        first, [snap(members[0], JobStatus.DONE)] + [snap(m, JobStatus.RUNNING) for m in members[1:]], True
    )

    (second,) = due(schedule, clock, after=POLICY.initial)

    assert second.created_after == T0 + timedelta(seconds=1)
    assert second.members == tuple(members[1:])


def test_a_member_missing_from_a_complete_listing_is_read_alone_from_then_on(
    schedule: Schedule, clock: Clock
) -> None:
    kept, lost = member(1, RUN), member(2, RUN)
    schedule.add(kept)
    schedule.add(lost)
    (first,) = due(schedule, clock)

    schedule.listed(first, [snap(kept, JobStatus.QUEUED)], complete=True)
    reads = due(schedule, clock, after=POLICY.initial)

    assert {type(r) for r in reads} == {ListGroup, ReadJob}
    assert next(r for r in reads if isinstance(r, ReadJob)).member is lost


def test_final_states_come_from_the_listing_and_end_the_registration(
    schedule: Schedule, clock: Clock
) -> None:
    m = member(1, RUN)
    schedule.add(m)
    (read,) = due(schedule, clock)

    updates = schedule.listed(read, [snap(m, JobStatus.ERROR, reason="bad", reason_code=1517)], complete=True)

    assert [(u.member, u.final) for u in updates] == [(m, True)]
    assert isinstance(updates[0].item, JobSnapshot)
    assert updates[0].item.reason == "bad"
    assert not schedule.current(m)
    assert schedule.wake_at() is None


def test_only_changes_are_told(schedule: Schedule, clock: Clock) -> None:
    m = member(1, RUN)
    schedule.add(m)
    (read,) = due(schedule, clock)
    assert len(schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)) == 1

    (read,) = due(schedule, clock, after=POLICY.initial)
    assert schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True) == []

    (read,) = due(schedule, clock, after=POLICY.initial)
    (update,) = schedule.listed(read, [snap(m, JobStatus.RUNNING)], complete=True)
    assert isinstance(update.item, JobSnapshot)
    assert update.item.status is JobStatus.RUNNING


# ----- pace ------------------------------------------------------------------------------------------


def quiet_group(schedule: Schedule, clock: Clock) -> tuple[Member, ListGroup]:
    m = member(1, RUN)
    schedule.add(m)
    (read,) = due(schedule, clock)
    return m, read


def test_the_pause_grows_with_the_time_nothing_changed_and_starts_over_on_a_change(
    schedule: Schedule, clock: Clock
) -> None:
    m, read = quiet_group(schedule, clock)
    pauses = []
    status = JobStatus.QUEUED
    for step in range(40):
        if step == 30:
            status = JobStatus.RUNNING
        schedule.listed(read, [snap(m, status)], complete=True)
        wake = schedule.wake_at()
        assert wake is not None
        pauses.append(round(wake - clock.now, 3))
        clock.now = wake
        (read,) = schedule.next_reads()

    # A new wait reads after 0.25 s and then whenever its age has doubled, until that reaches the
    # floor: a job that ends within a second is seen soon after.
    assert pauses[:6] == [0.25, 0.3, 0.6, 1.0, 1.0, 1.0]
    assert pauses[29] > 5
    assert pauses == sorted(pauses[:30]) + pauses[30:]
    assert pauses[30] == 1.0  # the status changed: back to the floor, not to the new wait's pauses


def test_only_a_new_group_starts_with_short_pauses_not_a_job_joining_one(
    schedule: Schedule, clock: Clock
) -> None:
    first, read = quiet_group(schedule, clock)
    clock.now += 10
    schedule.add(member(2, RUN))  # a later job of the same run joins the group its wait reads
    schedule.listed(read, [snap(first, JobStatus.QUEUED)], complete=True)
    assert schedule.wake_at() == pytest.approx(clock.now + POLICY.initial)

    unhurried = member(3, flow_run_tag("run-2"), policy=POLICY.model_copy(update={"first": None}))
    schedule.add(unhurried)
    (read,) = [r for r in due(schedule, clock) if unhurried in r.members]
    schedule.listed(read, [snap(unhurried, JobStatus.QUEUED)], complete=True)
    assert read.group.due == pytest.approx(clock.now + POLICY.initial)  # first=None: no short pauses


def test_transient_errors_double_the_pause_honour_retry_after_and_exhaust_the_budget(
    schedule: Schedule, clock: Clock
) -> None:
    m, read = quiet_group(schedule, clock)

    assert told(schedule.failed(read, IQPUnavailableError("503", 503))) == [(m, Outage("503"), False)]
    assert schedule.wake_at() == pytest.approx(clock.now + 2.0)
    clock.now += 2.0
    (read,) = schedule.next_reads()
    assert schedule.failed(read, IQPUnavailableError("429", 429, retry_after=9.0)) == []
    assert schedule.wake_at() == pytest.approx(clock.now + 9.0)
    clock.now += 9.0
    (read,) = schedule.next_reads()

    (update,) = schedule.failed(read, IQPUnavailableError("503", 503))  # the third in a row: budget is 2

    assert update.member is m
    assert update.final
    assert isinstance(update.item, IQPUnavailableError)
    assert not schedule.current(m)


def told(updates: list[Update]) -> list[tuple[Member, object, bool]]:
    return [(update.member, update.item, update.final) for update in updates]


def test_a_good_answer_forgives_earlier_errors(schedule: Schedule, clock: Clock) -> None:
    m, read = quiet_group(schedule, clock)
    schedule.failed(read, IQPUnavailableError("503", 503))
    clock.now += 2.0
    (read,) = schedule.next_reads()
    schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)

    assert schedule.wake_at() == pytest.approx(clock.now + 1.0)


def test_the_waits_hear_once_that_ibm_is_unreachable_and_once_that_it_answers_again(
    schedule: Schedule, clock: Clock
) -> None:
    m, read = quiet_group(schedule, clock)
    schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)
    clock.now += 1.0
    (read,) = schedule.next_reads()

    first = schedule.failed(read, IQPUnavailableError("connection refused", None))
    clock.now += 2.0
    (read,) = schedule.next_reads()
    second = schedule.failed(read, IQPUnavailableError("connection refused", None))
    clock.now += 4.0
    (read,) = schedule.next_reads()
    back = schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)
    clock.now += 1.0
    (read,) = schedule.next_reads()
    later = schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)

    assert told(first) == [(m, Outage("connection refused"), False)]
    assert second == []
    assert told(back) == [(m, Outage(None), False)]
    assert later == []


def test_a_permanent_error_ends_every_wait_of_the_group(schedule: Schedule, clock: Clock) -> None:
    members = [member(n, RUN) for n in range(3)]
    for m in members:
        schedule.add(m)
    (read,) = due(schedule, clock)

    updates = schedule.failed(read, IQPError("forbidden", 403))

    assert {u.member for u in updates} == set(members)
    assert all(u.final for u in updates)


# ----- reads in flight ---------------------------------------------------------------------------


def test_a_group_with_a_read_in_flight_is_not_read_again_while_other_groups_go_on(
    schedule: Schedule, clock: Clock
) -> None:
    hung, other = member(1, RUN), member(2, flow_run_tag("run-2"))
    schedule.add(hung)
    schedule.add(other)
    reads = due(schedule, clock)
    hung_read = next(r for r in reads if hung in r.members)
    other_read = next(r for r in reads if other in r.members)

    for _ in range(5):  # the other group is read again and again; the hung one waits for its answer
        schedule.listed(other_read, [snap(other, JobStatus.RUNNING)], complete=True)
        (other_read,) = due(schedule, clock, after=POLICY.initial)
        assert other in other_read.members
    (update,) = schedule.listed(other_read, [snap(other, JobStatus.DONE)], complete=True)

    assert update.member is other
    assert update.final
    assert schedule.current(hung)
    schedule.listed(hung_read, [snap(hung, JobStatus.QUEUED)], complete=True)
    assert [hung] == [m for r in due(schedule, clock, after=POLICY.initial) for m in r.members]


def test_a_late_answer_for_a_removed_registration_touches_neither_it_nor_a_newer_one(
    schedule: Schedule, clock: Clock
) -> None:
    old = member(1, RUN)
    schedule.add(old)
    (late,) = due(schedule, clock)
    schedule.remove(old)
    new = member(1, RUN)
    schedule.add(new)

    assert schedule.listed(late, [snap(old, JobStatus.DONE)], complete=True) == []
    assert schedule.current(new)
    assert new.last is None


# ----- queue positions ---------------------------------------------------------------------------


def test_only_the_head_of_a_queued_group_has_its_position_read_on_the_position_pace(
    schedule: Schedule, clock: Clock
) -> None:
    members = [member(n, RUN, policy=POSITIONS) for n in range(4)]
    for m in members:
        schedule.add(m)
    (read,) = due(schedule, clock)
    schedule.listed(read, [snap(m, JobStatus.QUEUED) for m in members], complete=True)

    reads = due(schedule, clock, after=POLICY.initial)
    positions = [r for r in reads if isinstance(r, ReadPosition)]
    assert [r.member for r in positions] == [members[0]]
    (update,) = schedule.positioned(positions[0], snap(members[0], JobStatus.QUEUED, position_in_queue=7))
    assert isinstance(update.item, JobSnapshot)
    assert update.item.position_in_queue == 7

    status_read = next(r for r in reads if isinstance(r, ListGroup))
    schedule.listed(
        status_read,
        [snap(members[0], JobStatus.RUNNING)] + [snap(m, JobStatus.QUEUED) for m in members[1:]],
        complete=True,
    )
    assert not any(isinstance(r, ReadPosition) for r in due(schedule, clock, after=POLICY.initial))
    clock.now += 10
    positions = [r for r in schedule.next_reads() if isinstance(r, ReadPosition)]
    assert [r.member for r in positions] == [members[1]]  # the next in line is the head now


def test_a_position_is_kept_while_the_listing_says_nothing_new(schedule: Schedule, clock: Clock) -> None:
    m = member(1, RUN, policy=POSITIONS)
    schedule.add(m)
    (read,) = due(schedule, clock)
    schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)
    reads = due(schedule, clock, after=POLICY.initial)
    schedule.positioned(
        next(r for r in reads if isinstance(r, ReadPosition)), snap(m, JobStatus.QUEUED, position_in_queue=3)
    )

    schedule.listed(
        next(r for r in reads if isinstance(r, ListGroup)), [snap(m, JobStatus.QUEUED)], complete=True
    )

    assert m.last is not None
    assert m.last.position_in_queue == 3


def test_positions_are_not_read_when_the_policy_turns_them_off(schedule: Schedule, clock: Clock) -> None:
    m = member(1, RUN, policy=POLICY)
    schedule.add(m)
    (read,) = due(schedule, clock)
    schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)

    assert all(isinstance(r, ListGroup) for r in due(schedule, clock, after=600))


def test_a_job_read_alone_is_read_by_id(schedule: Schedule, clock: Clock) -> None:
    m = member(1)
    schedule.add(m)

    (read,) = due(schedule, clock)

    assert isinstance(read, ReadJob)
    assert read.member is m
    (update,) = schedule.read_job(read, snap(m, JobStatus.DONE))
    assert update.final


# ----- the lag bound and the cost of a read ---------------------------------------------------------


def test_a_quiet_group_is_read_at_least_every_lag_bound_however_long_it_has_queued(
    schedule: Schedule, clock: Clock
) -> None:
    bounded = POLICY.model_copy(update={"lag_bound": 4.0})
    m = member(1, RUN, policy=bounded)
    schedule.add(m)
    (read,) = due(schedule, clock)
    pauses = []
    for _ in range(200):  # about 13 minutes of a queue in which nothing changes
        schedule.listed(read, [snap(m, JobStatus.QUEUED)], complete=True)
        wake = schedule.wake_at()
        assert wake is not None
        pauses.append(wake - clock.now)
        clock.now = wake
        (read,) = schedule.next_reads()

    assert max(pauses) == pytest.approx(4.0)
    assert pauses[-1] == pytest.approx(4.0)


def queued_and_read_once(schedule: Schedule, clock: Clock, n: int) -> tuple[list[Member], ListGroup]:
    """``n`` jobs of one run, listed once all queued; the group's next read."""
    members = [member(k, RUN) for k in range(n)]
    for m in members:
        schedule.add(m)
    (first,) = due(schedule, clock)
    schedule.listed(first, [snap(m, JobStatus.QUEUED) for m in members], complete=True)
    (read,) = due(schedule, clock, after=POLICY.initial)
    return members, read


def test_the_next_page_is_read_only_while_the_last_job_of_a_page_has_changed(
    schedule: Schedule, clock: Clock
) -> None:
    members, read = queued_and_read_once(schedule, clock, 4)

    ended_in_order = [snap(members[0], JobStatus.CANCELLED), snap(members[1], JobStatus.CANCELLED)]
    assert read.read_on(ended_in_order)  # the change reaches the page's end: it may run on
    assert not read.read_on([ended_in_order[0], snap(members[1], JobStatus.QUEUED)])
    assert not read.read_on([])


def test_a_listing_tells_the_jobs_it_lists_and_leaves_the_others_alone(
    schedule: Schedule, clock: Clock
) -> None:
    members, read = queued_and_read_once(schedule, clock, 300)

    updates = schedule.listed(
        read, [snap(members[0], JobStatus.DONE), snap(members[1], JobStatus.RUNNING)], False
    )

    assert [(u.member, u.final) for u in updates] == [(members[0], True), (members[1], False)]
    assert all(schedule.current(m) for m in members[1:])
    (later,) = due(schedule, clock, after=POLICY.initial)
    assert later.created_after == T0 + timedelta(seconds=1)  # the oldest unfinished job, as IBM dated it


def test_a_group_of_many_pages_is_swept_so_that_sweeps_take_a_tenth_of_its_requests(
    schedule: Schedule, clock: Clock
) -> None:
    bounded = POLICY.model_copy(update={"lag_bound": 4.0})
    members = [member(n, RUN, policy=bounded) for n in range(450)]  # 3 pages of 200
    for m in members:
        schedule.add(m)
    (read,) = due(schedule, clock)
    schedule.listed(read, [snap(m, JobStatus.QUEUED) for m in members], complete=True)
    swept_at = clock.now
    sweeps = []
    for _ in range(60):
        wake = schedule.wake_at()
        assert wake is not None
        clock.now = wake
        (read,) = schedule.next_reads()
        if read.all_pages:
            sweeps.append(clock.now - swept_at)
            swept_at = clock.now
        listed = members if read.all_pages else members[:200]
        schedule.listed(read, [snap(m, JobStatus.QUEUED) for m in listed], complete=read.all_pages)

    # 2 pages beyond the first per sweep, at one read per 4 s: a sweep every 10 * 2 * 4 = 80 s.
    assert sweeps
    assert all(80 <= gap < 84 for gap in sweeps)
