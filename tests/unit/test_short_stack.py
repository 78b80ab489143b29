"""Client calls from the main thread or a deep stack run on a new thread, in the caller's context."""

from __future__ import annotations

import threading
from contextvars import ContextVar

import pytest

from prefect_qiskit_jobs.ibm import short_stack

_seen: ContextVar[str] = ContextVar("seen", default="unset")


def _where() -> tuple[str, str]:
    return threading.current_thread().name, _seen.get()


def test_the_main_thread_calls_on_a_new_thread_with_its_context_and_gets_errors_back() -> None:
    assert threading.current_thread() is threading.main_thread()
    token = _seen.set("caller's")
    try:
        assert short_stack.call(_where) == ("qiskit-client-call", "caller's")
    finally:
        _seen.reset(token)
    with pytest.raises(KeyError, match="raised there"):
        short_stack.call(lambda: {}["raised there"])


def test_a_worker_thread_with_a_short_stack_calls_where_it_is() -> None:
    names: list[tuple[str, str]] = []
    worker = threading.Thread(target=lambda: names.append(short_stack.call(_where)), name="short")
    worker.start()
    worker.join()
    assert names == [("short", "unset")]
