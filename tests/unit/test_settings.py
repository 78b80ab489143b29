"""One settings object reads every environment variable, and the docs list each with its default."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_qiskit_jobs.errors import ConfigurationError
from prefect_qiskit_jobs.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference" / "settings.md"


def test_the_settings_page_lists_every_variable() -> None:
    page = DOCS.read_text()

    assert [variable for variable in Settings.variables().values() if f"`{variable}`" not in page] == []


def test_defaults_hold_when_nothing_is_set() -> None:
    settings = Settings.read({})

    assert (settings.max_in_flight, settings.job_rate_limit, settings.read_timeout) == (None, None, 30.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT", "0"), ("PREFECT_QISKIT_JOBS_READ_TIMEOUT", "soon")],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.read({variable: value})


def test_an_empty_value_counts_as_unset() -> None:
    assert Settings.read({"PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT": " "}).max_in_flight is None
