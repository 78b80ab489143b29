"""What the emulator saw, and the faults it injects: an ASGI middleware in front of every route.

Each request is matched to its route template (``GET /jobs/{job_id}``) once; it is counted per
route, for job routes per job, and per account (the ``sub`` of its bearer token, so that clients
sharing one emulator under different API keys are told apart); then the seeded fault rules may
answer it with 429 or 503, delay it, hold it unanswered, or drop its connection. Tests and
benchmarks read the counters on the admin route.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import random
import threading
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .config import FaultRule

ADMIN_PREFIX = "/_emulator"
RUNTIME_PREFIX = "/experimental/api/v1"
CANCEL_ROUTE = "POST /jobs/{job_id}/cancel"
# The runtime API's resources whose second path segment is an id or a name.
_NAMED = {"jobs": "{job_id}", "backends": "{name}", "sessions": "{session_id}"}
# Authorization headers already read to their account; cleared when it grows past this.
_ACCOUNTS_CACHED = 4096


def route_of(method: str, path: str) -> tuple[str, str | None]:
    """``("GET /jobs/{job_id}", "<id>")`` for ``GET /experimental/api/v1/jobs/<id>``: the counting key."""
    if path.startswith(RUNTIME_PREFIX):
        path = path[len(RUNTIME_PREFIX) :]
    parts = path.split("/")
    job_id = None
    if len(parts) > 2 and parts[1] in _NAMED and parts[2]:
        job_id = parts[2] if parts[1] == "jobs" else None
        parts[2] = _NAMED[parts[1]]
    elif len(parts) == 3 and parts[1] == "global-catalog":
        parts[2] = "{plan_id}"
    return f"{method} {'/'.join(parts)}", job_id


class Traffic:
    """Request counters by route, by job and by injected fault, and the fault rules in force.

    Thread-safe and resettable. The rules start as configured and can be replaced while the
    emulator runs (tests switch faults on a shared emulator); each replacement, and each reset,
    reseeds the generator so that the same requests draw the same faults.
    """

    def __init__(self, rules: tuple[FaultRule, ...] = (), seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.rules, self.seed = rules, seed
        self.random = random.Random(seed)
        # Bumped by every reset and replacement of the rules: it ends the hangs in progress.
        self.generation = 0
        self.hanging = 0  # requests held right now (a gauge: resets leave it alone)
        self.reset()

    def reset(self) -> None:
        """Zero every counter and restart the fault draws from the seed."""
        with self._lock:
            self.routes: Counter[str] = Counter()
            self.jobs: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self.accounts: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self.faults: defaultdict[str, Counter[str]] = defaultdict(Counter)
            # A job's requests a fault answered before they took effect (refused, dropped, hung up on).
            self.refused: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self.injected: Counter[int] = Counter()
            self.rate_limited = 0  # job creations refused by the job rate limit (429)
            self.random = random.Random(self.seed)
            self.generation += 1

    def set_faults(self, rules: tuple[FaultRule, ...], seed: int) -> None:
        with self._lock:
            self.rules, self.seed = rules, seed
            self.injected = Counter()
            self.random = random.Random(seed)
            self.generation += 1

    def spend(self, index: int, rule: FaultRule) -> bool:
        """Count one fault of rule ``index``; False once the rule's ``limit`` is spent."""
        with self._lock:
            if rule.limit is not None and self.injected[index] >= rule.limit:
                return False
            self.injected[index] += 1
            return True

    def count(self, route: str, job_id: str | None, account: str | None = None) -> None:
        with self._lock:
            self.routes[route] += 1
            if job_id is not None:
                self.jobs[job_id][route] += 1
            if account is not None:
                self.accounts[account][route] += 1

    def count_account(self, account: str, route: str) -> None:
        """Count a request for ``account`` that carried no token (an API key's exchange for one)."""
        with self._lock:
            self.accounts[account][route] += 1

    def count_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def count_fault(self, route: str, kind: str) -> None:
        with self._lock:
            self.faults[route][kind] += 1

    def count_refused(self, route: str, job_id: str | None) -> None:
        """Count a job's request that a fault answered before it took effect."""
        if job_id is None:
            return
        with self._lock:
            self.refused[job_id][route] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "routes": dict(self.routes),
                "jobs": {job: dict(c) for job, c in self.jobs.items()},
                "cancels": {job: c[CANCEL_ROUTE] for job, c in self.jobs.items() if c[CANCEL_ROUTE]},
                "accounts": {account: dict(c) for account, c in self.accounts.items()},
                # Cancel requests a fault refused before they took effect (a 429, a 503, a drop).
                "cancels_refused": {
                    job: c[CANCEL_ROUTE] for job, c in self.refused.items() if c[CANCEL_ROUTE]
                },
                "faults": {route: dict(c) for route, c in self.faults.items()},
                "hanging": self.hanging,
                "rate_limited": self.rate_limited,
            }

    def hang(self, change: int) -> None:
        """Count a request held by a hang fault (+1) or let go (-1)."""
        with self._lock:
            self.hanging += change


