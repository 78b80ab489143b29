"""Counting requests by route template, and the seeded faults the middleware answers with."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from prefect_qiskit_jobs.emulator.auth import TokenIssuer
from prefect_qiskit_jobs.emulator.config import FaultRule
from prefect_qiskit_jobs.emulator.traffic import Traffic, TrafficMiddleware, route_of

API = "/experimental/api/v1"


@pytest.mark.parametrize(
    ("method", "path", "route", "job_id"),
    [
        ("GET", f"{API}/jobs/d1abc", "GET /jobs/{job_id}", "d1abc"),
        ("GET", f"{API}/jobs/d1abc/results", "GET /jobs/{job_id}/results", "d1abc"),
        ("POST", f"{API}/jobs/d1abc/cancel", "POST /jobs/{job_id}/cancel", "d1abc"),
        ("GET", f"{API}/jobs", "GET /jobs", None),
        ("POST", f"{API}/jobs", "POST /jobs", None),
        ("GET", f"{API}/backends/ibmq_manila/configuration", "GET /backends/{name}/configuration", None),
        ("GET", f"{API}/backends", "GET /backends", None),
        ("DELETE", f"{API}/sessions/s1/close", "DELETE /sessions/{session_id}/close", None),
        ("GET", f"{API}/instances/usage", "GET /instances/usage", None),
        ("GET", "/global-catalog/emulator-plan", "GET /global-catalog/{plan_id}", None),
        ("POST", "/iam/identity/token", "POST /iam/identity/token", None),
    ],
)
def test_route_of_names_the_route_template_and_the_job(
    method: str, path: str, route: str, job_id: str | None
) -> None:
    assert route_of(method, path) == (route, job_id)


def test_traffic_counts_by_route_job_and_cancel() -> None:
    traffic = Traffic()
    traffic.count("GET /jobs/{job_id}", "a")
    traffic.count("GET /jobs/{job_id}", "a")
    traffic.count("POST /jobs/{job_id}/cancel", "a")
    traffic.count("GET /backends", None)
    traffic.count_fault("GET /jobs/{job_id}", "rate_limit")

    snapshot = traffic.snapshot()

    assert snapshot["routes"] == {
        "GET /jobs/{job_id}": 2,
        "POST /jobs/{job_id}/cancel": 1,
        "GET /backends": 1,
    }
    assert snapshot["jobs"] == {"a": {"GET /jobs/{job_id}": 2, "POST /jobs/{job_id}/cancel": 1}}
    assert snapshot["cancels"] == {"a": 1}
    assert snapshot["faults"] == {"GET /jobs/{job_id}": {"rate_limit": 1}}
    traffic.reset()
    assert traffic.snapshot() == {
        "routes": {},
        "jobs": {},
        "cancels": {},
        "accounts": {},
        "cancels_refused": {},
        "faults": {},
        "hanging": 0,
        "rate_limited": 0,
    }


def test_reset_restarts_the_fault_draws_from_the_seed() -> None:
    traffic = Traffic(seed=42)
    first = [traffic.random.random() for _ in range(5)]
    traffic.reset()
    assert [traffic.random.random() for _ in range(5)] == first
    traffic.set_faults((), seed=7)
    assert [traffic.random.random() for _ in range(5)] != first


# ----- the middleware, driven as an ASGI server would drive it --------------------------------
async def _app(scope: Any, receive: Any, send: Any) -> None:
    body = b'{"ok": true}'
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"12")]})
    await send({"type": "http.response.body", "body": body})


def call(
    middleware: TrafficMiddleware, method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request through the middleware: status, headers, decoded body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers or []}
    asyncio.run(middleware(scope, receive, send))
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body["body"])


def test_rate_limit_answers_429_with_retry_after_in_ibms_error_shape() -> None:
    traffic = Traffic((FaultRule(route="GET /jobs/*", rate_limit=1.0, retry_after_seconds=3),))
    middleware = TrafficMiddleware(_app, traffic)

    status, headers, body = call(middleware, "GET", f"{API}/jobs/d1/results")

    assert status == 429
    assert headers["retry-after"] == "3"
    assert body["errors"][0]["code"] == body["error"]["code"] == 1202
    assert traffic.snapshot()["faults"] == {"GET /jobs/{job_id}/results": {"rate_limit": 1}}


def test_rate_limit_without_header_and_server_errors() -> None:
    rules = (
        FaultRule(route="GET /jobs/{job_id}", rate_limit_no_header=1.0),
        FaultRule(route="GET /backends*", server_error=1.0, server_error_status=502),
    )
    middleware = TrafficMiddleware(_app, Traffic(rules))

    status, headers, _ = call(middleware, "GET", f"{API}/jobs/d1")
    assert (status, "retry-after" in headers) == (429, False)
    status, _, body = call(middleware, "GET", f"{API}/backends")
    assert status == 502
    assert body["error"]["message"] == "Service temporarily unavailable"


def test_unmatched_routes_and_admin_routes_pass_through_untouched() -> None:
    traffic = Traffic((FaultRule(route="GET /jobs/*", server_error=1.0),))
    middleware = TrafficMiddleware(_app, traffic)

    assert call(middleware, "GET", f"{API}/jobs")[0] == 200  # the listing is not "GET /jobs/*"
    assert call(middleware, "POST", f"{API}/jobs")[0] == 200
    assert call(middleware, "GET", "/_emulator/jobs/d1")[0] == 200
    assert traffic.snapshot()["routes"] == {"GET /jobs": 1, "POST /jobs": 1}


def test_a_drop_without_a_reachable_transport_becomes_a_server_error() -> None:
    middleware = TrafficMiddleware(_app, Traffic((FaultRule(drop=1.0),)))

    assert call(middleware, "GET", f"{API}/jobs/d1")[0] == 503


def test_the_same_seed_draws_the_same_faults() -> None:
    def statuses(seed: int) -> list[int]:
        middleware = TrafficMiddleware(_app, Traffic((FaultRule(rate_limit=0.5),), seed=seed))
        return [call(middleware, "GET", f"{API}/jobs/d1")[0] for _ in range(30)]

    assert statuses(3) == statuses(3)
    assert {429, 200} == set(statuses(3))
    assert statuses(3) != statuses(4)


def test_requests_are_counted_per_account_of_their_bearer_token() -> None:
    """Clients sharing one emulator under different API keys are told apart (the peers benchmark)."""
    traffic = Traffic()
    middleware = TrafficMiddleware(_app, traffic)
    issuer = TokenIssuer(lifetime=60)

    def bearer(account: str) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", f"Bearer {issuer.issue(account)['access_token']}".encode())]

    call(middleware, "GET", f"{API}/jobs/d1", bearer("alice"))
    call(middleware, "GET", f"{API}/jobs/d1", bearer("alice"))
    call(middleware, "POST", f"{API}/jobs", bearer("bob"))
    call(middleware, "GET", f"{API}/backends", [(b"authorization", b"Bearer not-a-jwt")])
    call(middleware, "GET", f"{API}/backends")
    traffic.count_account("bob", "POST /iam/identity/token")

    assert traffic.snapshot()["accounts"] == {
        "alice": {"GET /jobs/{job_id}": 2},
        "bob": {"POST /jobs": 1, "POST /iam/identity/token": 1},
    }
    assert traffic.snapshot()["routes"] == {"GET /jobs/{job_id}": 2, "POST /jobs": 1, "GET /backends": 2}


def test_a_cancel_refused_by_a_fault_is_counted_apart_from_one_that_took_effect() -> None:
    refused = Traffic((FaultRule(route="POST /jobs/*/cancel", rate_limit_no_header=1.0),))
    took_effect = Traffic((FaultRule(route="POST /jobs/*/cancel", drop_after=1.0),))

    assert call(TrafficMiddleware(_app, refused), "POST", f"{API}/jobs/d1/cancel")[0] == 429
    call(TrafficMiddleware(_app, took_effect), "POST", f"{API}/jobs/d1/cancel")

    assert (refused.snapshot()["cancels"], refused.snapshot()["cancels_refused"]) == ({"d1": 1}, {"d1": 1})
    assert (took_effect.snapshot()["cancels"], took_effect.snapshot()["cancels_refused"]) == ({"d1": 1}, {})
