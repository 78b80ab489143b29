"""Client calls made from a short stack: the client walks the caller's whole stack on every request.

qiskit-ibm-runtime's session calls ``inspect.stack()`` on each request, to name the calling library
in its usage header (unless ``QISKIT_IBM_RUNTIME_USAGE_DATA_OPT_OUT`` is set, the user's choice).
That reads every frame's source context, and for a frame of no module file (``<frozen runpy>``
under ``python -m``, as Prefect workers start flow runs) it scans all of ``sys.modules``. Called
from a task body inside Prefect's engine the walk cost 10 to 60 ms per request (measured on a
2-core machine); from a new thread, whose stack is a few frames, well under 1 ms. The header is
the same either way: the frames of the client's own primitive are on the new thread's stack too.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextvars import copy_context
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

# A caller this many frames deep or less calls the client where it is (watcher, worker threads);
# never the main thread, whose first frames may be ``<frozen runpy>``.
SHORT_STACK = 16


def _depth(limit: int) -> int:
    frame: FrameType | None = sys._getframe(2)
    depth = 0
    while frame is not None and depth <= limit:
        frame, depth = frame.f_back, depth + 1
    return depth


def call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a new thread (in a copy of this context) when this stack is deep; blocking."""
    if threading.current_thread() is not threading.main_thread() and _depth(SHORT_STACK) <= SHORT_STACK:
        return fn(*args)
    outcome: list[Any] = []
    context = copy_context()

    def run() -> None:
        try:
            outcome.append((True, context.run(fn, *args)))
        except BaseException as exc:  # handed to the caller, raised there
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="qiskit-client-call", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
