"""When Prefect global concurrency limits can be shared between processes, and their shortest lease.

Processes share a limit's slots through the Prefect API, holding each under a lease so a holder
that dies gives its slot back when the lease runs out. Only a Prefect server returns expired
leases (its repossessor service, every 15 s by default): the temporary local server a process
starts when no ``PREFECT_API_URL`` is set runs no such service, and keeps its leases in memory
while the slots they hold are counted in the database that the next process opens. A lease left
by a process that ended there holds its slot for good. So without a Prefect server each process
keeps its limits alone.
"""

from __future__ import annotations

SHORTEST_LEASE_SECONDS = 60.0  # Prefect refuses shorter leases


def prefect_server_configured() -> bool:
    """Whether a Prefect server is set (``PREFECT_API_URL``), rather than a temporary local one."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is not None
