"""The job-creation throttle's decisions, on a fake clock: bursts, refusals, due order, settings."""

from __future__ import annotations

import random
import threading

import pytest
from pydantic import SecretStr

from prefect_qiskit_jobs import IBMQuantumCredentials
from prefect_qiskit_jobs.errors import ConfigurationError, InvalidJobInputError, IQPError, IQPUnavailableError
from prefect_qiskit_jobs.limits import rate as throttle_module
from prefect_qiskit_jobs.limits.rate import (
    JOB_RATE_LIMIT_ENV,
    LEASE_SLACK_SECONDS,
    RESEND_WINDOWS,
    CreationRate,
    JobCreationThrottle,
    Releaser,
    create_job,
    limit_name,
    rate_for,
    resend_refused,
    throttle_for,
)
from prefect_qiskit_jobs.limits.slots import LocalSlots, PrefectSlots, SlotsUnavailable

RATE = CreationRate(jobs=3, window_seconds=10)
TOKEN = "secret-api-key-value"


class HalfRandom(random.Random):
    """A random source whose every draw is 0.5: jitter at the middle of its spread."""

    def random(self) -> float:
        return 0.5


class Clock:
    """A clock that only moves when the throttle sleeps; each sleep releases what came due."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.releaser = Releaser(clock=lambda: self.now)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.releaser.run_due(self.now)


class RecordingPool(LocalSlots):
    def __init__(self, jobs: int) -> None:
        super().__init__(jobs)
        self.given_back: list[object] = []
        self.kept: list[tuple[object, float]] = []
        self.returned = threading.Event()

    def keep(self, slot: object, seconds: float) -> None:
        self.kept.append((slot, seconds))

    def give_back(self, slot: object) -> None:
        self.given_back.append(slot)
        super().give_back(slot)
        self.returned.set()


def throttle(clock: Clock, pool: LocalSlots | None = None) -> JobCreationThrottle:
    return JobCreationThrottle(
        RATE,
        pool or LocalSlots(RATE.jobs),
        clock.releaser,
        sleep=clock.sleep,
        wait_for_slot=clock.sleep,
        rng=HalfRandom(),
    )


def schedule_without_thread(releaser: Releaser) -> None:
    original = releaser.schedule
    releaser.schedule = lambda due, pool, slot, start=True: original(due, pool, slot, start=False)  # type: ignore[method-assign]


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    schedule_without_thread(clock.releaser)
    return clock


def test_a_burst_of_n_goes_at_once_then_the_next_waits_a_window_after_the_first_answer(clock: Clock) -> None:
    gate = throttle(clock)
    created: list[float] = []
    for _ in range(RATE.jobs + 1):
        gate.create(lambda: created.append(clock.now), print)
    assert created[: RATE.jobs] == [1000.0] * RATE.jobs
    assert created[RATE.jobs] == pytest.approx(1000.0 + RATE.hold_seconds)
    assert RATE.hold_seconds == pytest.approx(10 * 1.02 + 0.25)


def test_each_answered_creation_keeps_its_slot_for_one_window_should_the_process_end(clock: Clock) -> None:
    pool = RecordingPool(RATE.jobs)
    gate = throttle(clock, pool)
    for _ in range(2):
        gate.create(lambda: None, print)
    assert [seconds for _, seconds in pool.kept] == [RATE.hold_seconds] * 2
    assert pool.given_back == []  # kept for the window, not given back


class LeaseClient:
    """The two lease calls of Prefect's sync client that ``PrefectSlots.keep`` may make."""

    def __init__(self) -> None:
        self.renewed: list[tuple[object, float]] = []

    def renew_concurrency_lease(self, lease_id: object, lease_duration: float) -> None:
        self.renewed.append((lease_id, lease_duration))


def test_a_shared_slot_is_kept_by_cutting_its_lease_to_the_window_but_never_below_prefects_shortest() -> None:
    client = LeaseClient()
    for window in (3.0, 60.0):
        rate = CreationRate(jobs=5, window_seconds=window)
        pool = PrefectSlots(
            "ibm-quantum-job-creation-x", rate.jobs, rate.hold_seconds + LEASE_SLACK_SECONDS, client=client
        )
        assert pool.lease_seconds > rate.hold_seconds  # a slow POST keeps its slot
        pool.keep("lease", rate.hold_seconds)
    assert client.renewed == [("lease", 60.0), ("lease", pytest.approx(60 * 1.02 + 0.25))]


