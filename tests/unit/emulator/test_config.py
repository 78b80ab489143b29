"""Fault rules as the CLI reads them, and settings that refuse what they do not know."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prefect_qiskit_jobs.emulator.config import BackendSpec, EmulatorConfig, FaultRule


def test_parse_reads_route_and_probabilities() -> None:
    rule = FaultRule.parse("GET /jobs/*:rate_limit=0.2, server_error=0.05,server_error_status=502")

    assert rule == FaultRule(route="GET /jobs/*", rate_limit=0.2, server_error=0.05, server_error_status=502)


def test_parse_without_a_route_matches_every_route() -> None:
    assert FaultRule.parse("drop=0.1") == FaultRule(route="*", drop=0.1)


def test_parse_reads_latency_with_its_seconds() -> None:
    rule = FaultRule.parse("* /backends/*:latency = 0.25@1.5")

    assert (rule.route, rule.latency, rule.latency_seconds) == ("* /backends/*", 0.25, 1.5)


def test_parse_of_the_empty_spec_is_a_harmless_rule() -> None:
    assert FaultRule.parse("GET /jobs:") == FaultRule(route="GET /jobs")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("GET /jobs*:rate_limit", "is not key=value"),
        ("GET /jobs*:rate_limt=0.3", "rate_limt"),  # a typo must not silently inject nothing
        ("GET /jobs*:rate_limit=1.5", "less than or equal to 1"),
        ("GET /jobs*:server_error_status=404", "greater than or equal to 500"),
        ("GET /jobs*:drop=often", "valid number"),
    ],
)
def test_parse_refuses_bad_rules(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        FaultRule.parse(text)


def test_config_refuses_unknown_settings_and_bad_backend_names() -> None:
    with pytest.raises(ValidationError, match="queue_dealy"):
        EmulatorConfig(queue_dealy=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="ships no fake backend 'ibm_Manila!'"):
        EmulatorConfig(backends=("ibm_Manila!",))


def test_config_accepts_its_api_keys_only() -> None:
    config = EmulatorConfig()

    assert config.accepts("emulator-api-key")
    assert not config.accepts("emulator-api-key ")
    assert not config.accepts("")


def test_parse_reads_faults_after_handling_and_a_limit() -> None:
    rule = FaultRule.parse("POST /jobs:server_error_after=1,drop_after=0,limit=2")

    assert (rule.route, rule.server_error_after, rule.drop_after, rule.limit) == ("POST /jobs", 1.0, 0.0, 2)


@pytest.mark.parametrize(
    ("text", "name", "folder"),
    [
        ("manila", None, "manila"),
        ("ibm_kyiv", None, "kyiv"),
        ("brisbane=ibm_kyiv", "brisbane", "kyiv"),
        ("ibm_lab.2 = fake_manila", "ibm_lab.2", "manila"),
    ],
)
def test_backend_specs_name_a_fake_by_folder_or_device_name(text: str, name: str | None, folder: str) -> None:
    assert BackendSpec.parse(text) == BackendSpec(name=name, folder=folder)


@pytest.mark.parametrize(
    ("text", "error"),
    [("brisbane=atlantis", "ships no fake backend 'atlantis'"), ("bad name!=kyiv", "is not a backend name")],
)
def test_backend_specs_refuse_unknown_fakes_and_bad_names(text: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        EmulatorConfig(backends=(text,))


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("10m", 600.0), ("90s", 90.0), ("2h", 7200.0), ("1d", 86400.0), (0, 0.0), ("0", 0.0), (None, None)],
)
def test_result_retention_reads_spans(given: object, seconds: float | None) -> None:
    assert EmulatorConfig.model_validate({"result_retention": given}).result_retention == seconds


def test_a_result_retention_that_is_no_span_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not a span"):
        EmulatorConfig.model_validate({"result_retention": "ten minutes"})


def test_a_backend_may_take_longer_to_stop_a_job_than_the_others() -> None:
    config = EmulatorConfig(cancel_latency=5, backend_cancel_latency={"ibmq_lima": 45, "ibmq_belem": 120})

    assert [config.cancel_latency_of(name) for name in ("ibmq_manila", "ibmq_lima", "ibmq_belem")] == [
        5,
        45,
        120,
    ]
    with pytest.raises(ValidationError, match="ibmq_lima is negative"):
        EmulatorConfig(backend_cancel_latency={"ibmq_lima": -1})
