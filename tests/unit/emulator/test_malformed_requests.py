"""Malformed requests to every route of the emulator get a 4xx in IBM's error shape: never a 500 or a hang.

Property-based (hypothesis) and in-process: the emulator's ASGI app runs its lifespan on a private
event loop and is driven through httpx's ASGI transport, so no server process is started. The
routes are read from the app itself (its OpenAPI document and its plain routes), so a new route is
fuzzed without touching this file; a new route that takes a body fails
``test_every_write_route_is_described`` until its body is described in ``BODIES``.

The runs are derandomized (the examples are a function of the test alone, no seed to print) and
no example database is written: the same examples run locally and in CI. A hang would fail the
test at the suite's per-test timeout.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any
from urllib.parse import quote

import anyio.from_thread
import httpx
import jwt
import pytest
from dateutil.parser import isoparse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime import RuntimeEncoder
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from starlette.routing import Route

from prefect_qiskit_jobs.emulator.app import create_app
from prefect_qiskit_jobs.emulator.config import DEFAULT_API_KEY, EmulatorConfig, FaultRule
from prefect_qiskit_jobs.emulator.routes.common import API_VERSIONS
from prefect_qiskit_jobs.emulator.traffic import ADMIN_PREFIX, RUNTIME_PREFIX

# Hypothesis warns when the global ``random`` state moves while it draws, taking it for a strategy
# that uses ``random``. None here does: the state is moved by threads that earlier tests in the
# same pytest worker leave running (Prefect's client services draw their jitter from it), and
# with warnings as errors the warning then turned a draw into a "flaky strategy" failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)

# No example database, and hypothesis's other caches outside the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "hypothesis"))
BACKEND = "ibmq_manila"
API_KEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
WRITE_METHODS = ("POST", "PUT", "PATCH")
# Bounded so that the whole file runs in seconds (EMULATOR_FUZZ_EXAMPLES=1000 hunts deeper, locally);
# derandomized, so every run draws the same examples.
FUZZ = settings(
    max_examples=int(os.environ.get("EMULATOR_FUZZ_EXAMPLES", "40")),
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ----- the emulator, in process ------------------------------------------------------------------
@dataclass
class InProcessEmulator:
    """An emulator app under its lifespan on a private event loop, called synchronously."""

    app: Any
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    token: str = ""
    _job: str = ""
    _session: str = ""

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | str | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        response: httpx.Response = self.portal.call(
            lambda: self.client.request(method, path, headers=headers, content=content, params=params)
        )
        return response

    def runtime_headers(self, content_type: str | None = "application/json") -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Service-CRN": self.app.state.emulator.config.instance_crn,
            "IBM-API-Version": API_VERSIONS[-1],
        }
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    # Existing resources, for requests that must get past "not found" to reach their checks;
    # made again when a fuzzed request (a reset, a delete) took them away.
    def job_id(self) -> str:
        if self._job not in self.app.state.emulator.store.jobs:
            answer = self.request("POST", f"{ADMIN_PREFIX}/jobs", content=json.dumps(ADMIN_JOBS_BODY))
            self._job = answer.json()["ids"][0]
        return self._job

    def session_id(self) -> str:
        if self._session not in self.app.state.emulator.store.sessions:
            body = json.dumps({"mode": "batch", "backend": BACKEND})
            answer = self.request(
                "POST", f"{RUNTIME_PREFIX}/sessions", headers=self.runtime_headers(), content=body
            )
            self._session = answer.json()["id"]
        return self._session

    def existing(self, name: str) -> str:
        """A value of path parameter ``name`` that names something the emulator has."""
        if name == "job_id":
            return self.job_id()
        if name == "session_id":
            return self.session_id()
        if name == "plan_id":
            return "emulator-plan"
        return BACKEND


@pytest.fixture(scope="module")
def emulator() -> Iterator[InProcessEmulator]:
    app = create_app(EmulatorConfig(backends=("manila",)))
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator")
        emulator = InProcessEmulator(app, portal, client)
        grant = {"grant_type": API_KEY_GRANT, "apikey": DEFAULT_API_KEY}
        answer = emulator.request(
            "POST",
            "/iam/identity/token",
            content=str(httpx.QueryParams(grant)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        emulator.token = answer.json()["access_token"]
        try:
            yield emulator
        finally:
            portal.call(client.aclose)


@pytest.fixture(autouse=True)
def _stays_healthy(emulator: InProcessEmulator) -> Iterator[None]:
    """After each test, the emulator still answers a normal request, and no fault is in force."""
    yield
    emulator.request("POST", f"{ADMIN_PREFIX}/reset")
    assert emulator.request("GET", f"{ADMIN_PREFIX}/health").json() == {"ok": True}
    backends = emulator.request("GET", f"{RUNTIME_PREFIX}/backends", headers=emulator.runtime_headers())
    assert backends.status_code == 200
    assert [device["name"] for device in backends.json()["devices"]] == [BACKEND]


# ----- the routes, read from the app --------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template, e.g. /experimental/api/v1/jobs/{job_id}
    path_params: tuple[str, ...] = ()
    query_params: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def runtime(self) -> bool:
        return self.path.startswith(RUNTIME_PREFIX)

    def url(self, values: dict[str, str]) -> str:
        # Dots escaped too, lest the client resolve "." and ".." segments away before sending.
        quoted = {name: quote(value, safe="").replace(".", "%2E") for name, value in values.items()}
        return self.path.format(**quoted)


def read_endpoints() -> tuple[Endpoint, ...]:
    app = create_app(EmulatorConfig(backends=("manila",)))
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            found.append(
                Endpoint(
                    method.upper(),
                    path,
                    tuple(p["name"] for p in parameters if p["in"] == "path"),
                    tuple(p["name"] for p in parameters if p["in"] == "query"),
                )
            )
    # The app's own routes outside the OpenAPI document (its docs pages).
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            found += [Endpoint(method, route.path) for method in sorted(route.methods - {"HEAD"})]
    return tuple(found)


ENDPOINTS = read_endpoints()
WITH_PATH_PARAMS = tuple(e for e in ENDPOINTS if e.path_params)
WITH_QUERY_PARAMS = tuple(e for e in ENDPOINTS if e.query_params)
RUNTIME_ENDPOINTS = tuple(e for e in ENDPOINTS if e.runtime)


# ----- IBM's error shapes ------------------------------------------------------------------------
def assert_ibm_error(endpoint_path: str, response: httpx.Response) -> None:
    """A 4xx whose body is the error shape of the IBM service behind ``endpoint_path``."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.request.method == "HEAD":
        return
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    if endpoint_path.startswith(("/iam", "/global-search")):
        # IAM's own shape (Global Search answers in it too).
        assert isinstance(body["errorMessage"], str), body
        assert body["errorCode"], body
    elif endpoint_path.startswith("/global-catalog") and "errors" not in body:
        assert isinstance(body["message"], str), body
    else:
        (error,) = body["errors"]
        assert isinstance(error["message"], str), body
        assert error["message"]
        assert isinstance(error["code"], int), body
        assert error["more_info"], body
        assert body["error"] == {"message": error["message"], "code": error["code"]}


