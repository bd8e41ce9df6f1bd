"""Console output shared by the CLI commands."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

import typer


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def is_interactive() -> bool:
    return sys.stderr.isatty()


def unreachable_api_message(reason: str) -> str:
    """Say which Prefect API could not be reached and how to point knot at another."""
    from prefect.settings import PREFECT_API_URL

    from knot_prefect.urls import mask_urls

    url = PREFECT_API_URL.value()
    return (
        f"Cannot reach the Prefect API at {mask_urls(url or '(unset)')} ({mask_urls(reason)}). "
        "Start it (prefect server start), or point knot at another one with "
        "`prefect config set PREFECT_API_URL=http://HOST:4200/api` or the PREFECT_API_URL "
        "environment variable."
    )


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Turn a Prefect API that cannot be reached into a clear error and exit code 1."""
    import httpx

    try:
        yield
    except httpx.TransportError as exc:
        fail(unreachable_api_message(f"{type(exc).__name__}: {exc}" if str(exc) else
                                     type(exc).__name__))
