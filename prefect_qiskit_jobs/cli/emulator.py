"""``prefect-qiskit-jobs emulator``: serve the local IBM Quantum Platform emulator, print its environment."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

emulator_app = typer.Typer(help="The local IBM Quantum Platform emulator.", no_args_is_help=True)


@emulator_app.command("serve")
def emulator_serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless --allow-remote.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    database: Annotated[
        Path | None, typer.Option(help="SQLite file: jobs and results survive a restart.")
    ] = None,
    queue_delay: Annotated[float | None, typer.Option(help="Seconds each job waits Queued.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs executing at once per backend.")] = None,
    min_run_seconds: Annotated[
        float | None, typer.Option(help="Seconds each job stays Running at least.")
    ] = None,
    cancel_latency: Annotated[
        float | None, typer.Option(help="Seconds a Running job stays Running after its cancel is accepted.")
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            help="Device to serve (repeatable; replaces the defaults): FAKE under the fake's own name "
            "(manila serves ibmq_manila), or NAME=FAKE, e.g. ibm_brisbane=kyiv. FAKE is a fake backend "
            "folder or device name of qiskit-ibm-runtime's fake provider."
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(envvar="PREFECT_QISKIT_JOBS_EMULATOR_API_KEY", help="Accepted API key (repeatable)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help='Fault rule (repeatable), e.g. "GET /jobs*:rate_limit=0.1,server_error=0.05".'),
    ] = None,
    fault_seed: Annotated[int | None, typer.Option(help="Seed of the fault draws.")] = None,
    job_rate_limit: Annotated[
        str | None,
        typer.Option(
            help="IBM's job creation limit per API key, JOBS/SECONDS[:no-retry-after], e.g. 5/60: "
            "beyond it POST /jobs answers 429 (with Retry-After unless :no-retry-after)."
        ),
    ] = None,
    result_retention: Annotated[
        str | None,
        typer.Option(
            help="How long a job is kept after it ends, e.g. 10m, 2h, 30d (default: for ever): past "
            "it the job and its result answer 404, as IBM answers for a deleted or expired job."
        ),
    ] = None,
    usage_limit: Annotated[
        str | None,
        typer.Option(
            help="The instance's usage limit in QPU time, e.g. 600s or 10m (the Open Plan's): once its "
            "jobs were charged that much, POST /jobs answers 409 'Usage exceeds instance limit'."
        ),
    ] = None,
    job_qpu_seconds: Annotated[
        float | None,
        typer.Option(help="QPU seconds charged to each completed job (default: its execution's wall time)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="JSON file of EmulatorConfig; flags override it.")
    ] = None,
    allow_remote: Annotated[bool, typer.Option(help="Allow binding a non-loopback address.")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the emulator in the foreground."""
    from pydantic import SecretStr, ValidationError

    from prefect_qiskit_jobs.emulator.catalog import Catalog
    from prefect_qiskit_jobs.emulator.config import EmulatorConfig, FaultRule
    from prefect_qiskit_jobs.emulator.server import LOOPBACK_HOSTS, load_config, serve

    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise typer.BadParameter(
            f"{host} is not a loopback address; pass --allow-remote to bind it", param_hint="--host"
        )
    settings = load_config(config) if config else EmulatorConfig()
    overrides: dict[str, object] = {
        "database": database,
        "queue_delay": queue_delay,
        "concurrency": concurrency,
        "min_run_seconds": min_run_seconds,
        "cancel_latency": cancel_latency,
        "backends": tuple(backend) if backend else None,
        "api_keys": tuple(SecretStr(k) for k in api_key) if api_key else None,
        "faults": tuple(FaultRule.parse(f) for f in fault) if fault else None,
        "fault_seed": fault_seed,
        "job_rate_limit": job_rate_limit,
        "result_retention": result_retention,
        "usage_limit_seconds": usage_limit,
        "job_qpu_seconds": job_qpu_seconds,
    }
    try:
        settings = EmulatorConfig.model_validate(
            {**settings.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
        Catalog(settings.backends)  # two devices served under one name
    except ValidationError as exc:
        messages = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise typer.BadParameter(messages) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from None
    typer.echo(
        f"IBM Quantum Platform emulator on http://{host}:{port} (backends: {', '.join(settings.backends)})"
    )
    serve(settings, host=host, port=port, log_level=log_level)


@emulator_app.command("env")
def emulator_env(
    url: Annotated[str, typer.Option(help="Where the emulator serves.")] = "http://127.0.0.1:8765",
    api_key: Annotated[
        str | None, typer.Option(envvar="PREFECT_QISKIT_JOBS_EMULATOR_API_KEY", help="API key to use.")
    ] = None,
    job_rate_limit: Annotated[
        str | None,
        typer.Option(help="The emulator's --job-rate-limit, for the package's throttle (default: off)."),
    ] = None,
) -> None:
    """Print the ``export`` lines after which ``QiskitRuntimeService()`` talks to the emulator."""
    from pydantic import SecretStr

    from prefect_qiskit_jobs.emulator.config import EmulatorConfig, JobRateLimitSpec
    from prefect_qiskit_jobs.emulator.server import client_environment

    try:
        limit = JobRateLimitSpec.parse(job_rate_limit) if job_rate_limit else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--job-rate-limit") from None
    keys = (SecretStr(api_key),) if api_key else EmulatorConfig().api_keys
    config = EmulatorConfig(api_keys=keys, job_rate_limit=limit)
    for name, value in client_environment(url.rstrip("/"), config).items():
        typer.echo(f"export {name}={shlex.quote(value)}")