def assert_not_a_server_error(endpoint_path: str, response: httpx.Response) -> None:
    """Any answer but a 5xx; a 4xx in IBM's error shape."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert_ibm_error(endpoint_path, response)


# ----- strategies ---------------------------------------------------------------------------------
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
EDGE_VALUES = st.sampled_from(
    [None, True, False, 0, -1, 1.5, 2**63, 10**30, "", "0", "true", [], {}, [""], {"": None}, [[]]]
)
ANY_VALUE = EDGE_VALUES | JSON_VALUES


def deep_json(depth: int, kind: str) -> str:
    """JSON nested ``depth`` levels deep: arrays, or objects."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


DEPTHS = st.sampled_from([200, 999, 1_001, 5_000, 10_000])
DEEP = st.builds(deep_json, DEPTHS, st.sampled_from(["array", "object"]))
HUGE_STRINGS = st.sampled_from([10_000, 1_000_000]).map(lambda n: json.dumps("é" * n))
HUGE_ARRAYS = st.sampled_from([10_000, 200_000]).map(lambda n: json.dumps([0] * n))
NOT_JSON = st.sampled_from(
    [
        "{",
        "}",
        "{'tags': []}",
        '{"tags": [],}',
        '{"a": NaN}',
        '{"a": Infinity}',
        "-Infinity",
        "{} trailing",
        '{"a": "unterminated}',
        "\x00",
        "undefined",
    ]
) | st.binary(min_size=1, max_size=40).filter(lambda raw: not _is_json(raw))


