"""IBM sessions and batches as contexts: the submit tasks called inside one put their jobs in it.

IBM recommends a **batch** for many independent jobs and a dedicated **session** for iterative
work (each job depends on the last). ``with ibm_batch(backend) as batch:`` (``async with`` in async
code) opens one on IBM; every submit task called inside it, in the same flow run, sends its jobs
with the session's id, tags them ``prefect-session:<id>`` and returns ``JobRef``\\ s whose
``session_id`` is set. That covers direct calls, ``.submit()`` and ``.map()``: Prefect copies the
caller's context into the worker thread of a task run, and the context is read there.

- ``submit_*_jobs`` splitting pubs into several jobs puts all of them in the session.
- A retry that adopts an earlier job returns that job as IBM holds it, with the session it was
  submitted in (a flow-run retry opens a new session, but adopts the first attempt's jobs).
- A submit called outside the context uses no session.
- Leaving the block closes the session to new jobs (IBM's ``PATCH accepting_jobs=false``, what the
  client's ``Session.close()`` sends) once the submits started inside it with ``.submit()`` or
  ``.map()`` have finished; the jobs already submitted run on.
- Cancelling or crashing the run cancels the session with its jobs: the layer that cancels the
  run's jobs (the sensor, the flow hooks, the reaper; see ``cancellation``) cancels every pending
  job of the session once, then the session once (``DELETE /sessions/{id}/close``, the client's
  ``Session.cancel()``).
- A session lives at most ``max_time`` seconds (IBM's maximum TTL): jobs still queued when it
  ends fail, and their waits raise ``JobFailedError`` with IBM's reason.

A detached job (meant for a later flow) cannot be in a session: cancelling the run cancels the
session and everything in it. A submit for another backend, or with other credentials, than the
session's is refused before anything is sent.
"""

from __future__ import annotations

import contextvars
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from prefect.futures import PrefectFuture

from prefect_qiskit_jobs.blocks import CredentialsLike, aresolve_credentials, resolve_credentials
from prefect_qiskit_jobs.errors import InvalidJobInputError, QiskitJobsError, SessionUsageError
from prefect_qiskit_jobs.logs import run_logger

if TYPE_CHECKING:
    from prefect_qiskit_jobs.ibm.gateway import IQPGateway

# How long leaving a block waits for its close request when the block is being interrupted.
CLOSE_TIME_CAP = 30.0

_current: contextvars.ContextVar[IBMQuantumSession | None] = contextvars.ContextVar(
    "prefect_qiskit_jobs_session", default=None
)


