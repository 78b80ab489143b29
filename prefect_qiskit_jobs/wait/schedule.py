"""What the watcher reads next, and what each answer means: pure decisions, no I/O, no clock of its own.

Awaited jobs are kept in groups read together. The jobs of one flow run (or of one process,
outside any run) on one backend share a tag, and IBM lists jobs by tag, so one request answers
for a whole group: the group's jobs created since its oldest unfinished job, oldest first. IBM
runs a backend's jobs in about the order they came, so that first page is where jobs start and
end, with their final states. When that page's last job has changed too, the change may run on
past it (IBM cancelling thousands of jobs in order, say), so the next page is read as well, and
so on. A group larger than a page is read in full now and then (a sweep) to catch a job that
ended out of turn; sweeps take at most a tenth of the group's requests. A job without such a tag
is read on its own.

Each group has one read in flight at most, so a slow or hung answer holds up its own group only.
Its pace follows ``PollPolicy.pace``: short while the group is new (a job may end within a
second), then growing with the time nothing in the group changed, up to the policy's
``lag_bound`` (a job can end at any moment, however long it queued); it doubles with each
transient error, and honours ``Retry-After``. Each read costs time in proportion to the jobs it
lists, never to all the group's jobs. A queued group's queue position comes from ``/metrics`` for
its head (its first queued job) only: the others queue behind it.

Members are registrations, compared by identity: a late answer for one that has gone is dropped,
and it never touches a newer registration of the same job.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prefect_qiskit_jobs.errors import IQPUnavailableError
from prefect_qiskit_jobs.ibm.listing import PAGE_SIZE
from prefect_qiskit_jobs.ibm.tags import FLOW_RUN_PREFIX, PROCESS_PREFIX
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, PollPolicy

# Registrations arriving within this window are read together (many waits start at once).
COALESCE_SECONDS = 0.05
# A group larger than one page is read in full at least this often, and the pages its sweeps read
# beyond the first take at most 1 / SWEEP_SHARE of its requests (10,000 jobs are 50 pages).
SWEEP_SECONDS = 60.0
SWEEP_SHARE = 10
# Before IBM's own creation time of a job is known, list from this long before the local one.
CLOCK_MARGIN = timedelta(seconds=60)

GroupKey = tuple[int, str, str | None]
"""(credentials, ``"tag:<tag>"`` or ``"job:<id>"``, backend)."""


@dataclass(eq=False)
class Member:
    """One registration of a job: what the watcher last told its waits about it."""

    gateway: Any
    job: JobRef
    policy: PollPolicy
    last: JobSnapshot | None = None

    @property
    def created(self) -> datetime | None:
        return (self.last.created if self.last else None) or self.job.created_at


def listing_tag(tags: tuple[str, ...]) -> str | None:
    """The tag that lists a job together with its siblings: its flow run's, else its process's."""
    for prefix in (FLOW_RUN_PREFIX, PROCESS_PREFIX):
        tag = next((t for t in tags if t.startswith(prefix)), None)
        if tag is not None:
            return tag
    return None


@dataclass(eq=False)
class Group:
    key: GroupKey
    members: dict[str, Member] = field(default_factory=dict)
    began_at: float = 0.0  # when its first member came: its waits' pauses start short
    changed_at: float = 0.0
    due: float = 0.0
    errors: int = 0
    reading: bool = False
    swept_at: float | None = None
    unseen: bool = True
    position_due: float = 0.0
    position_reading: bool = False
    # The members' distinct policies, kept (hashing thousands of models each cycle costs a core).
    known_policies: list[PollPolicy] | None = None
    # Where the next listing starts (``start()``), kept until a member comes, goes or is dated.
    known_start: tuple[datetime | None] | None = None
    # Pages the last complete listing took.
    pages: int = 1

    @property
    def tag(self) -> str | None:
        kind, _, value = self.key[1].partition(":")
        return value if kind == "tag" else None

    def policies(self) -> list[PollPolicy]:
        if self.known_policies is None:
            self.known_policies = list(dict.fromkeys(m.policy for m in self.members.values()))
        return self.known_policies

    def start(self) -> datetime | None:
        """The oldest member's creation time (IBM's, else the local one less ``CLOCK_MARGIN``)."""
        if self.known_start is None:
            self.known_start = (_oldest(self.members.values()),)
        return self.known_start[0]

    def position_every(self) -> float | None:
        """The shortest pause between position reads any member asks for (None: no member does)."""
        return min((p.queue_position_every for p in self.policies() if p.queue_position_every), default=None)

    def head(self) -> Member | None:
        """The queued job whose position is read: the lowest known position, else the oldest."""
        queued = [m for m in self.members.values() if m.last and m.last.status is JobStatus.QUEUED]
        if not queued:
            return None
        return min(queued, key=_queue_order)


def _oldest(members: Iterable[Member]) -> datetime | None:
    oldest: datetime | None = None
    for member in members:
        last = member.last
        created = last.created if last is not None and last.created is not None else None
        if created is None:
            if member.job.created_at is None:
                return None
            created = member.job.created_at - CLOCK_MARGIN
        if oldest is None or created < oldest:
            oldest = created
    return oldest


def _queue_order(member: Member) -> tuple[int, float]:
    position = member.last.position_in_queue if member.last else None
    created = member.created
    return position or 10**9, created.timestamp() if created else float("inf")


@dataclass(frozen=True, eq=False)
class ListGroup:
    """List the group's jobs created since ``created_after``, oldest first: the first page, or all.

    ``by_id`` holds the registrations the read is for: an answer reaches those and no newer one.
    """

    group: Group
    by_id: dict[str, Member]
    created_after: datetime | None
    all_pages: bool

    @property
    def members(self) -> tuple[Member, ...]:
        return tuple(self.by_id.values())

    @property
    def first(self) -> Member:
        """A member, for what they all share: the gateway, and the job an error is told by."""
        return next(iter(self.by_id.values()))

    def read_on(self, page: list[JobSnapshot]) -> bool:
        """Whether the page after ``page`` may hold news: ``page``'s last job changed since last read.

        IBM ends a backend's jobs in about the order they came, so changes run from the oldest
        job on; when they reach the end of a page they may run on into the next one.
        """
        member = self.by_id.get(page[-1].job_id) if page else None
        last = member.last if member is not None else None
        return last is not None and last.status is not page[-1].status

    @property
    def tag(self) -> str:
        tag = self.group.tag
        assert tag is not None
        return tag

    @property
    def backend(self) -> str | None:
        return self.group.key[2]


@dataclass(frozen=True, eq=False)
class ReadJob:
    """Read one job (``GET /jobs/{id}``)."""

    group: Group
    member: Member


@dataclass(frozen=True, eq=False)
class ReadPosition:
    """Read a queued job's ``/metrics`` for its queue position."""

    group: Group
    member: Member


