"""How every ``prefect-qiskit-jobs`` command shows an error: one line on stderr, never a traceback.

Exit status 2 for what the person can fix in the command (a malformed id or flag, an unknown job,
missing or refused credentials), 1 for the rest: IBM or the Prefect API unreachable, jobs without
a result. Messages come from the gateway, which has scrubbed the token from them, or name only
the Prefect API's address, without any user or password it carries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import typer

BAD_INPUT_EXIT = 2
FAILED_EXIT = 1


class BadInputError(ValueError):
    """A flag's value a command cannot use; shown as one line, exit status 2."""


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Show the package's errors, and a Prefect API out of reach, as one line on stderr."""
    from prefect_qiskit_jobs.errors import (
        ConfigurationError,
        InvalidJobInputError,
        IQPAuthenticationError,
        JobNotFoundError,
        QiskitJobsError,
    )

    bad_input = (BadInputError, ConfigurationError, InvalidJobInputError, JobNotFoundError)
    try:
        yield
    except (*bad_input, IQPAuthenticationError) as exc:
        typer.echo(f"Error: {one_line(str(exc))}", err=True)
        raise typer.Exit(BAD_INPUT_EXIT) from None
    except QiskitJobsError as exc:
        typer.echo(f"Error: {one_line(str(exc))}", err=True)
        raise typer.Exit(FAILED_EXIT) from None
    except Exception as exc:
        if not _prefect_unreachable(exc):
            raise
        typer.echo(
            f"Error: Cannot reach the Prefect API at {_prefect_api_address()}: "
            "start a server (prefect server start) or point PREFECT_API_URL at yours",
            err=True,
        )
        raise typer.Exit(FAILED_EXIT) from None


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, made one space."""
    return " ".join(text.split())


def _prefect_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised because of, a connection to the Prefect API that failed.

    Prefect's client raises httpx's errors as they come, or wraps them in a ``RuntimeError``
    ("Failed to reach API at ..."); IBM's client speaks ``requests``, and the gateway turns its
    errors into the package's own, so an httpx transport error here is always Prefect's.
    """
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.TransportError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _prefect_api_address() -> str:
    """The Prefect API URL in force, without any user or password in it."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value() or "(none set: PREFECT_API_URL)"
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