class TrafficMiddleware:
    """Counts every request by its route template and applies the fault rules to IQP routes."""

    def __init__(self, app: ASGIApp, traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic
        self._accounts: dict[bytes, str | None] = {}

    def _account(self, scope: Scope) -> str | None:
        """The ``sub`` of the request's bearer token, unchecked (the routes check it): for counting only."""
        header = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        if header is None or not header.startswith(b"Bearer "):
            return None
        if header not in self._accounts:
            if len(self._accounts) >= _ACCOUNTS_CACHED:
                self._accounts.clear()
            try:
                claims = jwt.decode(header[len(b"Bearer ") :], options={"verify_signature": False})
                self._accounts[header] = str(claims.get("sub")) if "sub" in claims else None
            except jwt.PyJWTError:
                self._accounts[header] = None
        return self._accounts[header]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        route, job_id = route_of(scope["method"], scope["path"])
        self.traffic.count(route, job_id, self._account(scope))
        query = scope.get("query_string", b"").decode("latin-1")
        for index, rule in enumerate(self.traffic.rules):
            if not (fnmatch.fnmatchcase(route, rule.route) and fnmatch.fnmatchcase(query, rule.query)):
                continue
            if await self._apply(index, rule, route, job_id, scope, receive, send):
                return
        await self.app(scope, receive, send)

    async def _apply(
        self,
        index: int,
        rule: FaultRule,
        route: str,
        job_id: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> bool:
        """Inject at most one fault from ``rule``; True when the request was answered here."""
        draws = self.traffic.random
        if rule.latency and draws.random() < rule.latency:
            self.traffic.count_fault(route, "latency")
            await asyncio.sleep(rule.latency_seconds)
        draw = draws.random()
        for kind, probability in (
            ("drop", rule.drop),
            ("rate_limit", rule.rate_limit),
            ("rate_limit_no_header", rule.rate_limit_no_header),
            ("server_error", rule.server_error),
            ("server_error_after", rule.server_error_after),
            ("drop_after", rule.drop_after),
            ("hang", rule.hang),
        ):
            if draw < probability:
                if not self.traffic.spend(index, rule):
                    return False
                self.traffic.count_fault(route, kind)
                if kind == "hang":
                    if not await self._hold(rule, scope, receive, send):
                        self.traffic.count_refused(route, job_id)
                    return True
                if kind.endswith("_after"):
                    await self.app(scope, receive, _discard)  # it takes effect; its answer is lost
                else:
                    self.traffic.count_refused(route, job_id)
                await self._answer_fault(kind.removesuffix("_after"), rule, receive, send)
                return True
            draw -= probability
        return False

    async def _hold(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> bool:
        """Leave the request unanswered until its client hangs up (then nothing is sent), the
        faults change, or ``hang_seconds`` pass; a request still waiting then is handled normally.
        Returns whether it was handled."""
        body: list[Message] = []
        while not body or body[-1].get("more_body"):
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            body.append(message)
        generation = self.traffic.generation
        hung_up = asyncio.ensure_future(receive())
        deadline = asyncio.get_running_loop().time() + rule.hang_seconds
        self.traffic.hang(+1)
        try:
            while not hung_up.done() and generation == self.traffic.generation:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                await asyncio.wait([hung_up], timeout=min(left, 0.05))
        finally:
            self.traffic.hang(-1)
        if hung_up.done():
            return False
        hung_up.cancel()
        replay = iter(body)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)
        return True

    @staticmethod
    async def _answer_fault(kind: str, rule: FaultRule, receive: Receive, send: Send) -> None:
        if kind == "drop" and await _drop_connection(receive):
            return
        if kind == "drop":
            kind = "server_error"
        status = rule.server_error_status if kind == "server_error" else 429
        code = 1202 if status == 429 else 1010
        message = "Too many requests" if status == 429 else "Service temporarily unavailable"
        body = json.dumps(error_body(message, code)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if kind == "rate_limit":
            headers.append((b"retry-after", str(rule.retry_after_seconds).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _discard(message: Message) -> None:
    """The ``send`` of a request whose answer a fault replaces."""


async def _drop_connection(receive: Receive) -> bool:
    """Close the socket without an answer, as a broken proxy would; False when it cannot be reached.

    uvicorn's per-request cycle owns the transport, and Starlette passes its bound ``receive``
    through unwrapped. Returning before uvicorn has seen the disconnect would make it log "ASGI
    callable returned without starting response", so wait (briefly) until ``receive`` reports it.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(disconnected(), timeout=1.0)
    return True


def error_body(message: str, code: int) -> dict[str, Any]:
    """IBM's error shape: the ``errors`` list the service sends and the ``error`` the client parses."""
    return {
        "errors": [
            {"message": message, "code": code, "more_info": "https://quantum.cloud.ibm.com/docs/errors"}
        ],
        "error": {"message": message, "code": code},
        "trace": "emulator",
    }
