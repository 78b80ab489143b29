"""``cancel``: from a flow run turning Cancelling to all of its 100 running jobs Cancelled.

A real Prefect API (a temporary ``prefect server start``) and a serve process (``flow.serve``)
run the flow of ``benchmarks.children.cancel_flow``; its 100 jobs start at once and stay
Running (``min_run_seconds``), and a cancel takes the emulator 5 s to carry out
(``cancel_latency``), as IBM takes seconds. Once all are Running and the emulator has finished
executing them, the run is set Cancelling through the API, as the UI's Cancel button does; the
scenario then follows the emulator's jobs and the run's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import psutil

from benchmarks.children.cancel_flow import DEPLOYMENT
from benchmarks.harness.child import Child, log_tail
from benchmarks.harness.client import FLOW_RUN_PREFIX
from benchmarks.harness.context import Bench
from benchmarks.harness.emulator import BACKEND, BACKEND_FOLDER, finished_at, start_emulator
from benchmarks.harness.prefect_server import PrefectServer, prefect_server
from benchmarks.summary import Figure, Goal, Row, Summary

T = TypeVar("T")
TITLE = "cancel: from a flow run turning Cancelling to all of its running jobs Cancelled"
GOALS = [
    "no fixed goal: measured; the emulator's 5 s cancel latency is the lower bound",
    "exactly one cancel request per job",
]
# The serve process looks for scheduled runs every second, not every ten (as the e2e tests do).
POLL_QUICKLY = {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}
LAYERS = ("sensor", "flow hook", "reaper")
LOG_PAGE = 200


@dataclass(frozen=True)
class Settings:
    jobs: int = 100
    cancel_latency: float = 5.0
    min_run_seconds: float = 3600.0
    follow_seconds: float = 180.0


def run(bench: Bench) -> Summary:
    from prefect_qiskit_jobs.emulator import EmulatorConfig

    settings = Settings(jobs=30 if bench.quick else 100)
    config = EmulatorConfig(
        backends=(BACKEND_FOLDER,),
        queue_delay=0.0,
        concurrency=max(100, settings.jobs),
        min_run_seconds=settings.min_run_seconds,
        cancel_latency=settings.cancel_latency,
    )
    scratch = bench.scratch("serve")
    with (
        start_emulator(config, bench.cpus, bench.code) as emulator,
        prefect_server(scratch / "prefect-home", bench.code) as server,
    ):
        env = bench.environment(emulator.environment(), server.environment(), POLL_QUICKLY)
        log = scratch / "serve.log"
        with Child(
            "benchmarks.children.cancel_flow", [], env=env, cwd=bench.code.directory, log=log
        ) as serve:
            try:
                measured = asyncio.run(measure(emulator, server, serve, settings))
            except Exception as exc:
                raise RuntimeError(f"{exc}\nserve log:\n{log_tail(log)}") from exc
    return Summary(
        scenario="cancel",
        title=TITLE,
        quick=bench.quick,
        goals=GOALS,
        rows=[row(settings, measured)],
        settings={**asdict(settings), "backend": BACKEND, **POLL_QUICKLY},
        notes=NOTES,
    )


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float, what: str, every: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


def _jobs_of(emulator: Any, run_id: Any) -> list[dict[str, Any]]:
    tag = f"{FLOW_RUN_PREFIX}{run_id}"
    return [job for job in emulator.jobs() if tag in job["tags"]]


async def _until_idle(emulator: Any, timeout: float = 120.0) -> None:
    """Until the emulator uses under 10 % of a core over a second: it has executed every job."""
    process = psutil.Process(emulator.process.pid)
    deadline = time.monotonic() + timeout
    process.cpu_percent()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        if process.cpu_percent() < 10:
            return


async def measure(emulator: Any, server: PrefectServer, serve: Child, settings: Settings) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import State, StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.url}):
        async with get_client() as prefect:

            async def deployment() -> Any:
                if not serve.alive():
                    raise RuntimeError("the serve process exited")
                try:
                    return await prefect.read_deployment_by_name(DEPLOYMENT)
                except Exception:
                    return None

            found = await eventually(deployment, 180, f"deployment {DEPLOYMENT}")
            created = time.time()
            flow_run = await prefect.create_flow_run_from_deployment(
                found.id, parameters={"count": settings.jobs}
            )

            async def all_running() -> bool:
                jobs = _jobs_of(emulator, flow_run.id)
                return len(jobs) == settings.jobs and all(job["status"] == "Running" for job in jobs)

            await eventually(all_running, 600, f"{settings.jobs} jobs Running")
            running_after = time.time() - created
            await _until_idle(emulator)
            cancelling = time.time()
            await prefect.set_flow_run_state(flow_run.id, State(type=StateType.CANCELLING, name="Cancelling"))
            seen: dict[str, float] = {}
            ids = {job["id"] for job in _jobs_of(emulator, flow_run.id)}

            async def over() -> bool:
                now = time.time()
                cancels = emulator.stats()["cancels"]
                if "sent" not in seen and all(cancels.get(job_id, 0) for job_id in ids):
                    seen["sent"] = now
                state = (await prefect.read_flow_run(flow_run.id)).state
                if state is not None and state.is_final() and "run" not in seen:
                    seen["run"] = state.timestamp.timestamp() if state.timestamp else now
                    seen["run_state"] = state.type.value  # type: ignore[assignment]
                jobs = _jobs_of(emulator, flow_run.id)
                return "run" in seen and all(
                    job["status"] in ("Cancelled", "Completed", "Failed") for job in jobs
                )

            await eventually(over, settings.follow_seconds, "the run and its jobs to end", every=0.1)
            await asyncio.sleep(3.0)  # the run's last log lines
            lines = await _log_lines(prefect, flow_run.id)
    finished = finished_at(emulator)
    jobs = _jobs_of(emulator, flow_run.id)
    cancels = emulator.stats()["cancels"]
    return {
        "running_after": running_after,
        "cancelling": cancelling,
        "seen": seen,
        "statuses": [job["status"] for job in jobs],
        "last_finished": max((finished[job["id"]] for job in jobs if job["id"] in finished), default=None),
        "cancels": [cancels.get(job["id"], 0) for job in jobs],
        "layers": {layer: sum(f"cancel sent by the {layer}" in line for line in lines) for layer in LAYERS},
    }


async def _log_lines(prefect: Any, run_id: Any) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    every = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    lines: list[str] = []
    while page := await prefect.read_logs(log_filter=every, limit=LOG_PAGE, offset=len(lines)):
        lines += [log.message for log in page]
        if len(page) < LOG_PAGE:
            break
    return lines


def row(settings: Settings, measured: dict[str, Any]) -> Row:
    start, seen, n = measured["cancelling"], measured["seen"], settings.jobs
    bound = f"lower bound {settings.cancel_latency:g} s, the emulator's cancel latency"
    last = measured["last_finished"]
    cancels = measured["cancels"]
    statuses = measured["statuses"]
    return Row(
        f"{n} running jobs, {settings.cancel_latency:g} s cancel latency",
        [
            Figure(
                "all_cancelled",
                "all jobs Cancelled after",
                None if last is None else last - start,
                "s",
                beside=bound,
            ),
            Figure(
                "requests_sent",
                "all cancel requests in after",
                seen.get("sent", 0) - start if "sent" in seen else None,
                "s",
            ),
            Figure("run_final", "run final after", seen["run"] - start, "s"),
            Figure("run_state", "run state", seen.get("run_state")),
            Figure("cancelled", "jobs Cancelled", f"{statuses.count('Cancelled')}/{n}"),
            Figure(
                "exactly_one",
                "jobs with exactly 1 cancel request",
                sum(c == 1 for c in cancels),
                goal=Goal("==", n, "every job"),
            ),
            Figure("cancel_requests", "cancel requests", sum(cancels)),
            Figure(
                "by_layer",
                "cancels sent by sensor / hook / reaper",
                " / ".join(str(measured["layers"][x]) for x in LAYERS),
            ),
            Figure("running_after", "submitted and all Running after", measured["running_after"], "s", 0),
        ],
    )


NOTES = [
    "Timeline: the run is created from the served deployment; its flow submits the jobs "
    "(`submit_sampler_jobs`, one pub per job) and awaits them (`wait_for_jobs`, default "
    "`PollPolicy()`); once the emulator shows all of them Running and has finished executing them "
    "(its CPU under 10 % of a core for a second, so that Aer's work does not slow its answers), the "
    "run is set Cancelling through the API. Times are from that moment.",
    "all jobs Cancelled: the latest `finished` timestamp of the run's jobs on the emulator. all "
    "cancel requests in: when the emulator had counted a cancel for every job (polled every 0.1 s). "
    "run final: the timestamp of the run's final state in the Prefect API.",
    "Cancel requests are the emulator's counts per job (409s included); the layers are counted "
    "from the run's log lines ('cancel sent by the sensor', '... by the flow hook').",
    "The flow is decorated with `cancel_jobs_on_exit`; the serve process polls for scheduled "
    "runs every second (PREFECT_RUNNER_POLL_FREQUENCY=1), as in the package's e2e tests.",
]
