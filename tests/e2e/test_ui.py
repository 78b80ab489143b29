"""What people see: a quickstart run's job table, status events and result summaries, through the
real Prefect API and the real Prefect UI in headless Chromium.

The browser test reads the job board's cells as the UI shows them at a laptop's width, and saves
screenshots of the board, a Sampler result histogram and an Estimator result table under
``test-output/ui/`` for people to look at."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.e2e.conftest import ROOT, PrefectServer, eventually

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def quick_iqp() -> Iterator[RunningEmulator]:
    """An emulator whose jobs queue briefly, so a quickstart run sees QUEUED, RUNNING and DONE."""
    with start_emulator(EmulatorConfig(queue_delay=1.0, min_run_seconds=0.5)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def quickstart_run(prefect_server: PrefectServer, quick_iqp: RunningEmulator) -> dict[str, Any]:
    """One quickstart run, in its own process as a user would start it, against the e2e server."""
    env = {**os.environ, **prefect_server.environment(), **quick_iqp.environment()}
    script = (
        "import asyncio, json\n"
        "from prefect import flow\n"
        "from qiskit import QuantumCircuit, transpile\n"
        "from qiskit.quantum_info import SparsePauliOp\n"
        "from qiskit_ibm_runtime.fake_provider import FakeManilaV2\n"
        "from prefect_qiskit_jobs import afetch_job_result, asubmit_estimator_job, await_for_job\n"
        "from flows.quickstart import quickstart\n"
        "@flow\n"
        "async def estimated():\n"
        "    bell = QuantumCircuit(2)\n"
        "    bell.h(0)\n"
        "    bell.cx(0, 1)\n"
        "    isa = transpile(bell, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)\n"
        "    observables = [SparsePauliOp(p).apply_layout(isa.layout) for p in ('ZZ', 'XX', 'ZI')]\n"
        "    job = await asubmit_estimator_job([(isa, observables)], backend='ibmq_manila')\n"
        "    await await_for_job(job)\n"
        "    await afetch_job_result(job)\n"
        "    return job.job_id\n"
        "state = asyncio.run(quickstart(shots=500, return_state=True))\n"
        "run_id = str(state.state_details.flow_run_id)\n"
        "estimator_job = asyncio.run(estimated())\n"
        "out = {'counts': state.result(), 'run': run_id, 'estimator_job': estimator_job}\n"
        "print('RESULT', json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    payload: dict[str, Any] = json.loads(line[len("RESULT ") :])
    payload["jobs"] = [job for job in quick_iqp.jobs() if f"prefect-flow-run:{payload['run']}" in job["tags"]]
    return payload


@pytest.fixture
async def run_artifacts(prefect: PrefectClient, quickstart_run: dict[str, Any]) -> dict[str, Any]:
    artifacts = await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(quickstart_run["run"])])
        )
    )
    return {artifact.key: artifact for artifact in artifacts if artifact.key}


async def test_the_run_board_lists_each_job_with_its_final_status(
    quickstart_run: dict[str, Any], run_artifacts: dict[str, Any]
) -> None:
    jobs = quickstart_run["jobs"]
    assert len(jobs) == 2
    assert {job["status"] for job in jobs} == {"Completed"}
    board = run_artifacts[f"qiskit-jobs-{quickstart_run['run']}"]
    rows = json.loads(board.data) if isinstance(board.data, str) else board.data
    assert {row["job id"]: row["status"] for row in rows} == {job["id"]: "DONE" for job in jobs}
    assert all(row["backend"] == "ibmq_manila" and row["finished"] for row in rows)
    progress = run_artifacts[f"qiskit-run-progress-{quickstart_run['run']}"]
    assert (progress.type, progress.data) == ("progress", 100.0)
    assert progress.description.splitlines() == ["**2 of 2 jobs final**", "", "- DONE: 2"]


async def test_each_result_has_a_counts_summary(
    quickstart_run: dict[str, Any], run_artifacts: dict[str, Any]
) -> None:
    for job in quickstart_run["jobs"]:
        summary = run_artifacts[f"qiskit-result-{job['id']}"]
        assert summary.type == "markdown"
        assert "| outcome | count | share |" in summary.data
        circuit = next(t.split(":", 1)[1] for t in job["tags"] if t.startswith("circuit:"))
        outcome, count = next(iter(quickstart_run["counts"][circuit].items()))  # the most frequent
        assert f"| `{outcome}` | {count} |" in summary.data


async def test_status_changes_are_events_in_order(
    prefect: PrefectClient, quickstart_run: dict[str, Any]
) -> None:
    run_id = quickstart_run["run"]

    async def events_of_run() -> list[dict[str, Any]] | None:
        response = await prefect._client.post(
            "/events/filter",
            json={
                "filter": {
                    "event": {"prefix": ["qiskit.job."]},
                    "related": {"id": [f"prefect.flow-run.{run_id}"]},
                    "occurred": {"since": "2000-01-01T00:00:00+00:00"},
                    "order": "ASC",
                },
                "limit": 50,
            },
        )
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["events"]
        done = sum(1 for e in found if e["event"] == "qiskit.job.done")
        return found if done == len(quickstart_run["jobs"]) else None

    events = await eventually(events_of_run, 60, "the jobs' done events")
    for job in quickstart_run["jobs"]:
        mine = sorted((e for e in events if e["payload"]["job_id"] == job["id"]), key=lambda e: e["occurred"])
        names = [e["event"] for e in mine]
        assert names[-1] == "qiskit.job.done"
        assert names == sorted(
            names, key=["qiskit.job.queued", "qiskit.job.running", "qiskit.job.done"].index
        )
        assert mine[-1]["resource"]["prefect.resource.id"] == f"qiskit.job.{job['id']}"
        assert mine[-1]["payload"]["backend"] == "ibmq_manila"
        assert any(r["prefect.resource.id"].startswith("prefect.task-run.") for r in mine[-1]["related"])


# The cells of the table on the page that holds ``job id``, and whether it fits its container.
READ_TABLE = """(jobId) => {
  const cell = [...document.querySelectorAll('td')].find(td => td.innerText.trim() === jobId);
  if (!cell) return null;
  const table = cell.closest('table');
  const headers = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
  const cells = (tr) => [...tr.querySelectorAll('td')].map((td, i) => [headers[i], td.innerText.trim()]);
  const rows = [...table.querySelectorAll('tbody tr')].map(tr => Object.fromEntries(cells(tr)));
  let box = table.parentElement;
  while (box && box !== document.body && box.scrollWidth <= box.clientWidth) box = box.parentElement;
  const page = document.scrollingElement;
  return {
    headers, rows,
    scrolls: box !== document.body && box !== null && box.scrollWidth > box.clientWidth,
    page_scrolls: page.scrollWidth > page.clientWidth,
    right: table.getBoundingClientRect().right, width: window.innerWidth,
  };
}"""


def show(page: Any, url: str, text: str, screenshot: Path) -> None:
    """Open the latest artifact of the key page ``url``, wait until ``text`` shows, and save a
    screenshot (also when it never shows)."""
    page.goto(url, wait_until="networkidle")
    try:
        page.locator("a[href*='/artifacts/artifact/']").first.click()
        page.get_by_text(text, exact=True).first.wait_for(state="visible")
    finally:
        page.screenshot(path=str(screenshot), full_page=True)


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)
def test_the_prefect_ui_shows_each_jobs_times_and_qpu_seconds_without_scrolling_and_its_results(
    prefect_server: PrefectServer, quickstart_run: dict[str, Any]
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "CI installs Debian's chromium (.ci/run)"
    ui = prefect_server.url.removesuffix("/api")
    out = ROOT / "test-output" / "ui"
    out.mkdir(parents=True, exist_ok=True)
    jobs = quickstart_run["jobs"]
    job_ids = [job["id"] for job in jobs]
    shots = {
        "board": out / "quickstart-board.png",
        "sampler": out / "sampler-result.png",
        "estimator": out / "estimator-result.png",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{ui}/runs/flow-run/{quickstart_run['run']}", wait_until="networkidle")
            page.get_by_text("Artifacts", exact=True).first.click()
            page.get_by_text(f"qiskit-jobs-{quickstart_run['run']}").first.click()
            try:
                for job_id in job_ids:
                    page.get_by_text(job_id, exact=True).first.wait_for(state="visible")
                board = page.evaluate(READ_TABLE, job_ids[0])
            finally:
                page.screenshot(path=str(shots["board"]), full_page=True)

            show(page, f"{ui}/artifacts/key/qiskit-result-{job_ids[0]}", "outcome", shots["sampler"])
            estimator_key = f"qiskit-result-{quickstart_run['estimator_job']}"
            show(page, f"{ui}/artifacts/key/{estimator_key}", "expectation value", shots["estimator"])
            estimates = page.evaluate(
                """() => [...document.querySelectorAll('thead th')].map(th => th.innerText.trim())"""
            )
        finally:
            browser.close()

    assert board is not None, "the board shows no cell with the job id"
    assert board["headers"] == [
        "status", "backend", "job id", "started", "finished", "QPU seconds"
    ], board["headers"]  # fmt: skip
    assert {row["job id"] for row in board["rows"]} == set(job_ids)
    for row in board["rows"]:
        assert row["status"] == "DONE", row
        assert row["started"], row
        assert row["finished"], row
        assert float(row["QPU seconds"]) >= 0, row
    assert not board["scrolls"], board
    assert not board["page_scrolls"], board
    assert board["right"] <= board["width"], board
    assert "expectation value" in estimates
    for path in shots.values():
        assert path.stat().st_size > 0, path
