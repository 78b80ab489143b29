"""Prefect global concurrency limits shared between processes: when they can be, and one-slot locks.

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
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

    from prefect_qiskit_jobs.blocks import IBMQuantumCredentials

SHORTEST_LEASE_SECONDS = 60.0  # Prefect refuses shorter leases


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
