"""The synchronous form of a coroutine function, for APIs offered both ways.

knot writes the async form of such an API (``adeploy_flow``) and derives the sync one
(``deploy_flow``) from it, so the two keep one signature, one description of the
arguments and one body; the sync form's own documentation is the docstring under its
assignment. The sync form runs the coroutine with Prefect's ``run_coro_as_sync``,
which also works where an event loop is already running (inside a flow or a notebook).

Examples:
    >>> async def aadd(a: int, b: int = 1) -> int:
    ...     '''Add (async).'''
    ...     return a + b
    >>> add = synchronous(aadd)
    >>> add(2, b=3), add.__name__
    (5, 'add')
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")


def synchronous(coroutine_function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The synchronous form of ``coroutine_function``: same arguments, its result.

    Args:
        coroutine_function: The async form, named ``a<name>`` (the sync form is
            ``<name>``, as Prefect names ``adeploy`` and ``deploy``).

    Returns:
        A function with ``coroutine_function``'s signature (``inspect.signature`` and
        type checkers see it) that runs it to completion.
    """

    @functools.wraps(coroutine_function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from prefect.utilities.asyncutils import run_coro_as_sync

        return cast(R, run_coro_as_sync(coroutine_function(*args, **kwargs)))

    run.__name__ = run.__qualname__ = coroutine_function.__name__.removeprefix("a")
    run.__doc__ = (
        f"The synchronous form of {coroutine_function.__name__}; same arguments.\n\n"
        f"{coroutine_function.__doc__ or ''}"
    )
    return run
