"""Submits held back by a cap wait without a thread each, and leave the flow's task runner free.

Prefect's thread-pool runner runs every ``.submit()``/``.map()`` task on a thread of its own for
the task's whole run. A submit waiting for room below an in-flight cap would hold that thread: a
hundred mapped submits, a hundred threads (the flow's default runner has no bound), or, under a
bounded runner, every worker, so that the flow's other tasks never start. The package runs its
submit tasks on a small pool of its own (``calls``), where waiting submits queue without a thread.

The held emulator keeps jobs queued until the test releases them, so the submits are seen waiting.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_qiskit_jobs import IBMQuantumCredentials, JobRef, submit_sampler_job
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import GUARD, OPTIONS, SMALL_BACKEND, run_log_event, until

CAP = 10
MAPPED = 100  # the 1,000 of the issue is measured by benchmarks/submit_threads.py
# A few dozen: the flow's own threads (Prefect's log, event and API workers, the test's loop) and
# the package's submit pool. Without that pool every waiting submit held a thread (over 100).
FEW_DOZEN = 48
STARVING = 30  # more than the bounded runner's workers plus the cap: enough to take every worker
WORKERS = 8


def capped(emulator: RunningEmulator) -> IBMQuantumCredentials:
    return IBMQuantumCredentials.for_emulator(emulator).model_copy(update={"max_jobs_in_flight": CAP})


async def the_cap_filled_and_submits_waiting(held: RunningEmulator) -> None:
    with run_log_event(rf"^Waiting: {CAP} of cap {CAP}") as waiting:
        await until(lambda: held.stats()["pending"] == CAP, "the cap filled")
        await waiting.wait()


def posted(held: RunningEmulator) -> int:
    return int(held.stats()["routes"].get("POST /jobs", 0))


async def release_until_posted(held: RunningEmulator, jobs: int) -> None:
    """Let every queued job run, again and again, until ``jobs`` jobs were created.

    The guard of ``until`` is for each new job, not for all of them: on a busy machine the whole
    run takes longer than one guard, and a flow that failed here would wait at its end for its
    submits, held at the cap.
    """
    while (created := posted(held)) < jobs:

        def more(created: int = created) -> bool:
            held.release()
            return posted(held) > created

        await until(more, f"job {created + 1} of {jobs} created")


@task
def add_one(number: int) -> int:
    return number + 1


async def test_a_hundred_capped_mapped_submits_hold_a_few_dozen_threads_and_each_makes_one_job(
    held: RunningEmulator, bell_isa: Any
) -> None:
    credentials = capped(held)
    threads_while_waiting: list[int] = []

    @flow
    async def many_jobs() -> list[JobRef]:
        futures = submit_sampler_job.map(
            [[bell_isa]] * MAPPED, backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
        )
        await the_cap_filled_and_submits_waiting(held)
        threads_while_waiting.append(threading.active_count())
        await release_until_posted(held, MAPPED)
        jobs: list[JobRef] = await anyio.to_thread.run_sync(futures.result)
        return jobs

    jobs = await many_jobs()

    assert threads_while_waiting[0] <= FEW_DOZEN, threads_while_waiting
    assert len({job.job_id for job in jobs}) == MAPPED
    stats = held.stats()
    assert stats["routes"]["POST /jobs"] == MAPPED
    assert stats["peak_pending"] == CAP


async def test_a_bounded_runners_other_task_completes_while_capped_submits_wait(
    held: RunningEmulator, bell_isa: Any
) -> None:
    credentials = capped(held)
    other_state: list[Any] = []
    created_meanwhile: list[int] = []

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
    async def jobs_and_another_task() -> list[JobRef]:
        futures = submit_sampler_job.map(
            [[bell_isa]] * STARVING, backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
        )
        await the_cap_filled_and_submits_waiting(held)
        other = add_one.submit(1)
        await anyio.to_thread.run_sync(other.wait, GUARD)  # the guard is only reached by the defect
        other_state.append(other.state)
        created_meanwhile.append(held.stats()["routes"]["POST /jobs"])
        await release_until_posted(held, STARVING)
        jobs: list[JobRef] = await anyio.to_thread.run_sync(futures.result)
        return jobs

    jobs = await jobs_and_another_task()

    assert other_state[0].is_completed(), other_state
    assert await other_state[0].aresult() == 2
    # The other task ran while the submits were held back: none had got past the cap.
    assert created_meanwhile == [CAP]
    assert len({job.job_id for job in jobs}) == STARVING
    stats = held.stats()
    assert stats["routes"]["POST /jobs"] == STARVING
    assert stats["peak_pending"] == CAP


def test_a_flow_that_does_not_wait_for_its_submits_still_ends_after_them(
    emulator: RunningEmulator, bell_isa: Any
) -> None:
    """More submits than the package's pool has threads, none awaited: the flow run waits for all,
    as Prefect's runner waits for the tasks it runs."""
    submits = 40

    @flow
    def fire_and_forget() -> None:
        submit_sampler_job.map([[bell_isa]] * submits, backend=SMALL_BACKEND, options=OPTIONS)

    fire_and_forget()

    assert emulator.stats()["routes"]["POST /jobs"] == submits
