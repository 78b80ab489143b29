"""A cap on the jobs pending on IBM at once: a submit posts only while fewer are queued or running.

The cap counts IBM's own record, not slots held by this package: right before each POST the
submit asks IBM how many jobs of the cap's scope are pending (one listing of one job, reading its
``count``), and posts only below the cap. So a job counts from its creation until it is final,
whoever submitted it (detached jobs, other processes, a person with the same tags), and nothing
leaks when a submitting process dies: its jobs stop counting as they end.

Two scopes, each off by default (and then a submit makes no extra request):

- ``IBMQuantumCredentials(max_jobs_in_flight=N)`` caps every job of the instance;
- ``PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT=N`` in the environment caps the jobs of the current
  deployment (every job a deployment's run submits carries ``prefect-deployment:<id>``), or, in a
  flow run of no deployment, that flow run's jobs (outside any flow run: this process's jobs).

Count-then-post is made atomic across processes by a one-slot Prefect global concurrency limit
per scope, ``ibm-quantum-in-flight-<digest>`` (a digest of the instance and the scope, never a
secret), held with a lease, so the slot of a holder that dies returns when the lease runs out,
and released as soon as the POST has answered (only with a Prefect server: ``shared_limits``
says why; without one each process counts alone). Within a process one submit per scope counts at a
time; the others wait behind it on a lock, without requests. At the cap the counting submit lets
the slot go, pauses (0.5 s growing 1.5 times up to 20 s, with jitter) and counts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from prefect_qiskit_jobs.blocks import IBMQuantumCredentials
from prefect_qiskit_jobs.ibm.tags import DEPLOYMENT_PREFIX, FLOW_RUN_PREFIX, PROCESS_PREFIX, value_of
from prefect_qiskit_jobs.limits.slots import held_alone_sync, held_in_process, prefect_server_configured
from prefect_qiskit_jobs.models import Backoff
from prefect_qiskit_jobs.settings import Settings

if TYPE_CHECKING:
    from prefect_qiskit_jobs.ibm.gateway import IQPGateway

MAX_IN_FLIGHT_VARIABLE = Settings.variables()["max_in_flight"]
LIMIT_PREFIX = "ibm-quantum-in-flight-"

Log = Callable[[str], None]


@dataclass(frozen=True)
class InFlightScope:
    """One cap: at most ``cap`` pending jobs carrying all ``tags`` (none: every job of the instance)."""

    cap: int
    tags: tuple[str, ...]
    label: str

    def limit_name(self, credentials: IBMQuantumCredentials) -> str:
        """The Prefect global concurrency limit that makes this scope's count-then-post atomic.

        Made from the instance (not the API key: two keys of one instance see the same count) and
        the scope's tags, through a digest, so no name, tag or secret shows in it.
        """
        parts = [credentials.url, credentials.channel, credentials.instance, *self.tags]
        return LIMIT_PREFIX + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def scopes_for(
    credentials: IBMQuantumCredentials, job_tags: Sequence[str], environ: Mapping[str, str] | None = None
) -> list[InFlightScope]:
    """The caps a new job with ``job_tags`` must stay under; empty when none is set."""
    scopes = []
    if credentials.max_jobs_in_flight is not None:
        scopes.append(InFlightScope(credentials.max_jobs_in_flight, (), "the instance"))
    cap = env_cap(os.environ if environ is None else environ)
    if cap is not None:
        for prefix, label in (
            (DEPLOYMENT_PREFIX, "deployment"),
            (FLOW_RUN_PREFIX, "flow run"),
            (PROCESS_PREFIX, "process"),
        ):
            value = value_of(list(job_tags), prefix)
            if value is not None:
                scopes.append(InFlightScope(cap, (f"{prefix}{value}",), f"{label} {value}"))
                break
    return scopes


def env_cap(environ: Mapping[str, str]) -> int | None:
    """The cap ``PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT`` sets, or None when it is unset or empty."""
    return Settings.read(environ).max_in_flight


# The pause between counts at the cap: 0.5 s growing 1.5 times up to 20 s, jittered.
AT_CAP_BACKOFF = Backoff(initial=0.5, multiplier=1.5, cap=20.0, jitter=0.1)

Hold = Callable[[list[str]], contextlib.AbstractContextManager[object]]
"""Takes the named one-slot limits at once, for the ``with`` block."""

_process_locks: dict[tuple[str, ...], threading.Lock] = {}
_process_locks_lock = threading.Lock()


def _process_lock(names: tuple[str, ...]) -> threading.Lock:
    with _process_locks_lock:
        return _process_locks.setdefault(names, threading.Lock())


_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _loop_lock(names: tuple[str, ...]) -> asyncio.Lock:
    """The scopes' lock in the running event loop (an asyncio lock serves one loop only)."""
    with _process_locks_lock:
        return _loop_locks.setdefault(asyncio.get_running_loop(), {}).setdefault(names, asyncio.Lock())