class IBMQuantumSession:
    """An IBM session or batch on one backend, opened for a ``with``/``async with`` block.

    Made by ``ibm_session`` and ``ibm_batch``; ``session_id`` is IBM's id once the block is entered.
    """

    def __init__(
        self,
        backend: str,
        *,
        batch: bool,
        credentials: CredentialsLike = None,
        max_time: int | str | None = None,
    ) -> None:
        if not isinstance(backend, str) or not backend:
            raise InvalidJobInputError(
                f"backend must be a backend name, e.g. 'ibm_brisbane', not {backend!r}"
            )
        if max_time is not None and (isinstance(max_time, bool) or not isinstance(max_time, (int, str))):
            raise InvalidJobInputError(
                f"max_time must be seconds or a string like '2h 30m', not {max_time!r}"
            )
        if isinstance(max_time, int) and max_time <= 0:
            raise InvalidJobInputError(f"max_time must be a positive number of seconds, not {max_time}")
        self.backend = backend
        self.batch = batch
        self.max_time = max_time
        self._credentials = credentials
        self._gateway: IQPGateway | None = None
        self._session_id: str | None = None
        self._closed = False
        self._token: contextvars.Token[IBMQuantumSession | None] | None = None
        self._futures: list[PrefectFuture[Any]] = []
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return "ibm_batch" if self.batch else "ibm_session"

    @property
    def session_id(self) -> str:
        """IBM's id of the session; set once the block is entered."""
        if self._session_id is None:
            raise SessionUsageError(
                f"The {self.kind} on {self.backend} is not open: enter its with block first"
            )
        return self._session_id

    @property
    def closed(self) -> bool:
        return self._closed

    def credentials_match(self, gateway: IQPGateway) -> bool:
        """Whether a submit through ``gateway`` uses the account and instance this session is on."""
        return (
            self._gateway is not None
            and gateway.credentials.fingerprint() == self._gateway.credentials.fingerprint()
        )

    # ----- sync ------------------------------------------------------------------------------
    def __enter__(self) -> IBMQuantumSession:
        from prefect_qiskit_jobs.ibm.gateway import gateway_for

        self._open(gateway_for(resolve_credentials(self._credentials)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()
        if exc_type is None:
            self._wait_for_submits()
        self._close()

    # ----- async -----------------------------------------------------------------------------
    async def __aenter__(self) -> IBMQuantumSession:
        from prefect_qiskit_jobs.ibm.gateway import gateway_for

        gateway = gateway_for(await aresolve_credentials(self._credentials))
        await anyio.to_thread.run_sync(self._open_on_ibm, gateway)
        self._enter()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()
        if exc_type is None:
            await anyio.to_thread.run_sync(self._wait_for_submits)
        # Interrupted or not, the close is sent, shielded and capped in time.
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIME_CAP):
            await anyio.to_thread.run_sync(self._close, abandon_on_cancel=True)

    # ----- shared ----------------------------------------------------------------------------
    def _open(self, gateway: IQPGateway) -> None:
        self._open_on_ibm(gateway)
        self._enter()

    def _open_on_ibm(self, gateway: IQPGateway) -> None:
        if self._session_id is not None:
            raise SessionUsageError(f"The {self.kind} {self._session_id} was already opened; make a new one")
        self._session_id = gateway.open_session(self.batch, self.backend, self.max_time)
        self._gateway = gateway
        limit = f", at most {self.max_time} s" if self.max_time is not None else ""
        run_logger(__name__).info("Opened %s %s on %s%s", self.kind, self._session_id, self.backend, limit)

    def _enter(self) -> None:
        self._token = _current.set(self)

    def _leave(self) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def track(self, future: PrefectFuture[Any]) -> None:
        """A submit started inside the block with ``.submit()``/``.map()``: leaving waits for it."""
        with self._lock:
            self._futures.append(future)

    def _wait_for_submits(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        for future in futures:
            future.wait()

    def _close(self) -> None:
        self._closed = True
        if self._gateway is None or self._session_id is None:
            return
        try:
            self._gateway.close_session(self._session_id)
        except QiskitJobsError as exc:
            # Its jobs are in; the session still ends at its maximum TTL.
            run_logger(__name__).warning(
                "Could not close %s %s to new jobs: %s", self.kind, self._session_id, exc
            )
            return
        run_logger(__name__).info("Closed %s %s to new jobs; its jobs run on", self.kind, self._session_id)


def ibm_session(
    backend: str, *, credentials: CredentialsLike = None, max_time: int | str | None = None
) -> IBMQuantumSession:
    """A dedicated IBM session on ``backend`` for iterative work: submits inside the block join it.

    Args:
        backend: Backend name, e.g. ``"ibm_brisbane"``; every submit inside must use it.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None for the
            ``QISKIT_IBM_*`` environment; submits inside must use the same account.
        max_time: IBM's maximum TTL, seconds or a string like ``"2h 30m"``; jobs still queued when
            it passes fail. None: IBM's default.

    Example:
        >>> @flow
        ... async def vqe(credentials: str = "ibm-quantum"):
        ...     async with ibm_session("ibm_brisbane", credentials=credentials, max_time=3600):
        ...         job = await asubmit_estimator_job(pubs, backend="ibm_brisbane", credentials=credentials)
        ...         await await_for_job(job, credentials=credentials)  # doctest: +SKIP
    """
    return IBMQuantumSession(backend, batch=False, credentials=credentials, max_time=max_time)


def ibm_batch(
    backend: str, *, credentials: CredentialsLike = None, max_time: int | str | None = None
) -> IBMQuantumSession:
    """An IBM batch on ``backend`` for many independent jobs: submits inside the block join it.

    Arguments as for ``ibm_session``.

    Example:
        >>> @flow
        ... def sweep(credentials: str = "ibm-quantum"):
        ...     with ibm_batch("ibm_brisbane", credentials=credentials) as batch:
        ...         jobs = submit_sampler_jobs(circuits, backend="ibm_brisbane", credentials=credentials)
        ...     return batch.session_id  # doctest: +SKIP
    """
    return IBMQuantumSession(backend, batch=True, credentials=credentials, max_time=max_time)


def current_session() -> IBMQuantumSession | None:
    """The session of the innermost ``ibm_session``/``ibm_batch`` block the caller is in, if any."""
    return _current.get()


def track(future: Any) -> None:
    """Let the current block (if any) wait for a submit started inside it before it closes."""
    session = _current.get()
    if session is None:
        return
    for item in future if isinstance(future, list) else [future]:
        if isinstance(item, PrefectFuture):
            session.track(item)


def check_use(session: IBMQuantumSession, backend: str, detached: bool) -> None:
    """Refuse, before any request, a submit that cannot join ``session``."""
    if session.closed:
        raise InvalidJobInputError(
            f"The {session.kind} {session.session_id} was closed before this submit ran: "
            "start submits inside its with block, or resolve their futures there"
        )
    if detached:
        raise InvalidJobInputError(
            f"A detached job cannot be in {session.kind} {session.session_id}: cancelling the run "
            "cancels the session and its jobs. Submit it outside the with block"
        )
    if backend != session.backend:
        raise InvalidJobInputError(
            f"This submit is for {backend}, but {session.kind} {session.session_id} runs on "
            f"{session.backend}; submit to {session.backend} or outside the with block"
        )


def check_gateway(session: IBMQuantumSession, gateway: IQPGateway) -> None:
    if not session.credentials_match(gateway):
        raise InvalidJobInputError(
            f"This submit uses other credentials than {session.kind} {session.session_id}; "
            "pass the credentials the session was opened with"
        )
