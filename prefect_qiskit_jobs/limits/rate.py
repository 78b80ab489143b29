"""IBM's job-creation rate limit, kept by every process that uses the same account.

IBM Quantum Platform lets a user create a few jobs a minute (5 per 60 s, documented); beyond
that ``POST /jobs`` answers 429, which the client does not retry. Every process submitting with
one account therefore shares one Prefect global concurrency limit, created on first use and named
``ibm-quantum-job-creation-<digest of the account>`` (never the key), with one slot per job of the
window:

- a creation takes a slot with a lease before its POST, and gives it back one window (times 1.02,
  plus 0.25 s) *after* IBM answered, from one daemon thread per process (``Releaser``) that releases
  due leases in order. A burst of N goes at once, as IBM allows. Once IBM answered, the lease is cut
  to end with the window (Prefect's shortest lease is 60 s), so the slots of a process that exits or
  dies within a window come back when it ends, at the server's next pass over expired leases;
- a POST answered 429 created no job: its slot is given back at once and the POST re-sent within
  the same submit after ``Retry-After`` (or a jittered backoff). Any other failure keeps the slot:
  the job may exist.

Why not Prefect's ``rate_limit`` mode (slot decay)? Measured at only 67% of the allowed rate: a
decaying limit's clock restarts on every update of the limit, refusals included, and its decay is
floored to whole slots, so under contention slots come back late. A lease released one window
after each creation is exact.

Only a Prefect server (``PREFECT_API_URL``) shares the limit (``shared_limits`` says why). Without
one each process keeps the limit alone, as it does where the concurrency API errors or cannot be
reached (logged once); IBM's 429s past it are then re-sent as above.

A 429 is re-sent whatever the configuration: with no limit (``off``, or ``jobs_per_window=None``)
the POST goes out unpaced, and a 429 is re-sent the same way (``resend_refused``, the one
implementation both paths use). The re-sending is bounded: once a submit's waits on 429s would
pass ``RESEND_WINDOWS`` windows, the 429 is raised (to the task's retries, which adopt by tag).

Settings: ``IBMQuantumCredentials.jobs_per_window`` (default IBM's 5; None: no limit) and
``rate_window_seconds`` (60, also the backoff's cap and the unit of the re-sending's bound);
``PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT=5/60`` (or ``off``) overrides both. An emulator's printed
environment carries its own limit (``off`` when it has none).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from prefect.logging import get_logger

from prefect_qiskit_jobs.errors import ConfigurationError, IQPUnavailableError
from prefect_qiskit_jobs.limits.slots import (
    LocalSlots,
    PrefectSlots,
    SlotPool,
    SlotsUnavailable,
    account_limit_name,
    prefect_server_configured,
)
from prefect_qiskit_jobs.models import Backoff
from prefect_qiskit_jobs.settings import Settings

if TYPE_CHECKING:
    from prefect_qiskit_jobs.blocks import IBMQuantumCredentials

T = TypeVar("T")
Log = Callable[[str], None]

JOB_RATE_LIMIT_ENV = Settings.variables()["job_rate_limit"]
LIMIT_PREFIX = "ibm-quantum-job-creation-"
# A slot comes back this much later than IBM's window: clocks and request times differ a little.
WINDOW_FACTOR, WINDOW_MARGIN = 1.02, 0.25
# Seconds between asks for a slot while all are taken (one asker per process), jittered.
POLL_SECONDS = 0.3
# A lease outlives its hold by this much, for a slow POST (the client re-sends on 5xx).
LEASE_SLACK_SECONDS = 180.0
# A submit re-sends a refused (429) POST while its waits on refusals stay within this many windows;
# past them the 429 is raised (to the task's retries).
RESEND_WINDOWS = 5
_OFF = re.compile(r"\s*(off|none|0)\s*", re.IGNORECASE)
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")
_logger = get_logger("prefect_qiskit_jobs.limits.rate")
_rng = random.Random()  # the backoff's jitter


@dataclass(frozen=True)
class CreationRate:
    """At most ``jobs`` job creations per rolling ``window_seconds``."""

    jobs: int
    window_seconds: float

    @classmethod
    def parse(cls, text: str) -> CreationRate | None:
        """``"5/60"``: 5 jobs per 60 s; ``"off"``: no limit (None).

        Example:
            >>> CreationRate.parse("5/60"), CreationRate.parse("off")
            (CreationRate(jobs=5, window_seconds=60.0), None)
        """
        if _OFF.fullmatch(text):
            return None
        match = _RATE.fullmatch(text)
        if match is None or int(match[1]) < 1 or float(match[2]) <= 0:
            raise ConfigurationError(
                f"{JOB_RATE_LIMIT_ENV}={text!r} is not JOBS/SECONDS (e.g. 5/60) or 'off'"
            )
        return cls(int(match[1]), float(match[2]))

    @property
    def hold_seconds(self) -> float:
        """How long after IBM's answer a creation's slot stays taken."""
        return self.window_seconds * WINDOW_FACTOR + WINDOW_MARGIN


def rate_for(credentials: IBMQuantumCredentials) -> CreationRate | None:
    """The limit that applies to ``credentials``: the environment's, else the block's."""
    text = Settings.read().job_rate_limit
    if text is not None:
        return CreationRate.parse(text)
    if credentials.jobs_per_window is None:
        return None
    return CreationRate(credentials.jobs_per_window, credentials.rate_window_seconds)


def limit_name(credentials: IBMQuantumCredentials) -> str:
    """The Prefect limit's name: a digest of the account, from which the key cannot be read."""
    return account_limit_name(LIMIT_PREFIX, credentials)


