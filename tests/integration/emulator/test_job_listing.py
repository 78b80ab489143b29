"""``service.jobs(...)`` finds exactly the right jobs, across the several pages the client asks for.

The client pages by 20 and stops when it has ``count - skip`` jobs, so these listings use more
than 40 jobs, submitted through the client on the held emulator where they stay Queued until a
test cancels them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.runtime_job_v2 import RuntimeJobV2

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for, point_environment_at

PAGE = 20


@dataclass
class Listing:
    """The jobs of the listing, in submission order, by the group they were submitted in."""

    all: list[RuntimeJobV2]
    group_a: list[RuntimeJobV2]
    group_b: list[RuntimeJobV2]
    estimators: list[RuntimeJobV2]
    nairobi: list[RuntimeJobV2]
    untagged: list[RuntimeJobV2]
    cancelled: list[RuntimeJobV2]
    created: dict[str, datetime]


@pytest.fixture(scope="module")
def listing(held_session_emulator: RunningEmulator) -> Iterator[Listing]:
    """49 jobs: samplers and estimators, two backends, three tag sets; 21 of them cancelled."""
    held_session_emulator.reset(jobs=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_environment_at(held_session_emulator, monkeypatch)
        service = QiskitRuntimeService()
        manila, nairobi = service.backend(SMALL_BACKEND), service.backend("ibm_nairobi")
        circuit = bell_for(manila)
        estimator_circuit = bell_for(manila, measure=False)
        observable = SparsePauliOp("ZZ").apply_layout(estimator_circuit.layout)

        def sample(tags: list[str], backend: object = manila, pub: object = circuit) -> RuntimeJobV2:
            sampler = SamplerV2(mode=backend)
            if tags:
                sampler.options.environment.job_tags = tags
            return sampler.run([pub], shots=10)

        def estimate() -> RuntimeJobV2:
            estimator = EstimatorV2(mode=manila)
            estimator.options.environment.job_tags = ["listing"]
            return estimator.run([(estimator_circuit, observable)])

        jobs: list[RuntimeJobV2] = []
        untagged = [sample([]) for _ in range(2)]
        group_a = [sample(["listing", "group-a"]) for _ in range(24)]
        group_b = [sample(["listing", "group-b"]) for _ in range(12)]
        estimators = [estimate() for _ in range(6)]
        nairobi_circuit = bell_for(nairobi)
        on_nairobi = [sample(["listing"], nairobi, nairobi_circuit) for _ in range(5)]
        jobs = untagged + group_a + group_b + estimators + on_nairobi
        cancelled = group_a[:21]
        for job in cancelled:
            job.cancel()
        created = {j["id"]: datetime.fromisoformat(j["created"]) for j in held_session_emulator.jobs()}
        yield Listing(jobs, group_a, group_b, estimators, on_nairobi, untagged, cancelled, created)
    held_session_emulator.reset(jobs=True)


@pytest.fixture
def service(
    listing: Listing, held_session_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> QiskitRuntimeService:
    point_environment_at(held_session_emulator, monkeypatch)
    held_session_emulator.reset(jobs=False)  # zero the request counters only
    return QiskitRuntimeService()


def ids(jobs: list[RuntimeJobV2]) -> list[str]:
    return [job.job_id() for job in jobs]


def test_unlimited_listing_pages_through_every_job_newest_first(
    listing: Listing, service: QiskitRuntimeService, held_session_emulator: RunningEmulator
) -> None:
    found = service.jobs(limit=None)

    assert len(listing.all) == 49
    assert ids(found) == ids(listing.all)[::-1]
    assert held_session_emulator.stats()["routes"]["GET /jobs"] == 3  # 20 + 20 + 9


def test_ascending_sort_lists_oldest_first(listing: Listing, service: QiskitRuntimeService) -> None:
    assert ids(service.jobs(limit=None, descending=False)) == ids(listing.all)


def test_pending_filter_splits_queued_from_cancelled(listing: Listing, service: QiskitRuntimeService) -> None:
    pending = service.jobs(limit=None, pending=True, job_tags=["listing"])
    finished = service.jobs(limit=None, pending=False, job_tags=["listing"])

    tagged = [j for j in listing.all if j not in listing.untagged]
    assert len(pending) == 26 > PAGE
    assert len(finished) == 21 > PAGE
    assert set(ids(pending)) == set(ids(tagged)) - set(ids(listing.cancelled))
    assert ids(finished) == ids(listing.cancelled)[::-1]
    assert {str(job.status()) for job in pending} == {"QUEUED"}


def test_tag_filter_needs_every_tag(listing: Listing, service: QiskitRuntimeService) -> None:
    assert ids(service.jobs(limit=None, job_tags=["listing", "group-b"])) == ids(listing.group_b)[::-1]
    assert len(service.jobs(limit=None, job_tags=["listing"])) == 47
    assert service.jobs(limit=None, job_tags=["group-a", "group-b"]) == []


def test_backend_and_program_filters(listing: Listing, service: QiskitRuntimeService) -> None:
    nairobi = service.jobs(limit=None, backend_name="ibm_nairobi")
    estimators = service.jobs(limit=None, program_id="estimator")
    samplers = service.jobs(limit=None, program_id="sampler", backend_name=SMALL_BACKEND)

    assert ids(nairobi) == ids(listing.nairobi)[::-1]
    assert ids(estimators) == ids(listing.estimators)[::-1]
    assert len(samplers) == 49 - 6 - 5
    assert {job.primitive_id for job in estimators} == {"estimator"}


def test_created_after_and_before_bound_the_listing_inclusively(
    listing: Listing, service: QiskitRuntimeService
) -> None:
    first, last = listing.group_b[0].job_id(), listing.estimators[-1].job_id()

    window = service.jobs(
        limit=None, created_after=listing.created[first], created_before=listing.created[last]
    )
    after = service.jobs(limit=None, created_after=listing.created[first])
    before = service.jobs(limit=None, created_before=listing.created[first])

    assert ids(window) == ids(listing.group_b + listing.estimators)[::-1]
    assert len(after) == 12 + 6 + 5
    assert len(before) == 2 + 24 + 1


def test_limit_and_skip(listing: Listing, service: QiskitRuntimeService) -> None:
    assert ids(service.jobs(limit=25)) == ids(listing.all)[::-1][:25]
    assert ids(service.jobs(limit=None, skip=45)) == ids(listing.all)[::-1][45:]
    assert ids(service.jobs()) == ids(listing.all)[::-1][:10]