def _is_json(raw: bytes | str) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


ODD_IDS = (
    st.text(min_size=1, max_size=40)
    | st.sampled_from(
        [
            "..",
            ".",
            "%",
            "%00",
            "\x00",
            " ",
            "-1",
            "0" * 64,
            "null",
            "undefined",
            "../jobs",
            "a/b",
            "\u202eevil",
            "\U0001f600",
            "ibmq_manila\x00",
            "\uff29\uff22\uff2d",
        ]
    )
    | st.sampled_from([1_000, 20_000]).map(lambda n: "x" * n)
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
WRONG_CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/octet-stream",
        "json",
        "text/json",
    ]
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])


# ----- what each write route's body must be -------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """A body field: whether the route needs it, and which values it accepts."""

    accepts: Callable[[Any], bool]
    required: bool = False


@dataclass(frozen=True)
class BodySpec:
    """A write route's JSON body: a valid one, and its fields."""

    valid: Callable[[], dict[str, Any]]
    fields: dict[str, Field] = field(default_factory=dict)


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _positive_int(value: Any) -> bool:
    return _integer(value) and value > 0


def _fault_rules(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    try:
        [FaultRule.model_validate(rule) for rule in value]
    except ValueError:
        return False
    return True


def _valid_sampler_params() -> dict[str, Any]:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    isa = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)
    params = {"pubs": [(isa, None, 16)], "options": {}, "version": 2, "support_qiskit": True}
    decoded: dict[str, Any] = json.loads(json.dumps(params, cls=RuntimeEncoder))
    return decoded


_SAMPLER_PARAMS: list[dict[str, Any]] = []


def valid_job() -> dict[str, Any]:
    """A job the emulator would create: fields mutated from it make the only fault of a request."""
    if not _SAMPLER_PARAMS:
        _SAMPLER_PARAMS.append(_valid_sampler_params())
    return {"program_id": "sampler", "backend": BACKEND, "params": _SAMPLER_PARAMS[0]}


ADMIN_JOBS_BODY = {"count": 1, "backend": BACKEND}
BODIES: dict[str, BodySpec | None] = {
    # The runtime API, as the client 0.51 posts it (it sends optional fields only when set).
    f"POST {RUNTIME_PREFIX}/jobs": BodySpec(
        valid_job,
        {
            "program_id": Field(_string, required=True),
            "backend": Field(_string, required=True),
            "params": Field(lambda v: isinstance(v, dict), required=True),
            "tags": Field(_optional(_strings)),
            "session_id": Field(_optional(_string)),
            "calibration_id": Field(_optional(_string)),
            "log_level": Field(_optional(_string)),
            "runtime": Field(_optional(_string)),
            "cost": Field(_optional(_positive_int)),
            "private": Field(_optional(lambda v: isinstance(v, bool))),
            "start_session": Field(_optional(lambda v: isinstance(v, bool))),
            "session_time": Field(_optional(_positive_int)),
        },
    ),
    f"POST {RUNTIME_PREFIX}/sessions": BodySpec(
        lambda: {"mode": "batch", "backend": BACKEND, "max_ttl": 60},
        {
            "mode": Field(_optional(lambda v: v in ("dedicated", "batch"))),
            "backend": Field(_optional(_string)),
            "instance": Field(_optional(_string)),
            "max_ttl": Field(_optional(_positive_int)),
        },
    ),
    f"PATCH {RUNTIME_PREFIX}/sessions/{{session_id}}": BodySpec(
        lambda: {"accepting_jobs": False},
        {"accepting_jobs": Field(_optional(lambda v: isinstance(v, bool)))},
    ),
    f"PUT {RUNTIME_PREFIX}/jobs/{{job_id}}/tags": BodySpec(
        lambda: {"tags": ["a"]}, {"tags": Field(_strings, required=True)}
    ),
    f"POST {RUNTIME_PREFIX}/jobs/{{job_id}}/cancel": None,
    # Sent by the client with a JSON query, which the emulator does not read.
    "POST /global-search/v3/resources/search": None,
    # A form, not JSON: fuzzed on its own (test_iam_refuses_anything_but_a_valid_key).
    "POST /iam/identity/token": None,
    # The emulator's own routes.
    f"PUT {ADMIN_PREFIX}/faults": BodySpec(
        lambda: {"faults": [], "seed": 1},
        {"faults": Field(_optional(_fault_rules)), "seed": Field(_optional(_integer))},
    ),
    f"POST {ADMIN_PREFIX}/jobs": BodySpec(
        lambda: dict(ADMIN_JOBS_BODY),
        {
            "count": Field(lambda v: _integer(v) and 1 <= v <= 100_000, required=True),
            "backend": Field(_string, required=True),
            "program_id": Field(_optional(lambda v: v in ("sampler", "estimator", "executor"))),
            "tags": Field(_optional(_strings)),
            "params": Field(_optional(lambda v: isinstance(v, dict))),
        },
    ),
    f"POST {ADMIN_PREFIX}/jobs/{{job_id}}/fail": BodySpec(
        lambda: {"reason": "scripted"}, {"reason": Field(_optional(_string))}
    ),
    f"POST {ADMIN_PREFIX}/jobs/{{job_id}}/age": BodySpec(
        lambda: {"seconds": 60},
        {
            "seconds": Field(
                lambda v: (
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 10 * 365 * 86400
                ),
                required=True,
            )
        },
    ),
    f"PUT {ADMIN_PREFIX}/jobs/{{job_id}}/status": BodySpec(
        lambda: {"status": "Queued"},
        {"status": Field(lambda v: isinstance(v, str) and v.strip() != "", required=True)},
    ),
    f"POST {ADMIN_PREFIX}/reset": None,
    f"POST {ADMIN_PREFIX}/jobs/{{job_id}}/release": None,
    f"POST {ADMIN_PREFIX}/release": None,
    f"POST {ADMIN_PREFIX}/backends/{{name}}/recalibrate": None,
}
BODY_ENDPOINTS = tuple(e for e in ENDPOINTS if BODIES.get(e.key) is not None)


