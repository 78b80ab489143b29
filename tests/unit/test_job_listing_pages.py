"""Paging through IBM's newest-first job listing misses no job that stays in the listed set.

IBM pages with ``skip``/``limit`` over a listing that changes while it is read. A new job is
prepended and only pushes later jobs down (one is then seen twice); a job that leaves the set
(a pending job ending) pulls every later job up one place, past the cursor, so one is never seen.
A shrinking ``count`` is the only sign of the second case, and it costs another pass.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from prefect_qiskit_jobs import IBMQuantumCredentials
from prefect_qiskit_jobs.ibm.gateway import PAGE_SIZE, IQPGateway
from prefect_qiskit_jobs.ibm.listing import collect_listing
from prefect_qiskit_jobs.ibm.tags import FLOW_RUN_PREFIX

TAG = f"{FLOW_RUN_PREFIX}run-1"


def job_ids(count: int) -> list[str]:
    """Job ids newest first: ``d000...0``, ``d000...1``, ..."""
    return [f"d{n:019d}" for n in range(count)]


class Listing:
    """IBM's pending listing of a flow run's jobs, newest first, changed between requests as scripted.

    ``between`` maps a request number (1 = after the first request was answered) to a change of the
    listed jobs: ``("end", id)`` removes a job, ``("new", id)`` prepends one.
    """

    def __init__(self, ids: list[str], between: dict[int, tuple[str, str]] | None = None) -> None:
        self.jobs = [{"id": job_id, "status": "Queued", "tags": [TAG], "seen": 0} for job_id in ids]
        self.between = between or {}
        self.requests: list[tuple[int, int]] = []

    def __call__(self, skip: int, limit: int) -> dict[str, Any]:
        self.requests.append((skip, limit))
        for job in self.jobs:
            job["seen"] = len(self.requests)
        answer = {"jobs": [dict(job) for job in self.jobs[skip : skip + limit]], "count": len(self.jobs)}
        change = self.between.get(len(self.requests))
        if change is not None:
            kind, job_id = change
            if kind == "end":
                self.jobs = [job for job in self.jobs if job["id"] != job_id]
            else:
                self.jobs.insert(0, {"id": job_id, "status": "Queued", "tags": [TAG], "seen": 0})
        return answer


def ids_of(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["id"] for job in jobs]


def test_a_job_that_ends_between_pages_costs_no_other_job_its_place() -> None:
    ids = job_ids(5)
    # Page 1 answers the two newest; then the newest ends, and every later job moves up one place.
    listing = Listing(ids, between={1: ("end", ids[0])})

    jobs = collect_listing(listing, page_size=2)

    assert set(ids[1:]) <= set(ids_of(jobs))  # ids[2] moved to where page 1 had been read
    assert ids_of(jobs) == ids  # the ended job as last seen, newest first, each job once
    assert listing.requests == [(0, 2), (2, 2), (0, 2), (2, 2)]


def test_a_stable_listing_is_read_in_one_pass() -> None:
    ids = job_ids(5)
    listing = Listing(ids)

    jobs = collect_listing(listing, page_size=2)

    assert ids_of(jobs) == ids
    assert listing.requests == [(0, 2), (2, 2), (4, 2)]


def test_a_job_submitted_between_pages_repeats_one_job_but_needs_no_second_pass() -> None:
    ids = job_ids(4)
    listing = Listing(ids, between={1: ("new", "dnewest000000000000")})

    jobs = collect_listing(listing, page_size=2)

    # ids[1] was pushed onto page 2 and seen twice: kept once, as last seen, in its place.
    assert ids_of(jobs) == ids
    assert [job["seen"] for job in jobs] == [1, 2, 2, 3]
    assert len(listing.requests) == 3


def test_a_listing_that_keeps_shrinking_is_read_a_bounded_number_of_times() -> None:
    ids = job_ids(40)
    # One job ends after every request, forever.
    listing = Listing(ids, between={n: ("end", ids[n - 1]) for n in range(1, 41)})

    jobs = collect_listing(listing, page_size=2, passes=3)

    assert ids_of(jobs) == sorted(set(ids_of(jobs)))  # newest first, once each
    passes = sum(1 for skip, _ in listing.requests if skip == 0)
    assert passes == 3


def test_a_limit_caps_what_is_requested_and_returned() -> None:
    listing = Listing(job_ids(10))

    jobs = collect_listing(listing, limit=3, page_size=2)

    assert ids_of(jobs) == job_ids(3)
    assert listing.requests == [(0, 2), (2, 1)]


class _ListingClient:
    """Answers ``jobs_get`` as the client's ``RuntimeClient`` does, from a scripted listing."""

    def __init__(self, listing: Listing) -> None:
        self.listing = listing

    def jobs_get(
        self, *, limit: int, skip: int, pending: bool | None, job_tags: list[str] | None, **narrowing: Any
    ) -> Any:
        assert (pending, job_tags, narrowing) == (
            True,
            [TAG],
            {"backend_name": None, "created_after": None, "created_before": None},
        )
        return self.listing(skip, limit)


class _ScriptedGateway(IQPGateway):
    """A gateway whose REST client is the scripted listing (its own seam, not the client's)."""

    def __init__(self, listing: Listing) -> None:
        super().__init__(IBMQuantumCredentials(token=SecretStr("unused-token"), instance="crn:v1:x"))
        self._scripted = _ListingClient(listing)

    def client(self) -> Any:
        return self._scripted


def test_pending_listings_find_every_job_left_to_cancel_when_one_ends_mid_listing() -> None:
    ids = job_ids(PAGE_SIZE + 50)
    listing = Listing(ids, between={1: ("end", ids[10])})

    listed = _ScriptedGateway(listing).list_jobs(tags=[TAG], pending=True)

    assert set(ids) - {ids[10]} <= {snapshot.job_id for snapshot in listed}
    assert len(listed) == len({snapshot.job_id for snapshot in listed})