Read = ListGroup | ReadJob | ReadPosition


@dataclass(frozen=True)
class Outage:
    """IBM did not answer a read of the job (``error`` says how), or answers again (``error`` None).

    Told once when a group's reads start failing and once when they succeed again, so a wait can
    show that IBM is unreachable while it goes on waiting within its error budget.
    """

    error: str | None


@dataclass(frozen=True, eq=False)
class Update:
    """Tell ``member``'s waits about ``item``; ``final`` ends the registration."""

    member: Member
    item: JobSnapshot | BaseException | Outage
    final: bool


class Schedule:
    """Every awaited job's group and pace; the watcher asks it what to read and tells it what came back."""

    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._groups: dict[GroupKey, Group] = {}
        self._group_of: dict[int, Group] = {}

    # ----- membership --------------------------------------------------------------------
    def add(self, member: Member, alone: bool = False) -> None:
        """Start reading ``member``'s job; its group is read within ``COALESCE_SECONDS``."""
        tag = None if alone else listing_tag(member.job.tags)
        kind = f"tag:{tag}" if tag is not None else f"job:{member.job.job_id}"
        key: GroupKey = (id(member.gateway), kind, member.job.backend or None if tag else None)
        group = self._groups.get(key)
        now = self._clock()
        if group is None:
            group = self._groups[key] = Group(key, began_at=now, changed_at=now, due=now + COALESCE_SECONDS)
        else:
            group.due = min(group.due, now + COALESCE_SECONDS)
            group.changed_at = now
        group.members[member.job.job_id] = member
        group.known_policies = None
        group.known_start = None
        group.unseen = True
        self._group_of[id(member)] = group

    def remove(self, member: Member) -> None:
        """Stop reading ``member`` (a newer registration of the same job stays)."""
        group = self._group_of.pop(id(member), None)
        if group is None:
            return
        if group.members.get(member.job.job_id) is member:
            del group.members[member.job.job_id]
            group.known_policies = None
            group.known_start = None
        if not group.members and self._groups.get(group.key) is group:
            del self._groups[group.key]

    def current(self, member: Member) -> bool:
        group = self._group_of.get(id(member))
        return group is not None and group.members.get(member.job.job_id) is member

    def now(self) -> float:
        return self._clock()

    def __len__(self) -> int:
        return len(self._group_of)

    # ----- what to read ------------------------------------------------------------------
    def next_reads(self) -> list[Read]:
        """The reads due now; each group's (and each head's) is marked in flight until answered."""
        now = self._clock()
        reads: list[Read] = []
        for group in self._groups.values():
            if not group.reading and group.due <= now:
                group.reading = True
                reads.append(self._status_read(group, now))
            every = group.position_every()
            if every is None or group.position_reading or group.position_due > now:
                continue
            group.position_due = now + every
            head = group.head()  # one pass over the members, only when a position read is due
            if head is not None:
                group.position_reading = True
                reads.append(ReadPosition(group, head))
        return reads

    def wake_at(self) -> float | None:
        """When the next read falls due (None: nothing to read)."""
        times = [g.due for g in self._groups.values() if not g.reading]
        times += [
            g.position_due
            for g in self._groups.values()
            if not g.position_reading and g.position_every() is not None
        ]
        return min(times, default=None)

    def _status_read(self, group: Group, now: float) -> Read:
        if group.tag is None:
            return ReadJob(group, next(iter(group.members.values())))
        sweep_due = group.swept_at is None or now - group.swept_at >= max(
            SWEEP_SECONDS, SWEEP_SHARE * (group.pages - 1) * self._pause(group, now)
        )
        return ListGroup(group, dict(group.members), group.start(), all_pages=group.unseen or sweep_due)

    def _pause(self, group: Group, now: float, retry_after: float | None = None) -> float:
        quiet, waited = now - group.changed_at, now - group.began_at
        pauses = [p.pace(quiet, self._rng, group.errors, waited) for p in group.policies()]
        return max(min(pauses, default=1.0), retry_after or 0.0)

    # ----- what came back ----------------------------------------------------------------
    def listed(self, read: ListGroup, jobs: list[JobSnapshot], complete: bool) -> list[Update]:
        """A listing of the group came back; ``complete``: it held every job since ``created_after``.

        A member a complete listing lacks is not where its tag says (it lost the tag, or IBM's
        clock disagrees): it is read on its own from now on.
        """
        now = self._clock()
        group = read.group
        updates: list[Update] = []
        changed = False
        for snapshot in jobs:  # the jobs listed, not every member: a page costs its own length
            member = read.by_id.get(snapshot.job_id)
            if member is None:
                continue
            moved, update = self._observe(member, snapshot)
            changed |= moved
            if update is not None:
                updates.append(update)
        if complete:
            listed = {job.job_id for job in jobs}
            for member in read.by_id.values():
                if member.job.job_id not in listed and self.current(member):
                    self.remove(member)
                    self.add(member, alone=True)
        if read.all_pages:
            group.swept_at = now
            if complete:
                group.pages = max(1, -(-len(jobs) // PAGE_SIZE))
                group.unseen = any(read.by_id.get(job_id) is not m for job_id, m in group.members.items())
        return updates + self._answered(group, now, changed, read.by_id.values())

    def read_job(self, read: ReadJob, snapshot: JobSnapshot) -> list[Update]:
        now = self._clock()
        changed, update = self._observe(read.member, snapshot)
        read.group.unseen = False
        recovered = self._answered(read.group, now, changed, (read.member,))
        return ([update] if update is not None else []) + recovered

    def positioned(self, read: ReadPosition, snapshot: JobSnapshot | None) -> list[Update]:
        """The head's metrics came back, applied to its last snapshot as ``snapshot``."""
        read.group.position_reading = False
        member = read.member
        last = member.last
        if not self.current(member) or last is None or last.status is not JobStatus.QUEUED:
            return []
        if snapshot is None or snapshot.position_in_queue == last.position_in_queue:
            return []
        member.last = snapshot
        return [Update(member, snapshot, final=False)]

    def failed(self, read: Read, error: BaseException) -> list[Update]:
        """A read failed. Transient errors back off (a member whose budget they exhaust fails);
        any other error ends the waits it concerns."""
        group = read.group
        if isinstance(read, ReadPosition):
            group.position_reading = False
            return []
        members = read.members if isinstance(read, ListGroup) else (read.member,)
        live = [m for m in members if self.current(m)]
        now = self._clock()
        outage: list[Update] = []
        if isinstance(error, IQPUnavailableError):
            group.errors += 1
            spent = [m for m in live if group.errors > m.policy.error_budget]
            if group.errors == 1:  # the first of a run of failures: the waits show it
                outage = [Update(m, Outage(str(error)), final=False) for m in live if m not in spent]
        else:
            spent = live
        for member in spent:
            self.remove(member)
        group.reading = False
        group.due = now + self._pause(group, now, getattr(error, "retry_after", None))
        return outage + [Update(m, error, final=True) for m in spent]

    def _observe(self, member: Member, snapshot: JobSnapshot) -> tuple[bool, Update | None]:
        """Take ``snapshot`` as ``member``'s state: (did its status change, what to tell its waits)."""
        if not self.current(member):
            return False, None
        last = member.last
        kept: dict[str, object] = {}  # what the listing does not say, carried over from the last read
        if last is not None and snapshot.status is last.status:
            if snapshot.position_in_queue is None and last.position_in_queue is not None:
                kept["position_in_queue"] = last.position_in_queue
            if snapshot.estimated_start is None and last.estimated_start is not None:
                kept["estimated_start"] = last.estimated_start
        if last is not None and snapshot.running is None and last.running is not None:
            kept["running"] = last.running
        if kept:
            snapshot = snapshot.model_copy(update=kept)
        changed = last is None or snapshot.status is not last.status
        if last is None or (last.created is None and snapshot.created is not None):
            self._group_of[id(member)].known_start = None  # IBM dated it: the listings start there
        member.last = snapshot
        group = self._group_of[id(member)]
        if changed and snapshot.status is JobStatus.QUEUED:
            group.position_due = min(group.position_due, self._clock())  # a new head may be queued
        if snapshot.status.is_final:
            self.remove(member)
            return True, Update(member, snapshot, final=True)
        return changed, Update(member, snapshot, final=False) if changed else None

    def _answered(self, group: Group, now: float, changed: bool, members: Iterable[Member]) -> list[Update]:
        """A read of ``group`` succeeded: pace it, and after failures tell the waits IBM answers again."""
        recovered = group.errors > 0
        group.reading = False
        group.errors = 0
        if changed:
            group.changed_at = now
        group.due = now + self._pause(group, now)
        if not recovered:
            return []
        return [Update(m, Outage(None), final=False) for m in members if self.current(m)]