def test_every_route_is_found() -> None:
    """The enumeration sees the routes the client uses, so the fuzzing below reaches them."""
    keys = {endpoint.key for endpoint in ENDPOINTS}
    assert f"GET {RUNTIME_PREFIX}/jobs/{{job_id}}" in keys
    assert f"POST {RUNTIME_PREFIX}/jobs" in keys
    assert "POST /iam/identity/token" in keys
    assert f"GET {ADMIN_PREFIX}/openapi.json" in keys
    assert len(keys) == len(ENDPOINTS) > 30


def test_every_write_route_is_described() -> None:
    """A new route that takes a body must say here what its body is (or that it reads none)."""
    assert {e.key for e in ENDPOINTS if e.method in WRITE_METHODS} == set(BODIES)


# ----- the properties -----------------------------------------------------------------------------
def _path_values(emulator: InProcessEmulator, endpoint: Endpoint) -> dict[str, str]:
    return {name: emulator.existing(name) for name in endpoint.path_params}


def _forged_token() -> str:
    return jwt.encode(
        {"sub": "someone", "exp": 4_000_000_000, "iat": 0},
        "not-the-emulators-signing-secret-" * 2,
        algorithm="HS256",
    )


@FUZZ
@given(
    endpoint=st.sampled_from([*RUNTIME_ENDPOINTS, *(e for e in ENDPOINTS if "global-search" in e.path)]),
    authorization=st.sampled_from(
        [None, "", "Bearer", "Bearer ", "Bearer x.y.z", "Basic Zm9vOmJhcg==", f"apikey {DEFAULT_API_KEY}"]
    )
    | HEADER_TEXT
    | HEADER_TEXT.map("Bearer ".__add__)
    | st.just("forged"),
    body=st.none() | JSON_VALUES.map(json.dumps) | NOT_JSON,
)
def test_without_a_valid_token_runtime_routes_answer_401(
    emulator: InProcessEmulator, endpoint: Endpoint, authorization: str | None, body: str | bytes | None
) -> None:
    headers = {"Content-Type": "application/json", "IBM-API-Version": API_VERSIONS[-1]}
    if authorization == "forged":
        authorization = f"Bearer {_forged_token()}"
    if authorization is not None:
        headers["Authorization"] = authorization

    response = emulator.request(
        endpoint.method,
        endpoint.url(_path_values(emulator, endpoint)),
        headers=headers,
        content=body if endpoint.method in WRITE_METHODS else None,
    )

    assert response.status_code == 401, response.text[:300]
    assert_ibm_error(endpoint.path, response)


