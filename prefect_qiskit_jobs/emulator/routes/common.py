"""What every route shares: the emulator's state, IBM's error shape and codes, and the token check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any

from dateutil import parser as dateparser
from fastapi import Depends, Request

from prefect_qiskit_jobs.emulator.auth import TokenIssuer
from prefect_qiskit_jobs.emulator.catalog import Catalog, Device
from prefect_qiskit_jobs.emulator.config import EmulatorConfig
from prefect_qiskit_jobs.emulator.queue import QueueModel
from prefect_qiskit_jobs.emulator.ratelimit import JobRateLimit
from prefect_qiskit_jobs.emulator.store import JobRecord, JobStore
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

    def job(self, job_id: str) -> JobRecord:
        job = self.store.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Job {job_id} not found", CODE_JOB_NOT_FOUND)
        return job

    def usage_consumed(self) -> float:
        """The QPU seconds the instance's jobs were charged (mock twins' dry runs cost nothing)."""
        return sum(job.quantum_seconds for job in list(self.store.jobs.values()) if not job.dry_run)

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
    400 for an ``IBM-API-Version`` it does not serve."""
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


def json_object(raw: bytes, empty: bytes | None = None) -> dict[str, Any]:
    """A request body that must be a JSON object (``empty`` stands in for an empty body)."""
    try:
        body = json.loads(raw or empty or b"")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON", CODE_INVALID_JOB) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object", CODE_INVALID_JOB)
    return body


def flag(value: str | None) -> bool:
    """A query flag as IBM reads it: only ``true`` (any case) is true."""
    return (value or "false").lower() == "true"


def as_utc(text: str | None, name: str) -> datetime | None:
    """A query's date-time (ISO 8601, naive taken as UTC); None when absent, 400 when malformed."""
    if text is None:
        return None
    try:
        moment: datetime = dateparser.isoparse(text)
    except ValueError:
        raise ApiError(
            400, f"'{name}' must be an ISO 8601 date-time, not {text!r}", CODE_INVALID_JOB
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
