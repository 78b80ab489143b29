"""The device a job will run on, for transpiling circuits to its instruction set (ISA) first.

Example:
    >>> from qiskit.transpiler import generate_preset_pass_manager
    >>> backend = get_backend("ibm_brisbane", credentials="ibm-quantum")  # doctest: +SKIP
    >>> isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(
    ...     circuit
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

import functools

import anyio
from qiskit.providers import BackendV2

from prefect_qiskit_jobs.blocks import CredentialsLike, aresolve_credentials, resolve_credentials
from prefect_qiskit_jobs.ibm.gateway import RESEND_CAP_SECONDS, gateway_for


def get_backend(name: str, *, credentials: CredentialsLike = None) -> BackendV2:
    """The backend called ``name`` (a qiskit ``BackendV2`` with its ``target``), looked up once per process.

    Raises ``InvalidJobInputError`` listing the available backends when ``name`` is not one of them.
    A lookup IBM cannot answer for now (429, 5xx, a dropped connection) is sent again, for up to
    five minutes in all, before ``IQPUnavailableError`` is raised.
    """
    return gateway_for(resolve_credentials(credentials)).backend(name, resend_cap_seconds=RESEND_CAP_SECONDS)


async def aget_backend(name: str, *, credentials: CredentialsLike = None) -> BackendV2:
    """The awaitable twin of ``get_backend``, off the event loop: ``backend = await aget_backend(name)``."""
    gateway = gateway_for(await aresolve_credentials(credentials))
    return await anyio.to_thread.run_sync(
        functools.partial(gateway.backend, name, resend_cap_seconds=RESEND_CAP_SECONDS)
    )
