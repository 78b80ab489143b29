"""Settings of one emulator instance: accounts, backends, queue model and injected faults."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/emulator::emulator-instance"
# A 5-qubit Falcon for fast tests, a 7-qubit Falcon, two utility-scale devices (Eagle and Heron),
# and the devices IBM lists today that the client ships a fake of, under their own names, so that
# flows written for IBM run unchanged. Devices load lazily: each one costs little until it is used.
DEFAULT_BACKENDS = (
    "manila",
    "nairobi",
    "brisbane",
    "torino",
    "fez",
    "marrakesh",
    "kingston",
    "boston",
    "pittsburgh",
)
_SERVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_DEVICE_PREFIXES = ("ibm_", "ibmq_", "fake_", "alt_")
_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_SPAN_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@cache
def fake_backends_root() -> Path:
    """Where qiskit-ibm-runtime keeps its fake backends, found without importing the client."""
    spec = importlib.util.find_spec("qiskit_ibm_runtime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("qiskit-ibm-runtime is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "fake_provider" / "backends"


class BackendSpec(BaseModel):
    """One served device: ``folder`` (served under the fake's own name) or ``name=folder``.

    The fake may be named by its folder (``kyiv``) or its device name (``ibm_kyiv``, ``fake_kyiv``).
    """

    model_config = ConfigDict(frozen=True)

    name: str | None
    folder: str

    @classmethod
    def parse(cls, text: str) -> BackendSpec:
        name, eq, fake = (part.strip() for part in text.rpartition("="))
        if eq and not _SERVED_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} (in {text!r}) is not a backend name: use letters, digits, '_', '-', '.'"
            )
        return cls(name=name if eq else None, folder=_fake_folder(fake, text))


def _fake_folder(fake: str, text: str) -> str:
    root = fake_backends_root()
    candidates = [fake, *(fake[len(p) :] for p in _DEVICE_PREFIXES if fake.startswith(p))]
    for folder in candidates:
        if re.fullmatch(r"[a-z0-9_]+", folder) and (root / folder / f"conf_{folder}.json").is_file():
            return folder
    known = sorted(p.parent.name for p in root.glob("*/conf_*.json"))
    raise ValueError(
        f"backend {text!r}: qiskit-ibm-runtime ships no fake backend {fake!r}; "
        f"give NAME=FAKE or FAKE, with FAKE one of: {', '.join(known)}"
    )


class FaultRule(BaseModel):
    """Probabilities of misbehaviour for the requests whose ``"METHOD /route"`` matches ``route``.

    ``route`` is a glob over the route template, e.g. ``"GET /jobs*"`` or ``"* /backends/*"``.
    Each request that matches draws once from the emulator's seeded generator and gets at most one
    fault, checked in the order: dropped connection, 429 with ``Retry-After``, 429 without it, 5xx,
    then the faults *after handling*: the request takes effect (a POST creates its job) and only
    the answer is lost, to a 5xx (which the client retries, creating the job again, as on IBM) or
    a dropped connection; last a hang, held longer than a client waits. ``query`` narrows the
    rule to some requests of the route (one group's listing). ``limit`` caps how many faults the
    rule injects.
    Latency is drawn separately and added before the answer. Unknown keys are refused: a
    misspelt probability would otherwise silently inject nothing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    route: str = "*"
    query: str = Field("*", description="a glob over the raw query string, e.g. '*backend=ibm_kyiv*'")
    drop: float = Field(0.0, ge=0, le=1)
    rate_limit: float = Field(0.0, ge=0, le=1, description="429 with Retry-After")
    rate_limit_no_header: float = Field(0.0, ge=0, le=1, description="429 without Retry-After")
    server_error: float = Field(0.0, ge=0, le=1, description="5xx answers")
    server_error_status: int = Field(503, ge=500, le=599)
    server_error_after: float = Field(
        0.0, ge=0, le=1, description="handle the request (a POST creates its job), then answer 5xx"
    )
    drop_after: float = Field(0.0, ge=0, le=1, description="handle the request, then drop the connection")
    hang: float = Field(
        0.0,
        ge=0,
        le=1,
        description="hold the request unanswered until the client gives up, the faults are replaced "
        "or reset, or hang_seconds pass (then answer it)",
    )
    hang_seconds: float = Field(600.0, ge=0)
    limit: int | None = Field(None, ge=1, description="inject at most this many faults, then none")
    latency: float = Field(0.0, ge=0, le=1, description="probability of added latency")
    latency_seconds: float = Field(0.2, ge=0)
    retry_after_seconds: int = Field(1, ge=0)

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """Read the CLI form ``"ROUTE:key=value,key=value"``, e.g. ``"GET /jobs*:rate_limit=0.2"``.

        ``latency=0.1@0.5`` means "with probability 0.1, add 0.5 s".
        """
        route, sep, spec = text.rpartition(":")
        if not sep:
            route, spec = "*", text
        values: dict[str, object] = {"route": route or "*"}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, eq, value = (part.strip() for part in item.partition("="))
            if not eq:
                raise ValueError(f"fault {item!r} is not key=value")
            if key == "latency" and "@" in value:
                value, seconds = value.split("@", 1)
                values["latency_seconds"] = float(seconds)
            values[key] = value
        return cls.model_validate(values)


class JobRateLimitSpec(BaseModel):
    """IBM's job-creation rate limit: ``jobs`` creations per rolling ``window_seconds``, per API key.

    Beyond it ``POST /jobs`` answers 429 and creates nothing; ``retry_after`` says whether the
    answer carries a ``Retry-After`` header (seconds until a place frees, rounded up).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    jobs: int = Field(ge=1)
    window_seconds: float = Field(gt=0)
    retry_after: bool = True

    @classmethod
    def parse(cls, text: str) -> JobRateLimitSpec:
        """Read the CLI form ``"5/60"`` (5 jobs per 60 s) or ``"5/60:no-retry-after"``."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(?::\s*(no-retry-after)\s*)?", text)
        if match is None:
            raise ValueError(f"job rate limit {text!r} is not JOBS/SECONDS[:no-retry-after], e.g. '5/60'")
        jobs, seconds, flag = match.groups()
        return cls(jobs=int(jobs), window_seconds=float(seconds), retry_after=flag is None)


def parse_span(text: str) -> float:
    """Seconds in a span written ``90s``, ``10m``, ``2h``, ``1d``, ``1w`` or as bare seconds (``600``).

    Example:
        >>> parse_span("10m"), parse_span("1.5h"), parse_span("30")
        (600.0, 5400.0, 30.0)
    """
    match = _SPAN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a span: give seconds or e.g. 90s, 10m, 2h, 1d, 1w")
    return float(match.group(1)) * _SPAN_SECONDS[match.group(2)]


class EmulatorConfig(BaseModel):
    """Everything that shapes an emulator's behaviour; one value per running instance.

    Unknown fields are refused, so a misspelt setting in a config file or a fixture fails loudly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: tuple[SecretStr, ...] = (SecretStr(DEFAULT_API_KEY),)
    instance_crn: str = DEFAULT_CRN
    backends: tuple[str, ...] = Field(
        DEFAULT_BACKENDS,
        description="served devices: 'FAKE' (under the fake's own name, e.g. 'manila' is ibmq_manila) "
        "or 'NAME=FAKE' (e.g. 'ibm_brisbane_2=kyiv'); FAKE is a fake backend folder or device name",
    )
    queue_delay: float = Field(0.0, ge=0, description="seconds a job waits in the queue before it may run")
    concurrency: int = Field(1, ge=1, description="jobs executing at once per backend")
    min_run_seconds: float = Field(0.0, ge=0, description="a job stays Running at least this long")
    cancel_latency: float = Field(
        2.0,
        ge=0,
        description="seconds a Running job stays Running after its cancel is accepted, as on IBM "
        "(a Queued job is Cancelled at once)",
    )
    backend_cancel_latency: dict[str, float] = Field(
        default_factory=dict,
        description="cancel_latency of some backends, by served name (e.g. {'ibmq_lima': 45}): IBM "
        "takes longer to stop a job on some devices than on others",
    )
    session_max_ttl: int = Field(
        28800,
        ge=1,
        description="the longest maximum TTL a session or batch may ask for (seconds), and its default",
    )
    session_interactive_ttl: int = Field(
        60,
        ge=1,
        description="seconds a dedicated session may go without a job before it is deactivated",
    )
    token_lifetime: int = Field(3600, ge=10, description="seconds an IAM access token lives")
    database: Path | None = None
    faults: tuple[FaultRule, ...] = ()
    job_rate_limit: JobRateLimitSpec | None = Field(
        None, description="job creations per rolling window per API key, e.g. '5/60' (None: unlimited)"
    )
    result_retention: float | None = Field(
        None,
        ge=0,
        description="seconds after its end that a job is kept, e.g. '10m' or 600; past it the job, its "
        "result with it, answers 404 as a deleted one does and is listed no more (None: kept for ever)",
    )
    usage_limit_seconds: float | None = Field(
        None,
        ge=0,
        description="the instance's usage limit in QPU seconds, e.g. '600s' (the Open Plan's 10 minutes): "
        "once the jobs' QPU seconds reach it, POST /jobs answers 409 (None: unlimited)",
    )
    job_qpu_seconds: float | None = Field(
        None,
        ge=0,
        description="QPU seconds charged to each job that completes (None: its execution's wall time)",
    )
    fault_seed: int = 0
    # Tag prefixes that mark a job for a scripted failure, e.g. "emulator:fail=reason text".
    fail_tag_prefix: str = "emulator:fail"

    @field_validator("job_rate_limit", mode="before")
    @classmethod
    def _rate_from_text(cls, value: object) -> object:
        return JobRateLimitSpec.parse(value) if isinstance(value, str) else value

    @field_validator("result_retention", "usage_limit_seconds", mode="before")
    @classmethod
    def _seconds_from_span(cls, value: object) -> object:
        return parse_span(value) if isinstance(value, str) else value

    @field_validator("backends")
    @classmethod
    def _known_fakes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            BackendSpec.parse(text)
        return value

    @field_validator("backend_cancel_latency")
    @classmethod
    def _latencies_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(name for name, seconds in value.items() if seconds < 0)
        if negative:
            raise ValueError(f"backend_cancel_latency of {', '.join(negative)} is negative")
        return value

    def cancel_latency_of(self, backend: str) -> float:
        """Seconds a Running job of ``backend`` stays Running after its cancel is accepted."""
        return self.backend_cancel_latency.get(backend, self.cancel_latency)

    def accepts(self, api_key: str) -> bool:
        """Whether ``api_key`` is one of the configured accounts."""
        return any(key.get_secret_value() == api_key for key in self.api_keys)
