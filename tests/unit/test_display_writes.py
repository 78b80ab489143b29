"""Tables kept current never lose their last rows: an injected send and clock, no Prefect API.

The waits of one flow run share its job board from different threads and event loops (``.map()``).
These tests hold a send open, let another update arrive meanwhile, and check what the artifact was
sent last, and when a flush returned, relative to the sends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, Primitive
from prefect_qiskit_jobs.wait.display import ARTIFACT_MIN_INTERVAL, JobBoard, Rows, TableDisplay

RETURNED = "flush returned"
JOB_A = JobRef(job_id="d1aaaaaaaaaaaaaaaaa0", backend="ibm_brisbane", primitive=Primitive.SAMPLER)
JOB_B = JobRef(job_id="d1bbbbbbbbbbbbbbbbb0", backend="ibm_brisbane", primitive=Primitive.SAMPLER)


def snapshot(job: JobRef, status: JobStatus) -> JobSnapshot:
    return JobSnapshot(job_id=job.job_id, status=status)


def statuses(rows: Rows) -> dict[str, str]:
    return {row["job id"]: row["status"] for row in rows}


class Sends:
    """An artifact's send that records what it was given; its first send stays open until released.

    ``log`` holds the rows of each send in order, and whatever else a test appends (a flush
    returning), so a test reads what happened before what.
    """

    def __init__(self, *, hold_first: bool = True) -> None:
        self.log: list[Any] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.failures = 0
        self._hold = hold_first
        self._in_flight = 0
        self.max_in_flight = 0

    @property
    def rows(self) -> list[Rows]:
        return [entry for entry in self.log if isinstance(entry, list)]

    async def __call__(self, rows: Rows) -> None:
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self.log.append(rows)
            if self._hold:
                self._hold = False
                self.started.set()
                await asyncio.to_thread(self.release.wait)
            if self.failures:
                self.failures -= 1
                raise ConnectionError("the Prefect API is away")
        finally:
            self._in_flight -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class OneJob:
    """The rows of a wait of one job, whose status a test sets."""

    def __init__(self, status: JobStatus) -> None:
        self.status = status

    def rows(self) -> Rows:
        return [{"job id": "a", "status": self.status.value}]

    def display(self, sends: Sends, clock: Clock | None = None) -> TableDisplay:
        return TableDisplay(
            "qiskit-wait-1", "Jobs this wait follows", self.rows, send=sends, clock=clock or Clock()
        )


@pytest.fixture
def other_loop() -> Iterator[Callable[[Callable[[], Awaitable[None]]], asyncio.Future[None]]]:
    """Run a coroutine on an event loop of its own thread, as a ``.map()`` wait does."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(make: Callable[[], Awaitable[None]]) -> asyncio.Future[None]:
        async def main() -> None:
            await make()

        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(main(), loop))

    yield run
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


async def flush_and_mark(display: TableDisplay, log: list[Any], began: asyncio.Event) -> None:
    began.set()
    await display.flush()
    log.append(RETURNED)


async def test_a_final_flush_on_another_loop_returns_only_once_the_board_shows_its_rows(
    other_loop: Callable[[Callable[[], Awaitable[None]]], asyncio.Future[None]],
) -> None:
    sends = Sends()
    board = JobBoard("run-1", send=sends)
    board.update(JOB_A, snapshot(JOB_A, JobStatus.RUNNING))
    board.update(JOB_B, snapshot(JOB_B, JobStatus.RUNNING))
    # Wait A, on its own loop, writes the board; the Prefect API is slow to answer.
    first = other_loop(board.display.flush)
    await asyncio.to_thread(sends.started.wait)

    # Meanwhile wait B's job ends, and wait B makes its final flush.
    board.update(JOB_B, snapshot(JOB_B, JobStatus.DONE))
    began = asyncio.Event()
    final = asyncio.ensure_future(flush_and_mark(board.display, sends.log, began))
    await began.wait()
    sends.release.set()
    await asyncio.gather(first, final)

    assert sends.log[-1] == RETURNED, "the final flush returned before its rows were sent"
    assert statuses(sends.rows[-1]) == {JOB_A.job_id: "RUNNING", JOB_B.job_id: "DONE"}
    assert sends.max_in_flight == 1
    assert not board.display.dirty


async def test_a_final_flush_writes_its_rows_itself_when_the_write_under_way_is_cancelled() -> None:
    sends = Sends()
    job = OneJob(JobStatus.RUNNING)
    display = job.display(sends)
    # A status write under way when the wait is cancelled (its flow run is cancelled).
    first = asyncio.ensure_future(display.flush())
    await asyncio.to_thread(sends.started.wait)

    job.status = JobStatus.CANCELLED
    display.changed()
    began = asyncio.Event()
    final = asyncio.ensure_future(flush_and_mark(display, sends.log, began))
    await began.wait()
    first.cancel()
    await final
    sends.release.set()
    with pytest.raises(asyncio.CancelledError):
        await first

    assert sends.log[-1] == RETURNED
    assert statuses(sends.rows[-1]) == {"a": "CANCELLED"}
    assert not display.dirty


async def test_an_intermediate_update_is_deferred_by_the_rate_limit_not_dropped() -> None:
    sends = Sends(hold_first=False)
    clock = Clock()
    job = OneJob(JobStatus.QUEUED)
    display = job.display(sends, clock)
    await display.refresh()  # the first write is always due
    job.status = JobStatus.RUNNING
    display.changed()
    clock.now += ARTIFACT_MIN_INTERVAL / 2
    await display.refresh()

    assert [statuses(rows) for rows in sends.rows] == [{"a": "QUEUED"}]
    assert display.dirty, "the change not yet written must stay pending for the next flush"

    clock.now += ARTIFACT_MIN_INTERVAL / 2
    await display.refresh()
    assert [statuses(rows) for rows in sends.rows] == [{"a": "QUEUED"}, {"a": "RUNNING"}]
    assert not display.dirty


async def test_a_flush_ignores_the_rate_limit() -> None:
    sends = Sends(hold_first=False)
    clock = Clock()
    job = OneJob(JobStatus.RUNNING)
    display = job.display(sends, clock)
    await display.refresh()
    job.status = JobStatus.DONE
    display.changed()
    await display.flush()

    assert [statuses(rows) for rows in sends.rows] == [{"a": "RUNNING"}, {"a": "DONE"}]


async def test_a_failed_write_leaves_its_rows_pending_and_the_next_flush_sends_them() -> None:
    sends = Sends(hold_first=False)
    sends.failures = 1
    display = OneJob(JobStatus.DONE).display(sends)
    await display.flush()
    assert display.dirty

    await display.flush()
    assert len(sends.rows) == 2
    assert not display.dirty


def test_a_board_a_wait_still_holds_is_never_replaced_by_a_new_one() -> None:
    board = JobBoard.of("run-held")
    for number in range(JobBoard.KEEP + 1):
        JobBoard.of(f"run-{number}-after")

    assert JobBoard.of("run-held") is board
