"""How many times the client sent a request: read from urllib3's own retry record of its answer.

The client's session re-sends a POST answered 5xx (IBM says that is safe; the emulator, as IBM can,
sometimes creates the job anyway), and urllib3 re-sends any request whose connection failed. Each
re-send is one entry in the ``Retry.history`` that urllib3 hands the final answer
(``HTTPResponse.retries``, public in urllib3), which ``requests`` exposes as ``Response.raw``. A
``requests`` response hook (public too) reads it. So a submit knows when its POST went out exactly
once and was answered: then IBM made exactly one job, and no listing is needed to find copies.

The hook is installed once per session and reports to the ``Sends`` open in the calling context
(a context variable: the client may be called on another thread, in a copy of the context).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests

_open: ContextVar[Sends | None] = ContextVar("prefect_qiskit_jobs_open_sends", default=None)
_HOOKED = "_prefect_qiskit_jobs_counts_sends"


@dataclass
class Sends:
    """The requests one block of code made with a method, and how many of them were re-sent."""

    method: str
    answered: int = 0
    resent: int = 0

    @property
    def once(self) -> bool:
        """One request, answered, never re-sent: what IBM received is exactly what was asked once."""
        return self.answered == 1 and self.resent == 0


def _record(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
    sends = _open.get()
    if sends is None or response.request.method != sends.method:
        return response
    sends.answered += 1
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", None)
    # No record (a transport that keeps none) is counted as a re-send: then the caller looks.
    sends.resent += len(history) if history is not None else 1
    return response


def hook(session: requests.Session) -> None:
    """Make ``session`` report its answers to the ``Sends`` open in the calling thread (once)."""
    if not getattr(session, _HOOKED, False):
        session.hooks.setdefault("response", []).append(_record)
        setattr(session, _HOOKED, True)


@contextlib.contextmanager
def counting(method: str) -> Iterator[Sends]:
    """Count the ``method`` requests sent through hooked sessions inside the block, in this context."""
    sends = Sends(method.upper())
    token = _open.set(sends)
    try:
        yield sends
    finally:
        _open.reset(token)
