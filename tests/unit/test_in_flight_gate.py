"""The in-flight gate's decisions, with fakes for IBM's count, Prefect's hold and the clock."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError

from prefect_qiskit_jobs import IBMQuantumCredentials
from prefect_qiskit_jobs.errors import ConfigurationError
from prefect_qiskit_jobs.ibm.tags import PROCESS_TAG, deployment_tag, flow_run_tag, job_tags
from prefect_qiskit_jobs.limits.inflight import (
    AT_CAP_BACKOFF,
    LIMIT_PREFIX,
    MAX_IN_FLIGHT_VARIABLE,
    InFlightGate,
    InFlightScope,
    scopes_for,
)

TOKEN = "very-secret-api-key"
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/abc::"


def credentials(cap: int | None = None, token: str = TOKEN) -> IBMQuantumCredentials:
    return IBMQuantumCredentials(token=SecretStr(token), instance=CRN, max_jobs_in_flight=cap)


class Fakes:
    """IBM's pending count as a list of answers, a hold that records itself, a sleep that records."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.events: list[str] = []
        self.logs: list[str] = []
        self.pauses: list[float] = []

    def count(self, scope: InFlightScope) -> int:
        self.events.append(f"count {scope.label}")
        return self.counts.pop(0)

    @contextlib.contextmanager
    def hold(self, names: list[str]) -> Iterator[None]:
        self.events.append("hold")
        yield
        self.events.append("release")

    def gate(self, account: IBMQuantumCredentials) -> InFlightGate:
        return InFlightGate(
            account,
            count=self.count,
            hold=self.hold,
            log=self.logs.append,
            backoff=dataclasses.replace(AT_CAP_BACKOFF, jitter=0),
            sleep=self.pauses.append,
        )


def test_below_the_cap_the_post_runs_inside_the_hold_after_one_count() -> None:
    fakes = Fakes(counts=[2])
    scope = InFlightScope(3, (), "the instance")

    with fakes.gate(credentials(3)).admission([scope]):
        fakes.events.append("post")

    assert fakes.events == ["hold", "count the instance", "post", "release"]
    assert fakes.pauses == []
    assert fakes.logs == []


def test_at_the_cap_it_lets_the_hold_go_pauses_longer_each_time_and_logs_once() -> None:
    fakes = Fakes(counts=[3, 4, 3, 1])
    scope = InFlightScope(3, (), "the instance")

    with fakes.gate(credentials(3)).admission([scope]):
        fakes.events.append("post")

    assert fakes.events == ["hold", "count the instance", "release"] * 3 + [
        "hold",
        "count the instance",
        "post",
        "release",
    ]
    assert fakes.pauses == [0.5, 0.75, 1.125]
    assert fakes.logs == [
        "Waiting: 3 of cap 3 jobs pending on IBM (the instance); the job is submitted when one of them ends"
    ]


def test_every_scope_must_be_below_its_cap() -> None:
    fakes = Fakes(counts=[0, 2, 0, 1])
    scopes = [InFlightScope(5, (), "the instance"), InFlightScope(2, ("t",), "flow run f")]

    with fakes.gate(credentials(5)).admission(scopes):
        fakes.events.append("post")

    assert fakes.events.count("post") == 1
    assert fakes.pauses == [0.5]
    assert "(flow run f)" in fakes.logs[0]


def test_without_a_scope_nothing_is_counted_or_held() -> None:
    fakes = Fakes(counts=[])

    with fakes.gate(credentials()).admission([]):
        fakes.events.append("post")

    assert fakes.events == ["post"]


def test_a_submit_of_the_same_scope_waits_in_the_process_without_counting() -> None:
    scope = InFlightScope(1, (), "the instance")
    first_in = threading.Event()
    let_go = threading.Event()
    counted: list[str] = []

    def count(scope: InFlightScope) -> int:
        counted.append(threading.current_thread().name)
        return 0

    gate = InFlightGate(credentials(1), count=count, hold=lambda names: contextlib.nullcontext(), log=print)

    def first() -> None:
        with gate.admission([scope]):
            first_in.set()
            let_go.wait()

    def second() -> None:
        with gate.admission([scope]):
            pass

    threads = [threading.Thread(target=first, name="first"), threading.Thread(target=second, name="second")]
    threads[0].start()
    first_in.wait()
    threads[1].start()
    threads[1].join(timeout=0.2)
    assert threads[1].is_alive()
    assert counted == ["first"]
    let_go.set()
    for thread in threads:
        thread.join()
    assert counted == ["first", "second"]


def test_the_account_cap_scopes_every_job_of_the_instance() -> None:
    tags = job_tags(flow_run_id="f-1", task_run_id="t", submit_key="k")

    assert scopes_for(credentials(4), tags, environ={}) == [InFlightScope(4, (), "the instance")]
    assert scopes_for(credentials(), tags, environ={}) == []


def test_the_environment_cap_scopes_the_deployment_else_the_flow_run_else_the_process() -> None:
    env = {MAX_IN_FLIGHT_VARIABLE: "2"}
    in_deployment = job_tags(flow_run_id="f-1", task_run_id="t", submit_key="k", deployment_id="d-1")
    in_run = job_tags(flow_run_id="f-1", task_run_id="t", submit_key="k")
    outside = job_tags(flow_run_id=None, task_run_id=None, submit_key="k")

    assert scopes_for(credentials(), in_deployment, env) == [
        InFlightScope(2, (deployment_tag("d-1"),), "deployment d-1")
    ]
    in_run_scope = InFlightScope(2, (flow_run_tag("f-1"),), "flow run f-1")
    assert scopes_for(credentials(), in_run, env) == [in_run_scope]
    assert [scope.tags for scope in scopes_for(credentials(), outside, env)] == [(PROCESS_TAG,)]
    assert len(scopes_for(credentials(7), in_run, env)) == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_cap_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match=MAX_IN_FLIGHT_VARIABLE):
        scopes_for(credentials(), [], {MAX_IN_FLIGHT_VARIABLE: value})


def test_a_cap_below_one_is_refused_by_the_block() -> None:
    with pytest.raises(ValidationError):
        credentials(0)


def test_limit_names_are_per_instance_and_scope_and_show_no_secret() -> None:
    account = InFlightScope(3, (), "the instance")
    run = InFlightScope(3, (flow_run_tag("f-1"),), "flow run f-1")
    name = account.limit_name(credentials(3))

    assert name.startswith(LIMIT_PREFIX)
    assert TOKEN not in name
    assert CRN not in name
    assert "f-1" not in run.limit_name(credentials(3))
    # Two API keys of one instance see the same count, so they share the limit that guards it.
    assert account.limit_name(credentials(3, token="another-key")) == name
    assert run.limit_name(credentials(3)) != name


def test_the_backoff_grows_to_its_cap_and_jitters_within_its_spread() -> None:
    import random

    assert dataclasses.replace(AT_CAP_BACKOFF, jitter=0).delay(100) == 20.0
    rng = random.Random(1)
    assert all(0.45 <= AT_CAP_BACKOFF.delay(0, rng) <= 0.55 for _ in range(100))
