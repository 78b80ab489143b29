"""The commands that look after flow runs: the reaper, the resumer, the zombie-run automation."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_qiskit_jobs.cli.errors import one_line_errors

automations_app = typer.Typer(
    help="Prefect automations the cancellation layers rely on.", no_args_is_help=True
)


def reap(
    credentials: Annotated[
        str | None, typer.Option(help="Saved IBMQuantumCredentials block; default: QISKIT_IBM_* variables.")
    ] = None,
    include_failed: Annotated[
        bool, typer.Option(help="Also cancel jobs of Failed (timed-out) runs.")
    ] = False,
    grace_seconds: Annotated[float, typer.Option(help="Leave runs that just ended to their hooks.")] = 30.0,
    dry_run: Annotated[bool, typer.Option(help="Report what would be cancelled; cancel nothing.")] = False,
) -> None:
    """Cancel pending IBM jobs whose Prefect flow run was cancelled or crashed, once."""
    import asyncio

    from prefect_qiskit_jobs.blocks import resolve_credentials
    from prefect_qiskit_jobs.cancel.reaper import reap_orphaned_jobs

    with one_line_errors():
        resolve_credentials(credentials)  # before the reaper's flow run: a missing one is one line
        reaped = asyncio.run(
            reap_orphaned_jobs(
                credentials=credentials,
                include_failed=include_failed,
                grace_seconds=grace_seconds,
                dry_run=dry_run,
            )
        )
    verb = "Would cancel" if dry_run else "Cancelled"
    typer.echo(f"{verb} {len(reaped)} job(s)" + (f": {', '.join(reaped)}" if reaped else ""))


@automations_app.command("crash-zombies")
def automations_crash_zombies(
    within: Annotated[
        float | None,
        typer.Option(
            help="Seconds without a heartbeat before a run is marked Crashed (more than 30); "
            "default 540, three of Prefect's default 180 s heartbeats."
        ),
    ] = None,
    replace: Annotated[bool, typer.Option(help="Update the automation if the server has it.")] = False,
) -> None:
    """Create the automation that marks runs Crashed when their heartbeats stop, once.

    Then the reaper cancels the IBM jobs of runs whose serve process or worker died with them.
    """
    import asyncio

    from prefect_qiskit_jobs.cancel.automations import crash_zombies_automation, install

    try:
        automation = crash_zombies_automation(within)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--within") from None
    with one_line_errors():
        installed = asyncio.run(install(automation, replace=replace))
    window = f"{installed.within.total_seconds():g} s" if installed.within else "unknown"
    note = " (pass --replace to update it)" if installed.action == "kept" else ""
    typer.echo(
        f"Automation {automation.name!r} {installed.action}: id {installed.automation_id}, "
        f"window {window}{note}"
    )


def resumer(
    credentials: Annotated[
        str | None,
        typer.Option(help="Saved IBMQuantumCredentials block for runs naming none; default: QISKIT_IBM_*."),
    ] = None,
    every: Annotated[
        float, typer.Option(help="Seconds between cycles, and at most between two reads of a run's jobs.")
    ] = 10.0,
    once: Annotated[bool, typer.Option(help="Run one cycle (no watching) and exit.")] = False,
) -> None:
    """Resume deferred flow runs whose IBM jobs have ended; cancel jobs of runs that ended suspended.

    A Paused run is resumed the moment a read finds its jobs all final, not at the next cycle.
    """

    from prefect_qiskit_jobs.blocks import resolve_credentials
    from prefect_qiskit_jobs.wait.deferral import run_resumer

    with one_line_errors():
        if credentials is not None:  # a misspelled name fails now, not at the first run that needs it
            resolve_credentials(credentials)
        typer.echo(f"Resuming deferred flow runs every {every} s" if not once else "One resumer cycle")
        run_resumer(credentials=credentials, every=every, once=once)
