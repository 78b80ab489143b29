"""Running an emulator: in the foreground for the CLI, or as a background process for tests and demos.

A background emulator is a separate OS process, as IBM is: its CPU and memory never mix with the
caller's, a flow process can be killed without killing it, and it can be stopped and restarted on
the same database file to show that jobs survive.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .app import CATALOG_PREFIX, IAM_PREFIX, SEARCH_PREFIX, create_app
from .config import EmulatorConfig, FaultRule
from .traffic import ADMIN_PREFIX, RUNTIME_PREFIX

# The package's setting of its job-creation limit (prefect_qiskit_jobs.throttle reads it).
JOB_RATE_LIMIT_ENV = "PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PORT_ATTEMPTS = 3
# Seconds a stopping emulator gets to exit before it is killed. Idle, it exits in well under one;
# a request it holds (a hang or latency fault) keeps it up until answered, so such a request is
# dropped, as an outage drops it, after this grace rather than after a quarter of a minute.
STOP_GRACE_SECONDS = 5.0


class EmulatorExited(RuntimeError):
    """The background emulator process ended before it answered (a bad config, a port taken)."""


# Seconds between the background emulator's looks at whether the process that started it is alive.
PARENT_CHECK_SECONDS = 1.0

# The background emulator's main. The package's top-level ``__init__`` imports Prefect and the
# whole flow API (seconds), which the emulator never uses, so the child registers a bare package
# object in its place and imports only the ``emulator`` subpackage, whose modules import nothing
# from the rest of the package. Arguments: the config file, the port, the parent's pid.
_CHILD_MAIN = """
import importlib.util, sys, types
spec = importlib.util.find_spec("prefect_qiskit_jobs")
package = types.ModuleType(spec.name)
package.__path__ = list(spec.submodule_search_locations)
package.__spec__, package.__file__ = spec, spec.origin
sys.modules[spec.name] = package
from pathlib import Path
from prefect_qiskit_jobs.emulator.server import load_config, serve, stop_with_parent
config = load_config(Path(sys.argv[1]), remove=True)
stop_with_parent(int(sys.argv[3]))
serve(config, port=int(sys.argv[2]))
"""


def serve(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8765, log_level: str = "warning"
) -> None:
    """Serve the emulator in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, access_log=False)


