"""Prefect global concurrency limits shared between processes: the one home of the slot plumbing.

The job-creation rate (``rate``), the in-flight cap (``inflight``) and the locks of the reaper and
the resumer all hold slots here: limits are created one way (``ensure_limit``), one-slot locks
are held one way (``held_alone`` / ``held_alone_sync``), and counted slots are leased one way
(``PrefectSlots``, or ``LocalSlots`` where nothing can share them).

Processes share a limit's slots through the Prefect API, holding each under a lease so a holder
that dies gives its slot back when the lease runs out. Only a Prefect server returns expired
leases (its repossessor service, every 15 s by default): the temporary local server a process
starts when no ``PREFECT_API_URL`` is set runs no such service, and keeps its leases in memory
while the slots they hold are counted in the database that the next process opens. A lease left
by a process that ended there holds its slot for good. So without a Prefect server each process
keeps its limits alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prefect.logging import get_logger

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

    from prefect_qiskit_jobs.blocks import IBMQuantumCredentials

SHORTEST_LEASE_SECONDS = 60.0  # Prefect refuses shorter leases
_logger = get_logger("prefect_qiskit_jobs.limits.slots")


def prefect_server_configured() -> bool:
    """Whether a Prefect server is set (``PREFECT_API_URL``), rather than a temporary local one."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is not None


def account_limit_name(prefix: str, credentials: IBMQuantumCredentials) -> str:
    """A limit per IBM account, named by a digest of a digest: nothing of the key can be read back."""
    return prefix + hashlib.sha256(credentials.fingerprint().encode()).hexdigest()[:16]


@contextlib.asynccontextmanager
async def held_alone(client: PrefectClient, name: str) -> AsyncIterator[None]:
    """Hold the one slot of limit ``name``: one process at a time, across every process of a server.

    The slot is leased (and renewed while held), so a holder that dies frees it within a lease.
    Without a Prefect server there is nothing to share it through, and the process holds nothing.
    """
    from prefect.concurrency.asyncio import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    if not prefect_server_configured():
        yield
        return
    with contextlib.suppress(ObjectAlreadyExists):  # another process created it just now
        await client.upsert_global_concurrency_limit_by_name(name, 1)
    async with concurrency(name, occupy=1, lease_duration=SHORTEST_LEASE_SECONDS, strict=True):
        yield


_ensured: set[str] = set()


def ensure_limit(client: Any, name: str, slots: int) -> None:
    """Create limit ``name`` with ``slots`` slots, or set its slots if another process made it otherwise.

    ``client`` is a sync Prefect client; a race with another process creating it is harmless.
    """
    from prefect.exceptions import ObjectAlreadyExists

    with contextlib.suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, slots)


@contextlib.contextmanager
def held_alone_sync(names: list[str]) -> Iterator[None]:
    """``held_alone`` for blocking code, over several one-slot limits at once (created where missing).

    Prefect's concurrency context renews the lease while the block lasts.
    """
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    missing = [name for name in names if name not in _ensured]
    if missing:
        with get_client(sync_client=True) as client:
            for name in missing:
                ensure_limit(client, name, 1)
                _ensured.add(name)
    with concurrency(names, occupy=1, lease_duration=SHORTEST_LEASE_SECONDS, strict=True):
        yield


@contextlib.contextmanager
def held_in_process(names: list[str]) -> Iterator[None]:
    """No hold beyond the caller's own lock: without a Prefect server, each process keeps its limits."""
    yield


class SlotPool(Protocol):
    """Where the slots live: ``try_take`` a slot (None when all are taken), ``give_back`` one, and
    ``keep`` one taken for at most ``seconds`` more should this process end before giving it back.

    ``shared``: other processes take slots too, so a slot may free before this process's next due.
    """

    shared: bool

    def try_take(self) -> object | None: ...

    def keep(self, slot: object, seconds: float) -> None: ...

    def give_back(self, slot: object) -> None: ...


class SlotsUnavailable(Exception):
    """The pool cannot be asked (its Prefect API errors or is unreachable)."""


class LocalSlots:
    """N slots held in this process only: the fallback when no Prefect API can share them."""

    shared = False

    def __init__(self, jobs: int) -> None:
        self._free, self._lock = jobs, threading.Lock()

    def try_take(self) -> object | None:
        with self._lock:
            if self._free == 0:
                return None
            self._free -= 1
            return object()

    def keep(self, slot: object, seconds: float) -> None:
        """Nothing to do: this process's slots end with it."""

    def give_back(self, slot: object) -> None:
        with self._lock:
            self._free += 1


class PrefectSlots:
    """The ``slots`` slots of a Prefect global concurrency limit, taken with leases; creates the limit.

    Each slot is leased for ``lease_seconds`` when taken; ``keep`` cuts a lease short, so a
    process that ends while holding slots leaves them only until their cut leases end.
    """

    shared = True

    def __init__(self, name: str, slots: int, lease_seconds: float, client: Any = None) -> None:
        from prefect.client.orchestration import get_client

        self.name, self.slots = name, slots
        self.lease_seconds = max(SHORTEST_LEASE_SECONDS, lease_seconds)
        # Made here, in the caller's settings context: the releasing thread has none of its own.
        if client is None:
            client = get_client(sync_client=True)
            client.__enter__()
        self._client: Any = client
        self._lock = threading.Lock()
        self._created = False

    def try_take(self) -> object | None:
        import httpx

        try:
            with self._lock:
                if not self._created:
                    self._create()
                response = self._client.increment_concurrency_slots_with_lease(
                    names=[self.name], slots=1, mode="concurrency", lease_duration=self.lease_seconds
                )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 423:  # every slot is taken
                return None
            raise SlotsUnavailable(f"{exc.response.status_code} from Prefect") from None
        except Exception as exc:
            raise SlotsUnavailable(type(exc).__name__) from None
        body = response.json()
        if not body.get("limits"):  # the limit was deleted meanwhile
            self._created = False
            return self.try_take()
        lease: object = body["lease_id"]
        return lease

    def _create(self) -> None:
        """Create the limit, or set its slots to this process's if it was made with another number."""
        ensure_limit(self._client, self.name, self.slots)
        self._created = True

    def keep(self, slot: object, seconds: float) -> None:
        """Cut the slot's lease to end ``seconds`` from now (at least Prefect's shortest lease)."""
        try:
            with self._lock:
                self._client.renew_concurrency_lease(
                    lease_id=slot, lease_duration=max(SHORTEST_LEASE_SECONDS, seconds)
                )
        except Exception as exc:  # the lease keeps its first, longer, end
            _logger.debug("Could not shorten a lease of %s (%s)", self.name, type(exc).__name__)

    def give_back(self, slot: object) -> None:
        try:
            with self._lock:
                self._client.release_concurrency_slots_with_lease(lease_id=slot)
        except Exception as exc:  # the lease expires on its own
            _logger.debug("Could not release a lease of %s (%s); it expires", self.name, type(exc).__name__)
