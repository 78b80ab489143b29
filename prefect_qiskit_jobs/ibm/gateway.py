"""The one module that calls qiskit-ibm-runtime: build clients, submit, read, list, fetch, cancel.

Everything here is blocking; async callers run it on worker threads. Reads and cancels go through
the client's ``RuntimeClient`` (its REST layer, with IAM auth and retries) because the service's
job objects drop the status from list answers and would cost one request per job to learn it.
Submits go through ``SamplerV2``/``EstimatorV2``, or the executor-based ``Sampler``/``Estimator``
(``PrimitiveApi``), so that the client encodes pubs and options exactly as it always does, and
results are decoded with the client's decoders for the job's program. The client's exceptions
become this package's here, with the token scrubbed from every message.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

import requests
from prefect.logging import get_logger
from qiskit.primitives import PrimitiveResult
from qiskit.providers import BackendV2
from qiskit_ibm_runtime import Batch, QiskitRuntimeService, Session
from qiskit_ibm_runtime.accounts.exceptions import AccountsError
from qiskit_ibm_runtime.api.auth import CloudAuth
from qiskit_ibm_runtime.api.client import RuntimeClient
from qiskit_ibm_runtime.api.client_parameters import ClientParameters
from qiskit_ibm_runtime.api.exceptions import RequestsApiError
from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError, IBMRuntimeError

from prefect_qiskit_jobs.errors import (
    TRANSIENT_STATUS,
    ConfigurationError,
    InvalidJobInputError,
    IQPAuthenticationError,
    IQPError,
    IQPUnavailableError,
    JobNotFoundError,
    JobResultExpired,
    QiskitJobsError,
    QPUBudgetExceeded,
    retry_after_of,
)
from prefect_qiskit_jobs.ibm import attempts, short_stack
from prefect_qiskit_jobs.ibm.iam import TokenExchange
from prefect_qiskit_jobs.ibm.listing import PAGE_SIZE, collect_listing
from prefect_qiskit_jobs.ibm.mapping import (
    apply_metrics,
    decode_result,
    primitive_class,
    snapshot_from_api,
)
from prefect_qiskit_jobs.limits.rate import resend_refused
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, Primitive, PrimitiveApi, check_job_id
from prefect_qiskit_jobs.settings import Settings

if TYPE_CHECKING:
    from prefect_qiskit_jobs.blocks import IBMQuantumCredentials

# What IAM and the instance directory answer when they refuse an API key (IAM says 400 for an unknown key).
REFUSED_STATUS = frozenset({400, 401, 403})
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
READ_TIMEOUT_VARIABLE = Settings.variables()["read_timeout"]
# A request that changes nothing (a backend lookup, a listing) and met a transient fault is sent
# again after a backoff of at most this many seconds, within RESEND_WINDOWS of them in all.
RESEND_CAP_SECONDS = 60.0
# A lookup inside a task waits at most this long between re-sends (so about 40 s in all): long
# enough for a single refused, dropped or hung request, short enough that a long outage reaches
# the task's own retries, the one configurable outage limit, which say so in the run log.
IN_TASK_RESEND_CAP_SECONDS = 8.0
# Readings of a listing whose pending set shrank while it was paged (see ``collect_listing``).

_environment_lock = threading.Lock()
_logger = get_logger("prefect_qiskit_jobs.ibm.gateway")


@contextlib.contextmanager
def client_environment(credentials: IBMQuantumCredentials) -> Iterator[None]:
    """Point the client at these credentials' IAM and directory services while it is being built.

    The client reads ``IAM_URL``, ``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL`` from the process
    environment when a service or a REST client is constructed, and keeps what it read. Setting them
    for good would let the last gateway built decide where every later one gets its tokens, so they
    are set for the construction only, one construction at a time, and then put back.
    """
    wanted = credentials.endpoint_environment()
    with _environment_lock:
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def read_timeout() -> float:
    """Seconds to wait for any answer of IBM's job API (``PREFECT_QISKIT_JOBS_READ_TIMEOUT``, default 30).

    The client retries a read that timed out (up to 5 times), so a hung read gives up after at
    most six of these.
    """
    return Settings.read().read_timeout


class CancelOutcome(str, Enum):
    """What a cancel request achieved."""

    CANCELLED = "cancelled"  # IBM accepted the cancel (204)
    ALREADY_FINAL = "already_final"  # IBM answered 409: the job had ended; nothing to do


class IQPGateway:
    """A client for one set of credentials, shared by every task of the process (see ``gateway_for``)."""

    def __init__(self, credentials: IBMQuantumCredentials) -> None:
        self.credentials = credentials
        self._secret = credentials.token.get_secret_value()
        self._lock = threading.Lock()
        self._service: QiskitRuntimeService | None = None
        self._client: RuntimeClient | None = None
        # The instance's backends by name, as last listed; one listing at a time.
        self._backends: dict[str, Any] = {}
        self._backends_lock = threading.Lock()
        self._targets_loaded: set[str] = set()
        # The client's own Session/Batch objects of the sessions this process opened, by id.
        self._sessions: dict[str, Session] = {}
        # The one IAM token manager of every client built here (see ``ibm/iam.py``).
        self._tokens: TokenExchange | None = None

    # ----- clients -----------------------------------------------------------------------
    def service(self) -> QiskitRuntimeService:
        with self._lock:
            if self._service is None:
                with (
                    self.translated("connect to IBM Quantum Platform", connecting=True),
                    client_environment(self.credentials),
                ):
                    self._service = QiskitRuntimeService(
                        channel=self.credentials.channel,
                        token=self._secret,
                        url=self.credentials.url,
                        instance=self.credentials.instance,
                        verify=self.credentials.verify,
                    )
                built = getattr(self._service, "_api_clients", {})
                for client in [self._service._active_api_client, *built.values()]:
                    self._share_tokens(client)
                    attempts.hook(client._session)  # submits learn whether their POST was re-sent
            return self._service

    def client(self) -> RuntimeClient:
        with self._lock:
            if self._client is None:
                params = ClientParameters(
                    channel=self.credentials.channel,
                    token=self._secret,
                    url=self.credentials.url,
                    instance=self.credentials.instance,
                    verify=self.credentials.verify,
                )
                with client_environment(self.credentials):
                    self._client = RuntimeClient(params)
                # The client sets no read timeout, so one hung answer would hold its thread (and
                # the group it reads) for ever; its session takes a per-request default instead.
                self._client._session._timeout = (CONNECT_TIMEOUT, read_timeout())
                self._share_tokens(self._client)
            return self._client

    def _share_tokens(self, client: RuntimeClient) -> None:
        """Give ``client`` the gateway's one token exchange, made like the client's own manager.

        The client falls back to sending the API key when its own exchange fails once (see
        ``ibm/iam.py``); this one sends a failed exchange again, and clients share its token.
        """
        auth = client._session.auth
        if not isinstance(auth, CloudAuth):
            return
        if self._tokens is None:
            self._tokens = TokenExchange(
                auth.tm,
                timeout=(CONNECT_TIMEOUT, read_timeout()),
                resend_cap_seconds=RESEND_CAP_SECONDS,
                scrub=self.scrub,
                log=_logger.warning,
            )
        auth.tm = self._tokens

    def backend(self, name: str, *, resend_cap_seconds: float = IN_TASK_RESEND_CAP_SECONDS) -> BackendV2:
        """The backend by name, with its target; unknown names fail listing the ones that exist.

        The instance's backends are listed once per gateway, however many submits ask at once,
        and kept. A name missing from that listing is looked up afresh once (a backend added
        since the process started) before it is refused. A lookup IBM could not answer for now
        (429, a 5xx, a dropped connection, a timeout) is sent again (``resend_refused``), so one
        transient fault fails no flow that looks a backend up. Inside a task the re-sends stop
        after about 40 s and the task's retries take over; ``get_backend``, which has no task
        around it, passes ``RESEND_CAP_SECONDS`` (five minutes in all).
        """
        with self._backends_lock:
            return resend_refused(
                functools.partial(self._look_up, name),
                _logger.warning,
                resend_cap_seconds,
                refused=f"the lookup of backend {name} (429)",
                idempotent=True,
            )

    def _look_up(self, name: str) -> BackendV2:
        if not self._backends:
            self._list_backends(f"look up backend {name}")
        if name not in self._backends:
            self._refuse_unlisted(name)
            # IBM lists it: added since the listing, or left out by the client (see below).
            self._list_backends(f"look up backend {name}")
        if name not in self._backends:
            raise IQPUnavailableError(
                f"IBM lists backend {name!r}, but the client could not read its configuration for now"
            )
        backend = self._backends[name]
        if name not in self._targets_loaded:
            # The client reads a backend's properties on first use of its target; do it here,
            # where callers expect I/O, so the backend handed out never blocks an event loop.
            with self.translated(f"read the properties of backend {name}"):
                _ = backend.target
            self._targets_loaded.add(name)
        return backend

    def _refuse_unlisted(self, name: str) -> None:
        """Refuse ``name`` if IBM's own listing (one ``GET /backends``) does not have it.

        The client's listing is not enough: it leaves out, with a warning, a backend whose
        configuration read failed, and every backend when the instance's listing failed. That is
        transient, never an unknown name.
        """
        with self.translated("list the instance's backends"):
            listed = {str(entry.get("name")) for entry in self.client().list_backends()}
        if name not in listed:
            raise InvalidJobInputError(
                f"Backend {name!r} does not exist on this instance; available: {', '.join(sorted(listed))}"
            )

    def _list_backends(self, action: str) -> None:
        """Keep each backend of the instance: one ``GET /backends``, and a configuration read per backend.

        Backends already kept stay the same objects, so a target once loaded is never loaded again.
        """
        service = self.service()
        with self.translated(action):
            for backend in service.backends():
                self._backends.setdefault(backend.name, backend)

    # ----- submit --------------------------------------------------------------------------
    def submit(
        self,
        primitive: Primitive,
        pubs: list[Any],
        backend_name: str,
        options: dict[str, Any],
        tags: list[str],
        primitive_api: PrimitiveApi = PrimitiveApi.V2,
        session_id: str | None = None,
    ) -> JobRef:
        """POST one job (in the session ``session_id`` this process opened); returns once IBM accepted it."""
        backend = self.backend(backend_name)
        mode = backend if session_id is None else self._session(session_id)
        primitive_cls = primitive_class(primitive, primitive_api)
        action = f"submit a {primitive.value} job to {backend_name}"
        try:
            job = self._post(primitive_cls, mode, options, tags, pubs, action)
        except QPUBudgetExceeded as refused:
            raise self._with_usage(refused) from None
        return JobRef(
            job_id=job.job_id(),
            backend=backend_name,
            primitive=primitive,
            primitive_api=primitive_api,
            instance=self.credentials.instance,
            tags=tuple(tags),
            created_at=datetime.now(timezone.utc),
            # Not job.session_id: outside a session the client GETs the job to learn it is None.
            session_id=session_id,
        )

    def _post(
        self,
        primitive_cls: type[Any],
        mode: Any,
        options: dict[str, Any],
        tags: list[str],
        pubs: list[Any],
        action: str,
    ) -> Any:
        with self.translated(action, creating_job=True), warnings.catch_warnings():
            # The V2 primitives announce their successor; the wire format they send is what we target.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"qiskit_ibm_runtime")
            warnings.filterwarnings("ignore", message=r".*is deprecated", category=DeprecationWarning)
            # The client warns once the instance's usage limit is reached; IBM's 409 that follows
            # becomes QPUBudgetExceeded, which says it better.
            warnings.filterwarnings(
                "ignore", message=r".*(usage limit|no more time available)", category=UserWarning
            )
            runner = primitive_cls(mode=mode, options=dict(options))
            runner.options.environment.job_tags = list(tags)
            return short_stack.call(runner.run, pubs)

    def _with_usage(self, refused: QPUBudgetExceeded) -> QPUBudgetExceeded:
        """IBM's 409 with the instance's limit and usage, read once; as it came when they cannot be."""
        try:
            usage = self.usage()
        except QiskitJobsError:
            return refused
        limit = usage.get("usage_limit_seconds")
        if limit is None:
            limit = usage.get("usage_allocation_seconds")
        consumed = usage.get("usage_consumed_seconds")
        if limit is None or consumed is None:
            return refused
        return QPUBudgetExceeded(
            f"{refused} (instance usage limit {float(limit):g} s, consumed {float(consumed):.3f} s)",
            budget_seconds=float(limit),
            spent_seconds=float(consumed),
            scope=refused.scope,
        )

    # ----- sessions and batches ----------------------------------------------------------------
    def open_session(self, batch: bool, backend_name: str, max_time: int | str | None) -> str:
        """Open a batch or a dedicated session on a backend, as the client's ``Batch``/``Session`` do."""
        backend = self.backend(backend_name)
        kind = Batch if batch else Session
        with self.translated(f"open a {'batch' if batch else 'session'} on {backend_name}"):
            session = kind(backend=backend, max_time=max_time)
        session_id: str | None = session.session_id
        if session_id is None:
            raise InvalidJobInputError(
                f"{backend_name} is a simulator: IBM opens no sessions or batches on it"
            )
        with self._lock:
            self._sessions[session_id] = session
        return session_id

    def _session(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise InvalidJobInputError(f"Session {session_id} was not opened with these credentials")
        return session

    def close_session(self, session_id: str) -> None:
        """Let the session accept no more jobs (``PATCH``); its jobs run on."""
        session = self._session(session_id)
        with self.translated(f"close session {session_id}"):
            session.close()

    def cancel_session(self, session_id: str) -> CancelOutcome:
        """End a session now, cancelling its pending jobs (``DELETE .../close``); any process may."""
        try:
            with self.translated(f"cancel session {session_id}"):
                self.client().cancel_session(session_id)
        except IQPError as exc:
            if exc.status_code in (404, 409):
                return CancelOutcome.ALREADY_FINAL
            raise
        return CancelOutcome.CANCELLED

    # ----- reads ---------------------------------------------------------------------------
    def read(self, job_id: str) -> JobSnapshot:
        """One job's state (``GET /jobs/{id}``)."""
        check_job_id(job_id)
        with self.translated(f"read job {job_id}", job_id=job_id):
            answer = short_stack.call(functools.partial(self.client().job_get, job_id, exclude_params=True))
            return snapshot_from_api(answer)

    def list_jobs(
        self,
        *,
        tags: list[str] | None = None,
        pending: bool | None = None,
        limit: int | None = None,
        backend: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[JobSnapshot]:
        """Jobs carrying all ``tags`` (newest first), every page of them (see ``collect_listing``).

        ``backend``, ``created_after`` and ``created_before`` narrow the listing on IBM's side, as
        ``pending`` does.
        """

        def fetch_page(skip: int, page_size: int) -> dict[str, Any]:
            read = functools.partial(
                self.client().jobs_get,
                limit=page_size,
                skip=skip,
                pending=pending,
                job_tags=tags,
                backend_name=backend,
                created_after=created_after,
                created_before=created_before,
            )
            answer: dict[str, Any] = short_stack.call(read)
            return answer

        with self.translated("list jobs"):
            return [snapshot_from_api(job) for job in collect_listing(fetch_page, limit=limit)]

    def count_pending(self, tags: list[str]) -> int:
        """How many jobs carrying all ``tags`` (none: every job of the instance) are queued or running.

        One request: a listing of one job, whose ``count`` is the number of all that match.
        """
        with self.translated("count pending jobs"):
            answer = self.client().jobs_get(limit=1, pending=True, job_tags=tags or None)
        return int(answer.get("count", 0))

    def list_since(
        self,
        *,
        tag: str,
        backend: str | None,
        created_after: datetime | None,
        all_pages: bool,
        read_on: Callable[[list[JobSnapshot]], bool] | None = None,
    ) -> tuple[list[JobSnapshot], bool]:
        """Jobs tagged ``tag`` created since ``created_after``, oldest first: one page, or every page.

        Oldest first and not filtered by status, the listing only grows at its end while it is
        read, so its pages never shift. Without ``all_pages``, the next page is read while
        ``read_on(page)`` says it may hold news. Returns the jobs and whether they are all there are.
        """
        jobs: list[JobSnapshot] = []
        with self.translated("list jobs"):
            while True:
                answer = self.client().jobs_get(
                    limit=PAGE_SIZE,
                    skip=len(jobs),
                    backend_name=backend,
                    job_tags=[tag],
                    created_after=created_after,
                    descending=False,
                )
                page = [snapshot_from_api(job) for job in answer.get("jobs") or []]
                jobs.extend(page)
                complete = not page or len(jobs) >= int(answer.get("count", 0))
                if complete or not (all_pages or (read_on is not None and read_on(page))):
                    return jobs, complete

    def usage(self) -> dict[str, Any]:
        """The instance's usage (``GET /instances/usage``): consumed, limit, whether it is reached."""
        with self.translated("read the instance's usage"):
            usage: dict[str, Any] = self.client().cloud_usage()
            return usage

    def metrics(self, job_id: str) -> dict[str, Any]:
        with self.translated(f"read metrics of job {job_id}", job_id=job_id):
            metrics: dict[str, Any] = short_stack.call(self.client().job_metadata, job_id)
            return metrics

    def read_in_full(self, job_id: str) -> JobSnapshot:
        """One job's state with what only ``/metrics`` tells: queue position, run times, QPU seconds.

        Two requests (``GET /jobs/{id}``, ``GET /jobs/{id}/metrics``); for a person looking at one
        job, not for loops.
        """
        snapshot = self.read(job_id)
        return apply_metrics(snapshot, self.metrics(job_id))

    def result(self, job_id: str, program_id: str | None = None) -> PrimitiveResult[Any]:
        """The job's result, decoded with the client's own decoders for its program.

        A job known by its id alone is taken for an ``executor`` job when its result is a quantum
        program result (it names its ``schema_version``), as only those are.
        """
        check_job_id(job_id)
        with self.translated(f"fetch the result of job {job_id}", job_id=job_id):
            raw = short_stack.call(self.client().job_results, job_id)
        if not raw:
            # IBM answers a private job's result once; every later read is empty (the client's
            # RuntimeJobV2.result returns None then).
            raise JobResultExpired(
                job_id, "IBM answered an empty result, as it does once a private job's result was read"
            )
        try:
            result = decode_result(raw, program_id)
        except ValueError:
            result = None
        if not isinstance(result, PrimitiveResult):
            # A job that ended without a result answers with its error text instead.
            raise IQPError(self.scrub(f"IBM sent no result for job {job_id}: {str(raw)[:300]!r}"))
        return result

    def cancel(self, job_id: str) -> CancelOutcome:
        """Ask IBM to cancel; a 409 (the job already ended) is an outcome, not an error."""
        check_job_id(job_id)
        try:
            with self.translated(f"cancel job {job_id}", job_id=job_id):
                short_stack.call(self.client().job_cancel, job_id)
        except IQPError as exc:
            if exc.status_code == 409:
                return CancelOutcome.ALREADY_FINAL
            raise
        return CancelOutcome.CANCELLED

    def delete(self, job_id: str) -> bool:
        """Delete a final job on IBM (``DELETE /jobs/{id}``), its result with it; for good.

        Returns:
            True when this call deleted it; False when IBM had it no more (404: deleted by another
            process, or past its retention), which is the outcome wanted too.
        """
        check_job_id(job_id)
        try:
            with self.translated(f"delete job {job_id}", job_id=job_id):
                self.client().job_delete(job_id)
        except JobNotFoundError:
            return False
        return True

    def replace_tags(self, job_id: str, tags: list[str]) -> None:
        """Replace the job's tags with ``tags`` (``PUT /jobs/{id}/tags``); IBM keeps no other copy."""
        check_job_id(job_id)
        with self.translated(f"tag job {job_id}", job_id=job_id):
            self.client().update_tags(job_id, list(tags))

    # ----- errors ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def translated(
        self, action: str, job_id: str | None = None, connecting: bool = False, creating_job: bool = False
    ) -> Iterator[None]:
        """Turn the client's exceptions into this package's, never letting the token through.

        ``connecting``: the call builds the service, so a value the client rejects is a setting
        (``ConfigurationError``), not a job input. ``creating_job``: the call POSTs a job, to which
        IBM answers 409 when the instance's usage limit is reached (``QPUBudgetExceeded``).
        """
        try:
            yield
        except (InvalidJobInputError, IQPError, ConfigurationError, QPUBudgetExceeded):
            raise
        except IBMNotAuthorizedError as exc:
            raise self._unauthorized(
                self.scrub(f"IBM refused the credentials while trying to {action}: {exc}"), 401
            ) from None
        except AccountsError as exc:
            raise self._account_error(action, exc) from None
        except RequestsApiError as exc:
            raise self._api_error(action, exc, job_id, creating_job) from None
        except IBMRuntimeError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, RequestsApiError):
                raise self._api_error(action, cause, job_id, creating_job) from None
            message = self.scrub(f"Could not {action}: {exc}")
            if "input" in type(exc).__name__.lower() or "Invalid" in type(exc).__name__:
                raise InvalidJobInputError(message) from None
            raise IQPError(message) from None
        except ValueError as exc:
            kind = ConfigurationError if connecting else InvalidJobInputError
            raise kind(self.scrub(f"Could not {action}: {exc}")) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            # A connection dropped, refused or timed out below the client's own handling: transient.
            raise IQPUnavailableError(
                self.scrub(f"IBM Quantum Platform could not be reached to {action}: {exc}")
            ) from None
        except Exception as exc:
            if type(exc).__module__.startswith("qiskit_ibm_runtime") or "Account" in type(exc).__name__:
                raise ConfigurationError(self.scrub(f"Could not {action}: {exc}")) from None
            raise

    def _api_error(
        self, action: str, exc: RequestsApiError, job_id: str | None, creating_job: bool = False
    ) -> QiskitJobsError:
        status = exc.status_code
        message = self.scrub(f"IBM Quantum Platform could not {action}: {exc}")
        if status == 409 and creating_job:
            return QPUBudgetExceeded(
                f"{message}. The instance's usage limit is reached (IBM answered 409); nothing was "
                "submitted. Running jobs go on; new ones are accepted when the instance has time again",
                scope="the instance (IBM's usage limit)",
            )
        if status == 401:
            return self._unauthorized(message, status)
        if status == 404 and job_id:
            return JobNotFoundError(
                f"No job {job_id} on this instance (never, or no more: deleted or past IBM's retention)",
                status,
            )
        if status in TRANSIENT_STATUS or "maintenance" in str(exc):
            return IQPUnavailableError(message, status, retry_after=_retry_after(exc))
        return IQPError(message, status)

    def _unauthorized(self, message: str, status: int) -> IQPError:
        """A 401: the key refused, unless the last token exchange failed for now (the client then
        sent the key itself, which IBM always refuses): that is IBM unavailable, and sent again."""
        failure = self._tokens.failure if self._tokens is not None else None
        if failure is None:
            return IQPAuthenticationError(message, status)
        return IQPUnavailableError(
            f"{message} (sent without a token: {failure})", failure.status_code, failure.retry_after
        )

    def _account_error(self, action: str, exc: AccountsError) -> QiskitJobsError:
        """The client could not list the instances: the key was refused, IBM was unreachable, or else."""
        cause = exc.__cause__
        status = getattr(cause, "code", None)
        detail = self.scrub(f"{exc} ({cause})" if cause is not None else str(exc))
        if status in REFUSED_STATUS:
            return IQPAuthenticationError(
                f"IBM Cloud refused the API key while trying to {action}: {detail}. "
                "Check the token (an IBM Cloud API key) of your IBMQuantumCredentials or QISKIT_IBM_TOKEN",
                status,
            )
        if status in TRANSIENT_STATUS or isinstance(
            cause, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
        ):
            return IQPUnavailableError(f"IBM Cloud could not be reached to {action}: {detail}", status)
        return ConfigurationError(f"Could not {action}: {detail}")

    def scrub(self, text: str) -> str:
        """``text`` with the token replaced, for anything that may be shown or logged."""
        return text.replace(self._secret, "***") if self._secret else text


def _retry_after(exc: BaseException) -> float | None:
    return retry_after_of(getattr(exc.__cause__, "response", None))


_gateways: dict[tuple[object, ...], IQPGateway] = {}
_gateways_lock = threading.Lock()


def gateway_for(credentials: IBMQuantumCredentials) -> IQPGateway:
    """The process's gateway for these credentials: one service and one REST client each.

    Blocks of one account with other limits get gateways of their own, since a submit obeys the
    limits of its gateway's credentials.
    """
    limits = (credentials.max_jobs_in_flight, credentials.jobs_per_window, credentials.rate_window_seconds)
    key = (credentials.fingerprint(), *limits)
    with _gateways_lock:
        gateway = _gateways.get(key)
        if gateway is None:
            gateway = _gateways[key] = IQPGateway(credentials)
        return gateway