class Releaser:
    """Gives slots back when they come due, in due order; one daemon thread per process.

    ``run_due(now)`` is the whole decision and does nothing else, so tests drive it with a clock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._due: list[tuple[float, int, SlotPool, object]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._released = threading.Condition()  # notified after each slot given back
        self._thread: threading.Thread | None = None

    def schedule(self, due: float, pool: SlotPool, slot: object, start: bool = True) -> None:
        with self._changed:
            heapq.heappush(self._due, (due, next(self._order), pool, slot))
            self._changed.notify()
            if start and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ibm-job-rate-releaser", daemon=True)
                self._thread.start()

    def next_due(self) -> float | None:
        with self._changed:
            return self._due[0][0] if self._due else None

    def run_due(self, now: float) -> int:
        """Give back every slot due by ``now``, oldest first; how many."""
        released = 0
        while True:
            with self._changed:
                if not self._due or self._due[0][0] > now:
                    return released
                _due, _, pool, slot = heapq.heappop(self._due)
            pool.give_back(slot)
            released += 1
            with self._released:
                self._released.notify_all()

    def wait_for_release(self, timeout: float) -> None:
        """Block until this releaser gives a slot back, or ``timeout`` seconds pass."""
        with self._released:
            self._released.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                wait = self._due[0][0] - self.clock() if self._due else None
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                    continue
            self.run_due(self.clock())


class JobCreationThrottle:
    """Wraps each job-creating POST: a slot before it, given back a window after IBM's answer."""

    def __init__(
        self,
        rate: CreationRate,
        pool: SlotPool,
        releaser: Releaser,
        *,
        sleep: Callable[[float], None] = time.sleep,
        wait_for_slot: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rate, self.pool, self.releaser = rate, pool, releaser
        self._sleep, self._rng = sleep, rng or random.Random()
        # A taker waiting for a slot wakes as soon as this process gives one back.
        self._wait_for_slot = wait_for_slot or releaser.wait_for_release
        self._taking = threading.Lock()  # one asker per process: waiters do not poll Prefect each

    def create(self, post: Callable[[], T], log: Log) -> T:
        """``post()`` within the limit; a 429 is given its slot back and re-sent here, not by retries."""
        send = functools.partial(self._post_with_slot, post)
        return resend_refused(send, log, self.rate.window_seconds, sleep=self._sleep, rng=self._rng)

    def _post_with_slot(self, post: Callable[[], T]) -> T:
        pool, slot = self._take()
        try:
            result = post()
        except BaseException as exc:
            if isinstance(exc, IQPUnavailableError) and exc.status_code == 429:
                pool.give_back(slot)  # a 429 created nothing
            else:
                self._hold(pool, slot)  # the job may exist: its slot stays taken
            raise
        self._hold(pool, slot)
        return result

    def _hold(self, pool: SlotPool, slot: object) -> None:
        pool.keep(slot, self.rate.hold_seconds)
        self.releaser.schedule(self.releaser.clock() + self.rate.hold_seconds, pool, slot)

    def _take(self) -> tuple[SlotPool, object]:
        with self._taking:
            while True:
                pool = self.pool
                try:
                    slot = pool.try_take()
                except SlotsUnavailable as exc:
                    _logger.warning(
                        "The Prefect API cannot hold IBM's job creation limit (%s); this process "
                        "keeps it alone from now on (other processes with the account are not counted)",
                        exc,
                    )
                    self.pool = LocalSlots(self.rate.jobs)
                    continue
                if slot is not None:
                    return pool, slot
                self._wait_for_slot(self._wait(pool))

    def _wait(self, pool: SlotPool) -> float:
        """The longest wait for a slot: the next ask of shared slots (another process may free one);
        else until this process's next slot comes due (its release wakes the wait sooner)."""
        poll = POLL_SECONDS * (0.5 + self._rng.random())
        due = self.releaser.next_due()
        if due is None:
            return poll
        return poll if pool.shared else max(0.0, due - self.releaser.clock())


_releaser = Releaser()
_throttles: dict[tuple[str, CreationRate], JobCreationThrottle] = {}
_throttles_lock = threading.Lock()


def throttle_for(credentials: IBMQuantumCredentials) -> JobCreationThrottle | None:
    """This process's throttle for the account, made on first use; None when no limit applies."""
    rate = rate_for(credentials)
    if rate is None:
        return None
    key = (limit_name(credentials), rate)
    with _throttles_lock:
        throttle = _throttles.get(key)
        if throttle is None:
            pool: SlotPool
            if not prefect_server_configured():
                _logger.info(
                    "No Prefect server (PREFECT_API_URL) to share IBM's job creation limit; "
                    "this process keeps it alone"
                )
                pool = LocalSlots(rate.jobs)
            else:
                try:
                    pool = PrefectSlots(key[0], rate.jobs, rate.hold_seconds + LEASE_SLACK_SECONDS)
                except Exception as exc:
                    _logger.warning(
                        "No Prefect API to hold IBM's job creation limit (%s); this process keeps it alone",
                        type(exc).__name__,
                    )
                    pool = LocalSlots(rate.jobs)
            throttle = _throttles[key] = JobCreationThrottle(rate, pool, _releaser)
        return throttle


def resend_refused(
    send: Callable[[], T],
    log: Log,
    window_seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    refused: str = "the job (429, job creation rate limit)",
    idempotent: bool = False,
) -> T:
    """``send()``, sent again while IBM refuses it with 429 (which did nothing), within the call.

    Job creation uses it, and so do cancels (``refused`` names the request in the log line).
    ``idempotent``: ``send`` changes nothing on IBM (a read, a listing, a backend lookup), so every
    transient failure (``IQPUnavailableError``: 429, a 5xx past the client's own retries, a dropped
    connection, a timeout) is sent again, not only a 429.

    Each re-send waits IBM's ``Retry-After`` (when above 0), else a jittered backoff (1 s doubling up to the
    window). Once the next wait would take this call's waits past ``RESEND_WINDOWS`` windows,
    the error is raised. Any other failure is raised at once: the job may exist.
    """
    backoff = Backoff(initial=1.0, multiplier=2.0, cap=window_seconds, jitter=0.25)
    budget, waited = RESEND_WINDOWS * window_seconds, 0.0
    for refusals in itertools.count():
        try:
            return send()
        except IQPUnavailableError as exc:
            if exc.status_code != 429 and not idempotent:
                raise
            told = exc.retry_after
            # Retry-After 0 (or none, or nonsense) waits the backoff: every re-send counts to the bound.
            delay = told if told is not None and told > 0 else backoff.delay(refusals, rng or _rng)
            if waited + delay > budget:
                raise
            said = f"IBM refused {refused}" if exc.status_code == 429 else str(exc)
            log(f"{said}; sending it again in {delay:.1f} s")
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")


def create_job(
    credentials: IBMQuantumCredentials,
    post: Callable[[], T],
    log: Log,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """``post()`` (a job-creating request) within the account's job creation limit, if any; a 429 is
    re-sent within the submit either way (``sleep`` and ``rng`` serve the unlimited path, for tests).
    """
    throttle = throttle_for(credentials)
    if throttle is not None:
        return throttle.create(post, log)
    return resend_refused(post, log, credentials.rate_window_seconds, sleep=sleep, rng=rng)
