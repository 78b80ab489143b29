"""The async paths never block the event loop, in the spirit of anyio's blocking-call checks.

While a check is on, every blocking socket operation, ``time.sleep`` and ``Thread.join`` that this
package (or this test's flow code) makes from a thread running an event loop is recorded (a join:
the package makes some client calls on a short-lived thread, and waiting for it blocks the loop
as the socket would). asyncio's own
sockets are non-blocking (timeout 0); the IBM client's ``requests`` sockets and Prefect's sync
calls block. The async paths run in an async flow with a saved block's name, and the check must
stay empty; a control shows that it does catch the sync submit called from the same flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    afetch_job_result,
    afetch_job_results,
    aget_backend,
    arun_sampler,
    asubmit_sampler_job,
    asubmit_sampler_jobs,
    await_for_job,
    await_for_jobs,
    submit_sampler_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND, assert_bell, counts_of

SOCKET_CALLS = ("connect", "connect_ex", "send", "sendall", "sendto", "recv", "recv_into", "recvfrom")
BLOCK_NAME = "ibm-quantum-loop-check"


FLOW_BODIES = {"every_async_path", "blocks_its_loop"}


def _ours(frame: traceback.FrameSummary) -> bool:
    """A frame of the package, or of a flow body below (not of the test calling the flow)."""
    return "/prefect_qiskit_jobs/" in frame.filename or (
        frame.filename == __file__ and frame.name in FLOW_BODIES
    )


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def blocking_calls_on_event_loops() -> Iterator[list[str]]:
    """Record (as short stack summaries) every blocking call made from a thread running a loop."""
    seen: list[str] = []

    def record(what: str) -> None:
        stack = traceback.extract_stack()[:-2]
        # Only calls made by this package or this test count: Prefect's own engine persists a
        # flow's result through its sync client, which is Prefect's to fix, not this package's.
        if not any(_ours(frame) for frame in stack):
            return
        ours = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in stack if _ours(f)]
        seen.append(f"{what} from {' < '.join(reversed(ours))}")

    originals: dict[str, Any] = {name: getattr(socket.socket, name) for name in SOCKET_CALLS}
    original_sleep = time.sleep
    original_join = threading.Thread.join

    def guarded(name: str) -> Any:
        original = originals[name]

        def call(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if self.gettimeout() != 0.0 and _on_a_loop():
                record(f"socket.{name}")
            return original(self, *args, **kwargs)

        return call

    def sleep(seconds: float) -> None:
        if seconds > 0 and _on_a_loop():
            record(f"time.sleep({seconds})")
        original_sleep(seconds)

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        if _on_a_loop():
            record(f"Thread.join({self.name})")
        original_join(self, timeout)

    for name in SOCKET_CALLS:
        setattr(socket.socket, name, guarded(name))
    time.sleep = sleep
    threading.Thread.join = join  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        for name, original in originals.items():
            setattr(socket.socket, name, original)
        time.sleep = original_sleep
        threading.Thread.join = original_join  # type: ignore[method-assign]


@pytest.fixture
async def saved_block(emulator: RunningEmulator) -> str:
    await IBMQuantumCredentials.for_emulator(emulator).save(BLOCK_NAME, overwrite=True)
    return BLOCK_NAME


async def test_the_async_paths_never_block_the_event_loop(saved_block: str, bell_isa: QuantumCircuit) -> None:
    @flow
    async def every_async_path() -> list[dict[str, int]]:
        backend = await aget_backend(SMALL_BACKEND, credentials=saved_block)
        assert backend.num_qubits == 5
        one = await asubmit_sampler_job(
            [bell_isa], backend=SMALL_BACKEND, credentials=saved_block, options=OPTIONS
        )
        many = await asubmit_sampler_jobs(
            [bell_isa, bell_isa],
            backend=SMALL_BACKEND,
            max_pubs_per_job=1,
            credentials=saved_block,
            options=OPTIONS,
        )
        await await_for_job(one, credentials=saved_block, poll=FAST_POLL)
        await await_for_jobs(many, credentials=saved_block, poll=FAST_POLL)
        results = [await afetch_job_result(one, credentials=saved_block)]
        results += await afetch_job_results(many, credentials=saved_block)
        results.append(
            await arun_sampler(
                [bell_isa], backend=SMALL_BACKEND, credentials=saved_block, options=OPTIONS, poll=FAST_POLL
            )
        )
        return [counts_of(result) for result in results]

    with blocking_calls_on_event_loops() as blocking:
        counts = await every_async_path()

    assert blocking == []
    assert len(counts) == 4
    for each in counts:
        assert_bell(each)


async def test_the_check_catches_the_sync_submit_called_from_an_async_flow(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def blocks_its_loop() -> None:
        submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)

    with blocking_calls_on_event_loops() as blocking:
        await blocks_its_loop()

    assert any(call.startswith(("socket.", "Thread.join(qiskit-client-call)")) for call in blocking), blocking