def test_without_a_prefect_server_each_process_keeps_the_limit_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv(JOB_RATE_LIMIT_ENV, raising=False)
    monkeypatch.setattr(throttle_module, "_throttles", {})
    with temporary_settings(updates={PREFECT_API_URL: None}):
        gate = throttle_for(credentials(jobs_per_window=4))
    assert gate is not None
    assert isinstance(gate.pool, LocalSlots)


def test_a_refused_post_gives_its_slot_back_at_once_and_is_sent_again_after_retry_after(clock: Clock) -> None:
    pool = RecordingPool(RATE.jobs)
    gate = throttle(clock, pool)
    answers: list[Exception | None] = [IQPUnavailableError("429", 429, retry_after=2.0), None]
    logs: list[str] = []

    def post() -> float:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return clock.now

    assert gate.create(post, logs.append) == 1002.0
    assert len(pool.given_back) == 1  # the refused POST's slot, before any window passed
    assert clock.sleeps == [2.0]
    assert "429" in logs[0]
    assert clock.releaser.next_due() == pytest.approx(1002.0 + RATE.hold_seconds)


def test_a_refusal_without_retry_after_backs_off_with_jitter(clock: Clock) -> None:
    gate = throttle(clock)
    refusals = [IQPUnavailableError("429", 429), IQPUnavailableError("429", 429)]

    def post() -> None:
        if refusals:
            raise refusals.pop(0)

    gate.create(post, print)
    assert clock.sleeps == [1.0, 2.0]


def test_other_failures_keep_the_slot_for_a_window(clock: Clock) -> None:
    pool = RecordingPool(RATE.jobs)
    gate = throttle(clock, pool)
    for error in (IQPUnavailableError("503", 503), IQPError("400", 400)):
        with pytest.raises(IQPError):
            gate.create(lambda error=error: (_ for _ in ()).throw(error), print)
    assert pool.given_back == []
    assert clock.releaser.next_due() == pytest.approx(1000.0 + RATE.hold_seconds)


def test_leases_come_back_in_due_order(clock: Clock) -> None:
    pool = RecordingPool(5)
    releaser = clock.releaser
    for due, slot in ((30.0, "c"), (10.0, "a"), (20.0, "b"), (40.0, "d")):
        releaser.schedule(due, pool, slot)
    assert releaser.run_due(25.0) == 2
    assert pool.given_back == ["a", "b"]
    assert releaser.run_due(100.0) == 2
    assert pool.given_back == ["a", "b", "c", "d"]
    assert releaser.next_due() is None


def test_the_release_thread_gives_slots_back_when_due() -> None:
    pool = RecordingPool(1)
    releaser = Releaser()
    slot = pool.try_take()
    assert pool.try_take() is None
    releaser.schedule(releaser.clock() + 0.05, pool, slot)
    assert pool.returned.wait(timeout=30)  # the daemon thread gave it back
    assert pool.given_back == [slot]
    assert pool.try_take() is not None


def credentials(**fields: object) -> IBMQuantumCredentials:
    return IBMQuantumCredentials(token=SecretStr(TOKEN), instance="crn:v1:x", **fields)  # type: ignore[arg-type]


def test_the_block_sets_the_rate_and_the_environment_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOB_RATE_LIMIT_ENV, raising=False)
    assert rate_for(credentials()) == CreationRate(5, 60.0)
    assert rate_for(credentials(jobs_per_window=2, rate_window_seconds=6)) == CreationRate(2, 6.0)
    assert rate_for(credentials(jobs_per_window=None)) is None
    monkeypatch.setenv(JOB_RATE_LIMIT_ENV, "10/6")
    assert rate_for(credentials()) == CreationRate(10, 6.0)
    monkeypatch.setenv(JOB_RATE_LIMIT_ENV, "off")
    assert rate_for(credentials()) is None


@pytest.mark.parametrize("text", ["5", "0/60", "5/0", "x/60", "5/60/2"])
def test_bad_rate_text_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match=JOB_RATE_LIMIT_ENV):
        CreationRate.parse(text)


def test_the_limit_name_is_per_account_and_holds_no_key() -> None:
    name = limit_name(credentials())
    assert name.startswith("ibm-quantum-job-creation-")
    assert TOKEN not in name
    assert credentials().fingerprint() not in name
    assert name == limit_name(credentials(jobs_per_window=1))  # the account, not its settings
    other = IBMQuantumCredentials(token=SecretStr("another-key"), instance="crn:v1:x")
    assert limit_name(other) != name


