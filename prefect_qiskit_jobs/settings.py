"""Every environment variable the package reads, in one object with its defaults.

``PREFECT_QISKIT_JOBS_*`` variables tune the package; the ``QISKIT_IBM_*`` ones (and ``IAM_URL``,
``GLOBAL_SEARCH_URL``, ``GLOBAL_CATALOG_URL``) are the client's own conventions, read when no
credentials block is given. Settings are read when used, not at import, so a process (or a test)
that changes its environment is heard. A bad value is a ``ConfigurationError`` naming the variable.

Example:
    >>> Settings.read({"PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT": "3"}).max_in_flight
    3
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from prefect_qiskit_jobs.errors import ConfigurationError

PREFIX = "PREFECT_QISKIT_JOBS_"


class Settings(BaseSettings):
    """The package's settings, from the environment (``PREFECT_QISKIT_JOBS_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True, populate_by_name=True)

    max_in_flight: PositiveInt | None = Field(
        None,
        description="Cap on the jobs pending on IBM for the current deployment (else flow run); unset: none.",
    )
    qpu_budget: str | None = Field(
        None,
        description="QPU-time budget as SECONDS[s|m|h][:flow-run|deployment|instance] (e.g. 120s, "
        "10m:instance; scope default: deployment); unset: none.",
    )
    job_rate_limit: str | None = Field(
        None,
        description="IBM's job-creation limit as JOBS/SECONDS (e.g. 5/60) or 'off'; unset: the block's.",
    )
    submit_threads: PositiveInt = Field(
        16,
        description="Threads a flow run's submit tasks started with .submit()/.map() run on at most.",
    )
    read_timeout: PositiveFloat = Field(
        30.0, description="Seconds to wait for any answer of IBM's job API before the client retries."
    )
    ibm_token: str | None = Field(
        None, validation_alias=AliasChoices("QISKIT_IBM_TOKEN"), description="API key, without a block."
    )
    ibm_instance: str | None = Field(
        None,
        validation_alias=AliasChoices("QISKIT_IBM_INSTANCE"),
        description="Instance CRN, without a block.",
    )
    ibm_url: str | None = Field(
        None, validation_alias=AliasChoices("QISKIT_IBM_URL"), description="IBM Cloud URL, without a block."
    )
    iam_url: str | None = Field(
        None, validation_alias=AliasChoices("IAM_URL"), description="IAM service URL."
    )
    global_search_url: str | None = Field(
        None, validation_alias=AliasChoices("GLOBAL_SEARCH_URL"), description="Global Search URL."
    )
    global_catalog_url: str | None = Field(
        None, validation_alias=AliasChoices("GLOBAL_CATALOG_URL"), description="Global Catalog URL."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values ``read`` passes: it reads the environment (or the mapping it is given).

        pydantic-settings would read the whole environment again on every read (milliseconds,
        three times per submitted job) and fill what a given mapping lacks from this process's.
        """
        return (init_settings,)

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``environ`` (default: this process's environment), checked."""
        source = os.environ if environ is None else environ
        values = {
            name: source[variable]
            for name, variable in cls.variables().items()
            if source.get(variable, "").strip()
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            bad = exc.errors()[0]
            name = str(bad["loc"][0]) if bad["loc"] else "?"
            variable = cls.variables().get(name, name)
            shown = "***" if name == "ibm_token" else repr(values.get(name))  # never echo a secret
            raise ConfigurationError(f"{variable}={shown} is not valid: {bad['msg']}") from None

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Each setting's environment variable."""
        out = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            out[name] = alias.choices[0] if isinstance(alias, AliasChoices) else PREFIX + name.upper()
        return {name: str(variable) for name, variable in out.items()}
