"""``IBMQuantumCredentials``: the one place an IBM Quantum API key lives, as a Prefect block.

Every entry point of the package takes credentials in one of three forms (a block, a saved block's
name, or None for the ``QISKIT_IBM_*`` environment) and turns them into a block through
``resolve_credentials`` or, in async code, ``aresolve_credentials``. Prefect's ``Block.load``
returns a coroutine when called from async code, so the two never share a call to it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, HttpUrl, SecretStr, field_validator

from prefect_qiskit_jobs.errors import ConfigurationError

if TYPE_CHECKING:
    from qiskit_ibm_runtime import QiskitRuntimeService

    from prefect_qiskit_jobs.emulator.server import RunningEmulator

IBM_CLOUD_URL = "https://cloud.ibm.com"


class IBMQuantumCredentials(CredentialsBlock):
    """Credentials for an IBM Quantum Platform instance; builds the ``QiskitRuntimeService``.

    The token is a ``SecretStr``: Prefect masks it in the UI and the API, and this package never
    logs it or puts it in results, artifacts or exception messages.

    Pass the saved block's name, not the loaded block, to the package's tasks: every entry point
    loads it the right way for sync or async code.

    Example:
        Save once (or create the block in the UI), then use its name in any flow:

        ```python
        from prefect_qiskit_jobs import IBMQuantumCredentials

        IBMQuantumCredentials(
            token="<IBM Cloud API key>",
            instance="crn:v1:bluemix:public:quantum-computing:us-east:a/...::",
        ).save("BLOCK_NAME")
        credentials = IBMQuantumCredentials.load("BLOCK_NAME")  # sync code; async: await ...aload(...)
        ```
    """

    _block_type_name = "IBM Quantum Credentials"
    _block_type_slug = "ibm-quantum-credentials"
    _logo_url = HttpUrl(
        "https://avatars.githubusercontent.com/u/30696987?s=200&v=4"
    )  # the Qiskit organisation
    _description = "An IBM Cloud API key and the IBM Quantum Platform instance (CRN) it opens."
    _documentation_url = HttpUrl("https://quantum.cloud.ibm.com/docs/guides/cloud-setup")

    token: SecretStr = Field(description="IBM Cloud API key.")
    instance: str = Field(description="Cloud Resource Name (CRN) of the IBM Quantum instance.")
    url: str = Field(
        IBM_CLOUD_URL, description="IBM Cloud URL, or a runtime API URL containing 'experimental'."
    )
    channel: Literal["ibm_quantum_platform", "ibm_cloud"] = Field(
        "ibm_quantum_platform", description="The client's channel: IBM Quantum Platform, or IBM Cloud."
    )
    iam_url: str | None = Field(None, description="IAM token service, when not IBM Cloud's (the emulator's).")
    global_search_url: str | None = Field(None, description="Global Search service, when not IBM Cloud's.")
    global_catalog_url: str | None = Field(None, description="Global Catalog service, when not IBM Cloud's.")
    verify: bool = Field(True, description="Verify TLS certificates.")
    jobs_per_window: int | None = Field(
        5,
        ge=1,
        description="Jobs IBM lets this account create per window (5 a minute, documented); every "
        "process using the account keeps to it together. None: no limit. The environment variable "
        "PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT (e.g. 5/60, or off) overrides it.",
    )
    rate_window_seconds: float = Field(60.0, gt=0, description="The window of jobs_per_window, in seconds.")
    max_jobs_in_flight: int | None = Field(
        None,
        ge=1,
        description="Submit a job only while fewer of the instance's jobs are queued or running; "
        "further submits wait. None: no cap.",
    )

    @field_validator("instance")
    @classmethod
    def _instance_is_crn(cls, value: str) -> str:
        if not value.startswith("crn:"):
            raise ValueError(
                "instance must be the instance's CRN ('crn:v1:...'), as shown on IBM Quantum Platform"
            )
        return value

    @field_validator("token")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("token is empty: give the IBM Cloud API key")
        return value

    def fingerprint(self) -> str:
        """A digest identifying these credentials in memory caches, never shown anywhere."""
        parts = [self.token.get_secret_value(), self.instance, self.url, self.channel]
        parts += [self.iam_url or "", self.global_search_url or "", self.global_catalog_url or ""]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def endpoint_environment(self) -> dict[str, str]:
        """The variables through which the client finds non-default IAM and directory services."""
        pairs = {"IAM_URL": self.iam_url, "GLOBAL_SEARCH_URL": self.global_search_url}
        pairs["GLOBAL_CATALOG_URL"] = self.global_catalog_url
        return {name: value for name, value in pairs.items() if value}

    def get_client(self) -> QiskitRuntimeService:
        """The ``QiskitRuntimeService`` for these credentials, shared within the process."""
        from prefect_qiskit_jobs.ibm.gateway import gateway_for

        return gateway_for(self).service()

    @classmethod
    def from_environment(cls) -> IBMQuantumCredentials:
        """Credentials from ``QISKIT_IBM_TOKEN``, ``QISKIT_IBM_INSTANCE`` and friends."""
        from prefect_qiskit_jobs.settings import Settings

        settings = Settings.read()
        token, instance = settings.ibm_token, settings.ibm_instance
        if not token or not instance:
            raise ConfigurationError(
                "No IBM Quantum credentials: set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE, "
                "or pass an IBMQuantumCredentials block"
            )
        return cls(
            token=SecretStr(token),
            instance=instance,
            url=settings.ibm_url or IBM_CLOUD_URL,
            iam_url=settings.iam_url,
            global_search_url=settings.global_search_url,
            global_catalog_url=settings.global_catalog_url,
        )

    @classmethod
    def for_emulator(
        cls, emulator: RunningEmulator | str, api_key: str | None = None
    ) -> IBMQuantumCredentials:
        """Credentials for a local emulator, given its handle or its base URL (``http://127.0.0.1:8765``)."""
        from prefect_qiskit_jobs.emulator.config import DEFAULT_API_KEY, DEFAULT_CRN
        from prefect_qiskit_jobs.emulator.server import client_environment

        if isinstance(emulator, str):
            from prefect_qiskit_jobs.emulator.config import EmulatorConfig

            # A URL alone says nothing of the emulator's job rate limit: no limit is kept.
            env = client_environment(emulator.rstrip("/"), EmulatorConfig())
            key, crn, limit = api_key or DEFAULT_API_KEY, DEFAULT_CRN, None
        else:
            env = emulator.environment()
            key, crn = api_key or emulator.api_key, emulator.config.instance_crn
            limit = emulator.config.job_rate_limit
        return cls(
            jobs_per_window=limit.jobs if limit else None,
            rate_window_seconds=limit.window_seconds if limit else 60.0,
            token=SecretStr(key),
            instance=crn,
            url=env["QISKIT_IBM_URL"],
            iam_url=env["IAM_URL"],
            global_search_url=env["GLOBAL_SEARCH_URL"],
            global_catalog_url=env["GLOBAL_CATALOG_URL"],
        )


CredentialsLike = IBMQuantumCredentials | str | None
"""What every entry point accepts: a block, a saved block's name, or None for the environment."""


def resolve_credentials(credentials: CredentialsLike) -> IBMQuantumCredentials:
    """The block for ``credentials``, from sync code (a name is loaded from the Prefect API).

    Example:
        >>> resolve_credentials(IBMQuantumCredentials(token="key", instance="crn:v1:x")).instance
        'crn:v1:x'
    """
    if isinstance(credentials, str):
        _check_name(credentials)
        try:
            # _sync: the block, not a coroutine, even when sync code runs inside an event loop (a hook).
            loaded = IBMQuantumCredentials.load(credentials, _sync=True)  # type: ignore[call-arg]
        except ValueError:
            raise _not_saved(credentials) from None
        return _loaded(credentials, loaded)
    return _given(credentials)


async def aresolve_credentials(credentials: CredentialsLike) -> IBMQuantumCredentials:
    """The block for ``credentials``, from async code, without blocking the event loop."""
    if isinstance(credentials, str):
        _check_name(credentials)
        try:
            loaded = await IBMQuantumCredentials.aload(credentials)
        except ValueError:
            raise _not_saved(credentials) from None
        return _loaded(credentials, loaded)
    return _given(credentials)


def _given(credentials: IBMQuantumCredentials | None) -> IBMQuantumCredentials:
    if credentials is None:
        return IBMQuantumCredentials.from_environment()
    if not isinstance(credentials, IBMQuantumCredentials):
        raise ConfigurationError(
            f"credentials must be an IBMQuantumCredentials block, a saved block's name, or None "
            f"(the QISKIT_IBM_* environment), not {type(credentials).__name__}"
        )
    return credentials


def _check_name(name: str) -> None:
    if not name.strip():
        raise ConfigurationError("credentials is an empty name: give a saved block's name, or None")


def _not_saved(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"No IBM Quantum Credentials block named {name!r} on this Prefect API: save one "
        f"(IBMQuantumCredentials(token=..., instance=...).save({name!r})), or pass None to use "
        "QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE"
    )


def _loaded(name: str, block: Any) -> IBMQuantumCredentials:
    if not isinstance(block, IBMQuantumCredentials):
        raise ConfigurationError(
            f"The block {name!r} is a {type(block).__name__}, not IBM Quantum Credentials"
        )
    return block