def stop_with_parent(parent_pid: int) -> None:
    """Stop this process (as SIGTERM stops it) once ``parent_pid`` is no longer its parent.

    A background emulator's parent can die without stopping it (SIGKILL, a test worker past its
    timeout); the orphan is adopted by another process, and then it shuts down instead of
    serving on, unseen, for ever.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="emulator-parent-watch", daemon=True).start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def client_environment(base_url: str, config: EmulatorConfig) -> dict[str, str]:
    """The variables after which a bare ``QiskitRuntimeService()`` talks to the emulator at ``base_url``.

    They carry the emulator's own job rate limit for the package's throttle (``off`` for an
    unlimited emulator, so that tests and demos against it are never slowed to IBM's 5 a minute).
    """
    limit = config.job_rate_limit
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY", "")]))
    return {
        "QISKIT_IBM_CHANNEL": "ibm_quantum_platform",
        "QISKIT_IBM_TOKEN": config.api_keys[0].get_secret_value(),
        "QISKIT_IBM_URL": base_url + RUNTIME_PREFIX,
        "QISKIT_IBM_INSTANCE": config.instance_crn,
        "IAM_URL": base_url + IAM_PREFIX,
        "GLOBAL_SEARCH_URL": base_url + SEARCH_PREFIX,
        "GLOBAL_CATALOG_URL": base_url + CATALOG_PREFIX,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        JOB_RATE_LIMIT_ENV: f"{limit.jobs}/{limit.window_seconds:g}" if limit else "off",
    }


@dataclass
class RunningEmulator:
    """An emulator serving on 127.0.0.1 in a child process, with what a client needs to reach it."""

    config: EmulatorConfig
    port: int
    process: subprocess.Popen[bytes] | None = None
    _config_file: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime_url(self) -> str:
        return self.url + RUNTIME_PREFIX

    @property
    def api_key(self) -> str:
        return self.config.api_keys[0].get_secret_value()

    def environment(self) -> dict[str, str]:
        return client_environment(self.url, self.config)

    def export_environment(self) -> None:
        """Point every ``QiskitRuntimeService()`` of this process (and its children) at the emulator."""
        os.environ.update(self.environment())

    # ----- admin -------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + ADMIN_PREFIX + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        with _no_proxy_opener().open(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def stats(self) -> dict[str, Any]:
        """Request counts by route, by job, cancels per job, and injected faults."""
        stats: dict[str, Any] = self.admin("GET", "/stats")
        return stats

    def jobs(self) -> list[dict[str, Any]]:
        """Every job with its status and timestamps, oldest first."""
        jobs: list[dict[str, Any]] = self.admin("GET", "/jobs")
        return jobs

    def job(self, job_id: str) -> dict[str, Any]:
        return next(j for j in self.jobs() if j["id"] == job_id)

    def reset(self, jobs: bool = False) -> None:
        """Zero the counters and restore the configured faults; with ``jobs`` also forget every job."""
        self.admin("POST", f"/reset?jobs={'true' if jobs else 'false'}")

    def release(self, job_id: str | None = None) -> None:
        """Let one queued job (or all) start without waiting out the queue delay.

        Its backend's queue stays FIFO: a released job starts once the jobs ahead of it have started.
        """
        self.admin("POST", f"/jobs/{job_id}/release" if job_id else "/release")

    def create_jobs(
        self, count: int, backend: str, tags: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[str]:
        """Create ``count`` queued jobs at once (no pubs unless ``params``); their ids, in queue order."""
        body: dict[str, Any] = {"count": count, "backend": backend, "tags": list(tags or ())}
        if params is not None:
            body["params"] = params
        ids: list[str] = self.admin("POST", "/jobs", body)["ids"]
        return ids

    def set_faults(self, *rules: FaultRule, seed: int | None = None) -> None:
        """Replace the fault rules in force (none: no faults) until the next ``reset``."""
        body: dict[str, Any] = {"faults": [rule.model_dump() for rule in rules]}
        if seed is not None:
            body["seed"] = seed
        self.admin("PUT", "/faults", body)

    def fail(self, job_id: str, reason: str) -> None:
        """Make a queued job end Failed with ``reason`` when it runs."""
        self.admin("POST", f"/jobs/{job_id}/fail", {"reason": reason})

    def override_status(self, job_id: str, status: str | None) -> None:
        """Answer ``status`` (e.g. one IBM might add) as the job's status on the job routes; None: its own.

        The job goes on queueing, running and ending as before; only the string the client reads changes.
        """
        if status is None:
            self.admin("DELETE", f"/jobs/{job_id}/status")
        else:
            self.admin("PUT", f"/jobs/{job_id}/status", {"status": status})

    def age(self, job_id: str, seconds: float) -> None:
        """Move a job's times ``seconds`` into the past: past ``result_retention`` it is gone."""
        self.admin("POST", f"/jobs/{job_id}/age", {"seconds": seconds})

    def calibration(self, backend: str) -> dict[str, str]:
        """``{"backend", "calibration_id", "last_update_date"}`` of the device's current calibration."""
        calibration: dict[str, str] = self.admin("GET", f"/backends/{backend}/calibration")
        return calibration

    def recalibrate(self, backend: str) -> dict[str, str]:
        """Take a new calibration of the device (a new id and date); its earlier ones stay readable."""
        calibration: dict[str, str] = self.admin("POST", f"/backends/{backend}/recalibrate")
        return calibration

    # ----- process -----------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> RunningEmulator:
        if self._config_file is None:
            handle, name = tempfile.mkstemp(prefix="iqp-emulator-", suffix=".json")
            os.close(handle)
            self._config_file = Path(name)
        self._config_file.write_text(_config_json(self.config))
        command = [
            sys.executable,
            "-c",
            _CHILD_MAIN,
            str(self._config_file),
            str(self.port),
            str(os.getpid()),
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise EmulatorExited(
                    f"the emulator exited with code {code} while starting on port {self.port}"
                )
            try:
                self.admin("GET", "/health")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the emulator did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> RunningEmulator:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._config_file is not None:
            self._config_file.unlink(missing_ok=True)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def start_emulator(config: EmulatorConfig | None = None, port: int | None = None) -> RunningEmulator:
    """Start an emulator in a background process and wait until it answers.

    Example:
        >>> with start_emulator(EmulatorConfig(queue_delay=2)) as emulator:  # doctest: +SKIP
        ...     emulator.export_environment()
        ...     service = QiskitRuntimeService()
    """
    config = config or EmulatorConfig()
    if port is not None:
        return RunningEmulator(config, port).start()
    # A port found free here can be taken by another process before the child binds it; the
    # child then exits at once, and another port is tried.
    for attempt in range(PORT_ATTEMPTS):
        emulator = RunningEmulator(config, free_port())
        try:
            return emulator.start()
        except EmulatorExited:
            emulator.close()
            if attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _config_json(config: EmulatorConfig) -> str:
    data = config.model_dump(mode="json")
    data["api_keys"] = [key.get_secret_value() for key in config.api_keys]
    return json.dumps(data)


def load_config(path: Path, remove: bool = False) -> EmulatorConfig:
    """The config ``path`` holds; with ``remove`` the file is deleted once read (it holds the API keys)."""
    config = EmulatorConfig.model_validate_json(path.read_text())
    if remove:
        path.unlink(missing_ok=True)
    return config


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))