@FUZZ
@given(
    endpoint=st.sampled_from(RUNTIME_ENDPOINTS),
    header=st.sampled_from(["Service-CRN", "IBM-API-Version", "IBM-API-Version-missing"]),
    value=HEADER_TEXT,
)
def test_another_instance_or_an_unserved_api_version_is_refused(
    emulator: InProcessEmulator, endpoint: Endpoint, header: str, value: str
) -> None:
    headers = emulator.runtime_headers()
    if header == "IBM-API-Version-missing":
        del headers["IBM-API-Version"]
    else:
        headers[header] = value
    served = header == "IBM-API-Version" and value in API_VERSIONS
    right = served or (header == "Service-CRN" and value == emulator.runtime_headers()[header])

    response = emulator.request(
        endpoint.method, endpoint.url(_path_values(emulator, endpoint)), headers=headers
    )

    if right:  # drawn right after all
        assert_not_a_server_error(endpoint.path, response)
    else:
        assert response.status_code == (403 if header == "Service-CRN" else 400), response.text[:300]
        assert_ibm_error(endpoint.path, response)


@FUZZ
@given(endpoint=st.sampled_from(WITH_PATH_PARAMS), data=st.data())
def test_odd_path_parameters_are_not_found(
    emulator: InProcessEmulator, endpoint: Endpoint, data: st.DataObject
) -> None:
    values = {name: data.draw(ODD_IDS, label=name) for name in endpoint.path_params}
    response = emulator.request(endpoint.method, endpoint.url(values), headers=emulator.runtime_headers())

    # 404 for what is not there; 405 when the odd id ("..", "a/b") led to another route.
    assert response.status_code in (404, 405), response.text[:300]
    assert_ibm_error(endpoint.path, response)


# Values each query parameter must refuse, by name; a parameter not named here (a free string,
# such as ``backend`` or ``tags``) gets odd strings, and must only never cause a 5xx.
NOT_A_NUMBER = st.sampled_from(["-1", "0x10", "1e3", "1.5", "", " ", "NaN", "\u221e"]) | st.text(
    max_size=10
).filter(lambda text: not any(char.isdigit() for char in text))
TOO_BIG = st.sampled_from([str(2**31), str(2**63), str(10**40)])
NOT_A_FLAG = st.text(max_size=10).filter(lambda text: text.lower() not in ("true", "false"))
NOT_A_DATE = st.sampled_from(
    ["yesterday", "2026-13-01", "2026-02-30", "2026-01-01T25:00", "0001-01-01T00:00:00+14:00", "-1"]
) | st.text(max_size=25).filter(lambda text: not _is_date(text))
QUERY_ATTACKS: dict[str, st.SearchStrategy[str]] = {
    "limit": NOT_A_NUMBER | TOO_BIG | st.just("0"),
    "offset": NOT_A_NUMBER | TOO_BIG,
    "pending": NOT_A_FLAG,
    "exclude_params": NOT_A_FLAG,
    "include_mocks": NOT_A_FLAG,
    "sort": st.text(max_size=10).filter(lambda text: text.upper() not in ("ASC", "DESC")),
    "created_after": NOT_A_DATE,
    "created_before": NOT_A_DATE,
    "updated_before": NOT_A_DATE,
    "jobs": st.sampled_from(["maybe", "2", "tru", "yes please", ""]),
}