class UnreachablePool:
    shared = True

    def __init__(self) -> None:
        self.asked = 0

    def try_take(self) -> object | None:
        self.asked += 1
        raise SlotsUnavailable("ConnectError")

    def give_back(self, slot: object) -> None:
        raise AssertionError("nothing was taken")


def test_without_a_prefect_api_the_process_keeps_the_limit_alone_and_says_so_once(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = UnreachablePool()
    gate = JobCreationThrottle(
        RATE, unreachable, clock.releaser, sleep=clock.sleep, wait_for_slot=clock.sleep, rng=HalfRandom()
    )
    created: list[float] = []
    with caplog.at_level("WARNING", logger="prefect_qiskit_jobs.limits.rate"):
        for _ in range(RATE.jobs + 1):
            gate.create(lambda: created.append(clock.now), print)
    assert unreachable.asked == 1
    assert isinstance(gate.pool, LocalSlots)
    assert created[RATE.jobs] == pytest.approx(1000.0 + RATE.hold_seconds)  # still limited
    assert len([r for r in caplog.records if "cannot hold" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("environment", "fields"),
    [("off", {}), (None, {"jobs_per_window": None})],
    ids=["environment-off", "block-without-limit"],
)
def test_without_a_limit_a_refused_post_is_still_sent_again_within_the_submit(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, fields: dict[str, object]
) -> None:
    if environment is None:
        monkeypatch.delenv(JOB_RATE_LIMIT_ENV, raising=False)
    else:
        monkeypatch.setenv(JOB_RATE_LIMIT_ENV, environment)
    account = credentials(**fields)
    assert throttle_for(account) is None  # no limit paces these POSTs
    answers: list[Exception | None] = [
        IQPUnavailableError("429", 429, retry_after=2.0),
        IQPUnavailableError("429", 429),
        None,
    ]
    sleeps: list[float] = []
    logs: list[str] = []

    def post() -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "job"

    assert create_job(account, post, logs.append, sleep=sleeps.append, rng=HalfRandom()) == "job"
    assert answers == []  # posted three times: two refusals, then the creation
    assert sleeps == [2.0, 2.0]  # Retry-After as told; then the backoff of a second refusal
    assert len(logs) == 2
    assert all("429" in line for line in logs)


@pytest.mark.parametrize(
    "retry_after", [4.0, None, 0.0], ids=["retry-after", "no-retry-after", "retry-after-0"]
)
def test_without_a_limit_a_submit_refused_for_many_windows_gives_up_with_the_429(
    monkeypatch: pytest.MonkeyPatch, retry_after: float | None
) -> None:
    monkeypatch.setenv(JOB_RATE_LIMIT_ENV, "off")
    account = credentials(rate_window_seconds=10)
    sleeps: list[float] = []
    posts: list[int] = []

    def post() -> None:
        posts.append(1)
        raise IQPUnavailableError("429", 429, retry_after=retry_after)

    with pytest.raises(IQPUnavailableError) as refused:
        create_job(account, post, print, sleep=sleeps.append, rng=HalfRandom())
    assert refused.value.status_code == 429
    assert sum(sleeps) <= RESEND_WINDOWS * 10  # bounded: a few windows, not forever
    assert len(posts) == len(sleeps) + 1 > 1


def test_other_failures_are_not_sent_again_without_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JOB_RATE_LIMIT_ENV, "off")
    sleeps: list[float] = []
    posts: list[int] = []

    def post() -> None:
        posts.append(1)
        raise IQPUnavailableError("503", 503, retry_after=1.0)  # the job may exist: adopted, not re-sent

    with pytest.raises(IQPUnavailableError):
        create_job(credentials(), post, print, sleep=sleeps.append, rng=HalfRandom())
    assert (posts, sleeps) == ([1], [])


def test_a_request_that_changes_nothing_is_sent_again_after_any_transient_failure_but_bad_input() -> None:
    sleeps: list[float] = []
    failures = [IQPUnavailableError("503", 503), IQPUnavailableError("dropped"), InvalidJobInputError("bad")]

    def read() -> str:
        raise failures.pop(0)

    with pytest.raises(InvalidJobInputError):
        resend_refused(read, print, 60.0, sleep=sleeps.append, rng=HalfRandom(), idempotent=True)
    assert failures == []  # the 503 and the drop were sent again; the bad input was raised at once
    assert len(sleeps) == 2
