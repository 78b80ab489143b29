"""What every route shares: the emulator's state, IBM's error shape and codes, and the token check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from dateutil import parser as dateparser
from fastapi import Depends, Request

from prefect_qiskit_jobs.emulator.auth import TokenIssuer
from prefect_qiskit_jobs.emulator.catalog import Catalog, Device
from prefect_qiskit_jobs.emulator.config import EmulatorConfig
from prefect_qiskit_jobs.emulator.queue import QueueModel
from prefect_qiskit_jobs.emulator.ratelimit import JobRateLimit
from prefect_qiskit_jobs.emulator.store import JobRecord, JobStore, utcnow
from prefect_qiskit_jobs.emulator.traffic import Traffic

# IBM's codes (https://quantum.cloud.ibm.com/docs/errors); 1291/1292/1217 are the emulator's own choices.
CODE_INVALID_JOB = 1002
CODE_BACKEND_NOT_FOUND = 1007
CODE_NOT_AUTHORIZED = 1200
CODE_INVALID_CREDENTIALS = 1201
CODE_JOB_NOT_FOUND = 1291
CODE_CALIBRATION_NOT_FOUND = 1292
CODE_SESSION_CLOSED = 1217
CODE_INVALID_STATE = 1300
CODE_TOO_MANY_REQUESTS = 1202
CODE_NO_ROUTE = 1293  # the emulator's own: no such path, or not with this method
# JSON bodies nested deeper than this are refused: IBM's requests nest a few levels (pubs, options),
# and decoding or re-encoding a deeper body could exhaust the interpreter's recursion limit.
MAX_JSON_DEPTH = 100
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
# The media types a request body may be declared as. IBM accepts a JSON body declared text/plain:
# prefect-qiskit 0.2.1 posts its jobs that way (aiohttp's default for a string) and its tests replay
# IBM's answers to those requests. Any other declaration is refused: the harsher reading.
BODY_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
# The emulator's own choice: IBM documents the 409 and its message, not a code for it.
CODE_USAGE_LIMIT = 1353
USAGE_LIMIT_MESSAGE = "Usage exceeds instance limit"
# The ``IBM-API-Version`` dates served: qiskit-ibm-runtime 0.51's, and the older one tools with their
# own HTTP clients still send (prefect-qiskit 0.2.1). Both answer alike here: no route differs by version.
API_VERSIONS = ("2025-01-01", "2026-04-15")


class ApiError(Exception):
    """An error answered in IBM's error shape, with extra ``headers`` (a 429's ``Retry-After``)."""

    def __init__(self, status: int, message: str, code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


@dataclass
class Emulator:
    """The state of one running emulator, shared by its routes."""

    config: EmulatorConfig
    catalog: Catalog
    store: JobStore
    queue: QueueModel
    traffic: Traffic = field(default_factory=Traffic)
    issuer: TokenIssuer = field(init=False)
    job_rate_limit: JobRateLimit | None = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = TokenIssuer(self.config.token_lifetime, self.store.secret("token-signing-key"))
        spec = self.config.job_rate_limit
        self.job_rate_limit = JobRateLimit(spec) if spec is not None else None

    def expire(self) -> None:
        """Delete the jobs whose retention has passed (their end plus ``result_retention``), as IBM does.

        Computed from the stored end times whenever a route looks at jobs, so no timer runs and a
        test ages a job (``POST /_emulator/jobs/{id}/age``) instead of waiting for it.
        """
        retention = self.config.result_retention
        if retention is not None:
            self.store.delete_ended_before(utcnow() - timedelta(seconds=retention))

    def job(self, job_id: str) -> JobRecord:
        self.expire()
        job = self.store.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Job {job_id} not found", CODE_JOB_NOT_FOUND)
        return job

    def usage_consumed(self) -> float:
        """The QPU seconds the instance's jobs were charged, deleted ones too (mock twins' dry runs
        cost nothing)."""
        kept = sum(job.quantum_seconds for job in list(self.store.jobs.values()) if not job.dry_run)
        return kept + self.store.deleted_usage

    def usage_limit_reached(self) -> bool:
        limit = self.config.usage_limit_seconds
        return limit is not None and self.usage_consumed() >= limit

    def device(self, name: str) -> Device:
        device = self.catalog.get(name)
        if device is None:
            raise ApiError(404, f"Backend {name} not found", CODE_BACKEND_NOT_FOUND)
        return device


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


EmulatorDep = Annotated[Emulator, Depends(_emulator)]


def require_token(request: Request, emulator: EmulatorDep) -> None:
    """IBM's runtime API answers 401 without a valid IAM token, 403 for another instance's CRN,
    400 for an ``IBM-API-Version`` it does not serve, 415 for a body not declared JSON."""
    if not emulator.issuer.verify(request.headers.get("authorization")):
        raise ApiError(401, "Unauthorized: a valid IAM bearer token is required", CODE_INVALID_CREDENTIALS)
    crn = request.headers.get("service-crn")
    if crn is not None and crn != emulator.config.instance_crn:
        raise ApiError(403, f"You are not authorized to use instance {crn}", CODE_NOT_AUTHORIZED)
    # A version IBM does not serve, or none, is refused: IBM's docs leave it open; the harsher reading.
    version = request.headers.get("ibm-api-version")
    if version not in API_VERSIONS:
        served = ", ".join(API_VERSIONS)
        raise ApiError(
            400, f"IBM-API-Version {version!r} is not served; use one of {served}", CODE_INVALID_JOB
        )
    # The body must still parse as JSON whatever it is declared as (see BODY_MEDIA_TYPES).
    if request.method in WRITE_METHODS and _has_body(request):
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in BODY_MEDIA_TYPES:
            raise ApiError(
                415, f"The request body must be declared as JSON, not {media_type!r}", CODE_INVALID_JOB
            )


def _has_body(request: Request) -> bool:
    return "transfer-encoding" in request.headers or request.headers.get("content-length", "0") != "0"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(raw: bytes, empty: bytes | None = None) -> dict[str, Any]:
    """A request body that must be a JSON object (``empty`` stands in for an empty body)."""
    too_deep = False
    try:
        body = json.loads(raw or empty or b"", parse_constant=_refuse_constant)
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON", CODE_INVALID_JOB) from None
    except RecursionError:  # nested past the interpreter's own limit
        too_deep = True
    if too_deep or _depth(body) > MAX_JSON_DEPTH:
        raise ApiError(
            400, f"The request body is nested deeper than {MAX_JSON_DEPTH} levels", CODE_INVALID_JOB
        )
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object", CODE_INVALID_JOB)
    return body


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar is 0), found without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def flag(value: str | None) -> bool:
    """A query flag: ``true`` or ``false`` in any case (the client sends ``True``); absent is false.

    Anything else is refused: IBM's docs leave it open; the harsher reading.
    """
    if value is None:
        return False
    word = value.lower()
    if word not in ("true", "false"):
        raise ApiError(400, f"A query flag must be true or false, not {value!r}", CODE_INVALID_JOB)
    return word == "true"


def as_utc(text: str | None, name: str) -> datetime | None:
    """A query's date-time (ISO 8601, naive taken as UTC); None when absent, 400 when malformed."""
    if text is None:
        return None
    try:
        moment: datetime = dateparser.isoparse(text)
        # In UTC at once: a moment that has none (year 1 at +14:00) is refused here, not compared later.
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        raise ApiError(
            400, f"'{name}' must be an ISO 8601 date-time, not {text!r}", CODE_INVALID_JOB
        ) from None