def _is_date(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 date-time that names a moment in UTC."""
    try:
        moment = isoparse(text)
        if moment.tzinfo:
            moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return False
    return True


@FUZZ
@given(endpoint=st.sampled_from(WITH_QUERY_PARAMS), data=st.data())
def test_bad_query_parameters_are_refused(
    emulator: InProcessEmulator, endpoint: Endpoint, data: st.DataObject
) -> None:
    names = list(endpoint.query_params)
    attacked = data.draw(st.sampled_from(names), label="attacked")
    value = data.draw(QUERY_ATTACKS.get(attacked, ODD_IDS), label="value")
    extra = data.draw(
        st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=3), label="extra"
    )
    params = [(attacked, value), *((k, v) for k, v in extra if k not in names)]

    response = emulator.request(
        endpoint.method,
        endpoint.url(_path_values(emulator, endpoint)),
        headers=emulator.runtime_headers(),
        params=params,
    )

    if attacked in QUERY_ATTACKS:
        assert 400 <= response.status_code < 500, (params, response.text[:300])
    assert_not_a_server_error(endpoint.path, response)


def _bad_bodies(spec: BodySpec) -> st.SearchStrategy[tuple[str, str | bytes]]:
    """(what is wrong, body) for a body whose one fault is named, with extra fields besides."""
    valid = spec.valid()

    def mutated(name: str, value: Any, extra: dict[str, Any]) -> str:
        body = {**{k: v for k, v in extra.items() if k not in spec.fields}, **valid, name: value}
        return json.dumps(body)

    def dropped(name: str) -> str:
        return json.dumps({k: v for k, v in valid.items() if k != name})

    extras = st.dictionaries(
        st.text(min_size=1, max_size=10), ANY_VALUE | HUGE_STRINGS.map(json.loads), max_size=3
    )
    wrong_field = st.sampled_from(sorted(spec.fields)).flatmap(
        lambda name: st.tuples(
            st.just(f"wrong {name}"),
            st.builds(
                mutated, st.just(name), ANY_VALUE.filter(lambda v: not spec.fields[name].accepts(v)), extras
            ),
        )
    )
    required = sorted(name for name, f in spec.fields.items() if f.required)
    missing = (
        st.sampled_from(required).map(lambda name: (f"missing {name}", dropped(name))) if required else None
    )
    deep_field = st.tuples(st.sampled_from(sorted(spec.fields)), DEEP).map(
        lambda pair: (f"deep {pair[0]}", json.dumps(valid)[:-1] + f', "{pair[0]}": {pair[1]}}}')
    )
    whole = st.tuples(
        st.just("not a JSON object"),
        (JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(json.dumps) | HUGE_ARRAYS | HUGE_STRINGS),
    )
    kinds = [wrong_field, deep_field, whole, st.tuples(st.just("not JSON"), NOT_JSON | DEEP)]
    if missing is not None:
        kinds.append(missing)
    return st.one_of(kinds)


@FUZZ
@given(endpoint=st.sampled_from(BODY_ENDPOINTS), data=st.data())
def test_malformed_bodies_are_refused(
    emulator: InProcessEmulator, endpoint: Endpoint, data: st.DataObject
) -> None:
    spec = BODIES[endpoint.key]
    assert spec is not None
    fault, body = data.draw(_bad_bodies(spec), label="body")
    jobs_before = set(emulator.app.state.emulator.store.jobs)

    response = emulator.request(
        endpoint.method,
        endpoint.url(_path_values(emulator, endpoint)),
        headers=emulator.runtime_headers(),
        content=body,
    )

    assert 400 <= response.status_code < 500, (fault, response.status_code, response.text[:300])
    assert_ibm_error(endpoint.path, response)
    if endpoint.method == "POST" and endpoint.path.endswith("/jobs"):
        assert set(emulator.app.state.emulator.store.jobs) == jobs_before, fault


@FUZZ
@given(
    endpoint=st.sampled_from([e for e in BODY_ENDPOINTS if e.runtime]),
    content_type=WRONG_CONTENT_TYPES,
)
def test_a_body_that_is_not_declared_json_is_refused(
    emulator: InProcessEmulator, endpoint: Endpoint, content_type: str | None
) -> None:
    spec = BODIES[endpoint.key]
    assert spec is not None

    response = emulator.request(
        endpoint.method,
        endpoint.url(_path_values(emulator, endpoint)),
        headers=emulator.runtime_headers(content_type),
        content=json.dumps(spec.valid()),
    )

    assert response.status_code == 415, response.text[:300]
    assert_ibm_error(endpoint.path, response)


@FUZZ
@given(
    grant_type=st.just(API_KEY_GRANT) | st.text(max_size=40),
    apikey=st.none() | st.text(max_size=40).filter(lambda key: key != DEFAULT_API_KEY) | HUGE_STRINGS,
    as_json=st.booleans(),
    raw=st.none() | NOT_JSON | DEEP,
)
def test_iam_refuses_anything_but_a_valid_key(
    emulator: InProcessEmulator, grant_type: str, apikey: str | None, as_json: bool, raw: str | bytes | None
) -> None:
    form = {"grant_type": grant_type, **({} if apikey is None else {"apikey": apikey})}
    if raw is not None:
        content: str | bytes = raw
    elif as_json:
        content = json.dumps({**form, "apikey": DEFAULT_API_KEY})  # the right key, in the wrong encoding
    else:
        content = str(httpx.QueryParams(form))
    headers = {"Content-Type": "application/json" if as_json else "application/x-www-form-urlencoded"}

    response = emulator.request("POST", "/iam/identity/token", headers=headers, content=content)

    assert response.status_code == 400, response.text[:300]
    assert_ibm_error("/iam", response)


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    method=METHODS,
    data=st.data(),
    authenticated=st.booleans(),
    content_type=WRONG_CONTENT_TYPES | st.just("application/json"),
    body=st.none() | JSON_VALUES.map(json.dumps) | NOT_JSON | DEEP,
)
def test_any_request_to_any_route_gets_no_server_error(
    emulator: InProcessEmulator,
    endpoint: Endpoint,
    method: str,
    data: st.DataObject,
    authenticated: bool,
    content_type: str | None,
    body: str | bytes | None,
) -> None:
    """Whatever the method, ids, query, body and headers: never a 5xx, and a 4xx in IBM's shape."""
    values = {
        name: data.draw(ODD_IDS | st.just(emulator.existing(name)), label=name)
        for name in endpoint.path_params
    }
    query = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(endpoint.query_params or ("x",)) | st.text(max_size=8),
                ODD_IDS,
            ),
            max_size=3,
        ),
        label="query",
    )
    headers = emulator.runtime_headers(content_type) if authenticated else {}
    if not authenticated and content_type:
        headers["Content-Type"] = content_type
    # Requests that would wipe the fixtures or create jobs by the thousand are not what is tested here.
    if endpoint.path.startswith(ADMIN_PREFIX) and method != "GET":
        query = [(k, v) for k, v in query if k != "jobs"]

    response = emulator.request(method, endpoint.url(values), headers=headers, content=body, params=query)

    assert_not_a_server_error(endpoint.path, response)


