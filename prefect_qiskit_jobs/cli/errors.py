"""How every ``prefect-qiskit-jobs`` command shows an error: one line on stderr, never a traceback.

Exit status 2 for what the person can fix in the command or its settings (a malformed id or flag,
an unknown job, missing or refused credentials, IBM's or the Prefect API's), 1 for the rest: IBM or
the Prefect API unreachable, jobs without a result. Messages come from the gateway, which has
scrubbed the token from them, or name only the Prefect API's address, without any user or
password it carries.
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
    """Show the package's errors, and a Prefect API out of reach or refusing, as one line on stderr."""
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
        failure = _prefect_failure(exc)
        if failure is None:
            raise
        message, code = failure
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(code) from None


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, made one space."""
    return " ".join(text.split())


def _prefect_failure(exc: BaseException) -> tuple[str, int] | None:
    """What to say, and the exit status, when ``exc`` is or comes of a failed talk with the Prefect API.

    A connection that failed: the API is out of reach. An answer 401 or 403: the API refused this
    process's credentials. Prefect's client raises httpx's errors as they come, or wraps them (a
    ``RuntimeError``, "Failed to reach API at ..."); IBM's client speaks ``requests``, and the
    gateway turns its errors into the package's own, so an httpx error here is always Prefect's.
    None for any other error.
    """
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.TransportError):
            return (
                f"Cannot reach the Prefect API at {_prefect_api_address()}: "
                "start a server (prefect server start) or point PREFECT_API_URL at yours",
                FAILED_EXIT,
            )
        if isinstance(current, httpx.HTTPStatusError) and current.response.status_code in (401, 403):
            response = current.response
            return (
                f"The Prefect API at {_prefect_api_address()} refused this process's credentials "
                f"({response.status_code} {response.reason_phrase}): set PREFECT_API_AUTH_STRING to "
                "the server's auth string, or PREFECT_API_KEY for Prefect Cloud",
                BAD_INPUT_EXIT,
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


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