@dataclass
class InFlightGate:
    """Lets a POST through only below every cap; the I/O (count, hold, sleep) is injected.

    ``count(scope)`` asks IBM how many jobs of the scope are pending; ``hold(names)`` takes the
    scopes' global limits (across processes) for the count and the POST.
    """

    credentials: IBMQuantumCredentials
    count: Callable[[InFlightScope], int]
    hold: Hold
    log: Log
    backoff: Backoff = AT_CAP_BACKOFF
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    @contextlib.contextmanager
    def admission(self, scopes: Sequence[InFlightScope]) -> Iterator[None]:
        """Wait until every scope is below its cap, then hold the scopes' limits for the ``with`` body."""
        if not scopes:
            yield
            return
        names = self._names(scopes)
        attempt = 0
        with _process_lock(names):
            while True:
                with self.hold(list(names)):
                    full = self._full(scopes)
                    if full is None:
                        yield
                        return
                if attempt == 0:
                    self._log_waiting(*full)
                self.sleep(self.backoff.delay(attempt, self.rng))
                attempt += 1

    @contextlib.asynccontextmanager
    async def room(self, scopes: Sequence[InFlightScope]) -> AsyncIterator[None]:
        """Wait on the event loop until every scope is below its cap; for the ``async with`` body,
        the only submit of these scopes in this loop going on to ``admission``.

        The others wait here, on an asyncio lock or a sleep, so an async flow's many held-back
        submits keep no thread each; ``admission`` counts again under the cross-process hold.
        """
        async with _loop_lock(self._names(scopes)):
            attempt = 0
            while (full := await anyio.to_thread.run_sync(self._full, scopes)) is not None:
                if attempt == 0:
                    self._log_waiting(*full)
                await anyio.sleep(self.backoff.delay(attempt, self.rng))
                attempt += 1
            yield

    def _names(self, scopes: Sequence[InFlightScope]) -> tuple[str, ...]:
        return tuple(sorted({scope.limit_name(self.credentials) for scope in scopes}))

    def _log_waiting(self, scope: InFlightScope, pending: int) -> None:
        self.log(
            f"Waiting: {pending} of cap {scope.cap} jobs pending on IBM ({scope.label}); "
            "the job is submitted when one of them ends"
        )

    def _full(self, scopes: Sequence[InFlightScope]) -> tuple[InFlightScope, int] | None:
        for scope in scopes:
            pending = self.count(scope)
            if pending >= scope.cap:
                return scope, pending
        return None


def _gate(gateway: IQPGateway, log: Log) -> InFlightGate:
    return InFlightGate(
        gateway.credentials,
        count=lambda scope: gateway.count_pending(list(scope.tags)),
        hold=held_alone_sync if prefect_server_configured() else held_in_process,
        log=log,
    )


def admission(
    gateway: IQPGateway, job_tags: Sequence[str], log: Log
) -> contextlib.AbstractContextManager[None]:
    """The gate a POST of a job tagged ``job_tags`` passes; without caps it does nothing at all."""
    scopes = scopes_for(gateway.credentials, job_tags)
    if not scopes:
        return contextlib.nullcontext()
    return _gate(gateway, log).admission(scopes)


def room(
    gateway: IQPGateway, job_tags: Sequence[str], log: Log
) -> contextlib.AbstractAsyncContextManager[None]:
    """An async submit's wait for room below the caps, before its threaded ``admission``."""
    scopes = scopes_for(gateway.credentials, job_tags)
    if not scopes:
        return contextlib.nullcontext()
    return _gate(gateway, log).room(scopes)