# ----- what the fuzzing found, kept as examples -----------------------------------------------------
_JOB = "{job_id}"
_FOUND = [
    # (method, path, body, status): each answered 500, 200 or 307 before it was fixed.
    *((e.method, e.path, deep_json(10_000, "array"), 400) for e in BODY_ENDPOINTS),
    ("POST", f"{ADMIN_PREFIX}/jobs/{_JOB}/fail", "{bad", 400),
    ("POST", f"{ADMIN_PREFIX}/jobs/{_JOB}/fail", "[1]", 400),
    ("PUT", f"{ADMIN_PREFIX}/faults", '{"seed": 1e400}', 400),
    ("POST", f"{ADMIN_PREFIX}/jobs", '{"count": 1e400, "backend": "ibmq_manila"}', 400),
    ("POST", f"{RUNTIME_PREFIX}/sessions", '{"mode": "batch", "max_ttl": 0}', 400),
    ("PATCH", f"{RUNTIME_PREFIX}/sessions/{{session_id}}", '{"accepting_jobs": "no"}', 400),
    ("GET", f"{RUNTIME_PREFIX}/jobs?created_after=0001-01-01T00:00:00%2B14:00", None, 400),
    ("GET", f"{RUNTIME_PREFIX}/jobs?limit=99999999999999999999", None, 400),
    ("GET", f"{RUNTIME_PREFIX}/jobs?sort=sideways", None, 400),
    ("GET", f"{RUNTIME_PREFIX}/backends?include_mocks=maybe", None, 400),
    ("GET", f"{RUNTIME_PREFIX}/jobs/%2F", None, 404),
    ("GET", f"{RUNTIME_PREFIX}/jobs/", None, 404),
    ("GET", f"{RUNTIME_PREFIX}/no-such-route", None, 404),
    ("DELETE", f"{RUNTIME_PREFIX}/backends", None, 405),
    ("GET", "/iam/identity/token", None, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), _FOUND)
def test_what_the_fuzzing_found_stays_fixed(
    emulator: InProcessEmulator, method: str, path: str, body: str | None, status: int
) -> None:
    url = path.replace(_JOB, emulator.job_id()).replace("{session_id}", emulator.session_id())
    if "{" in url:
        pytest.skip(f"{path} needs a value the examples do not name")

    response = emulator.request(method, url, headers=emulator.runtime_headers(), content=body)

    assert response.status_code == status, response.text[:300]
    assert_ibm_error(path, response)
