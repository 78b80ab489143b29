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


def test_every_variable_of_a_given_mapping_is_read_the_client_s_own_included() -> None:
    settings = Settings.read(
        {"PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT": "3", "QISKIT_IBM_TOKEN": "a-key", "IAM_URL": "http://iam"}
    )

    assert (settings.max_in_flight, settings.ibm_token, settings.iam_url) == (3, "a-key", "http://iam")


def test_a_given_mapping_is_all_there_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT", "5")
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "the-process-key")

    given, environment = Settings.read({}), Settings.read()

    assert (given.max_in_flight, given.ibm_token) == (None, None)
    assert (environment.max_in_flight, environment.ibm_token) == (5, "the-process-key")
