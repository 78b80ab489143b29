"""Switching a test process between Prefect servers without losing its events.

Prefect keeps one events worker per process, bound to the API URL current when the first event
was emitted, and it does not follow later settings changes. Task runs are recorded from events, so
after the e2e suite (its own server) emitted one, a later suite's task runs went to the e2e server
and never appeared on the harness server. Each switch therefore drains the worker, and the next
event starts one bound to the server now in force.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.events.worker import EventsWorker
from prefect.settings import temporary_settings

DRAIN_SECONDS = 10.0


def forget_events_worker() -> None:
    """Send what the process's events worker holds, then drop it.

    Inside a running event loop Prefect hands back the wait as a coroutine; the drain has begun
    either way, and blocking the loop on it would stall the test, so it is not awaited there.
    """
    waiting = EventsWorker.drain_all(timeout=DRAIN_SECONDS)
    if inspect.iscoroutine(waiting):
        waiting.close()


@contextmanager
def talking_to(settings: dict[Any, Any]) -> Iterator[None]:
    """Point the process's Prefect settings, events included, at another server for the block."""
    forget_events_worker()
    with temporary_settings(updates=settings):
        try:
            yield
        finally:
            forget_events_worker()
