"""A guard for a CPython bug that fails ``ast.parse`` when two threads parse at once.

CPython 3.11.0-3.11.7 and 3.12.0-3.12.1 keep one interpreter-wide counter while they
turn a parsed tree into Python objects. A garbage collection inside that step can run
Python code and so let another thread run; if that thread parses too, the first fails
with ``SystemError: AST constructor recursion depth mismatch`` (CPython gh-106905,
fixed in 3.11.8 and 3.12.2). Pydantic parses source while it builds a class (field
docstrings, the signature of a builtin default factory), so a flow run fails when its
main thread imports block modules while Prefect's event-loop thread builds a model.

On those versions ``import knot_prefect`` wraps ``ast.parse`` so that parses take turns
and no garbage collection runs inside one: a parse is then never interleaved. Nothing
changes on other versions. What the guard does not reach: ``compile(...,
ast.PyCF_ONLY_AST)`` called directly (griffe does, for annotations in docstrings), a
``parse`` bound by ``from ast import parse`` before knot was imported, and another
thread switching the collector on during a parse. Python 3.11.8 or later has none of it.
"""

from __future__ import annotations

import ast
import functools
import gc
import sys
import threading
from collections.abc import Callable
from typing import Any

_AFFECTED = ((3, 11, 0) <= sys.version_info[:3] < (3, 11, 8)
             or (3, 12, 0) <= sys.version_info[:3] < (3, 12, 2))
# Re-entrant: switching the collector back on may collect at once, while the lock is
# held, and a finalizer run by that collection may parse.
_PARSE_LOCK = threading.RLock()


def _guarded(parse: Callable[..., ast.AST]) -> Callable[..., ast.AST]:
    @functools.wraps(parse)
    def guarded_parse(*args: Any, **kwargs: Any) -> ast.AST:
        with _PARSE_LOCK:
            collecting = gc.isenabled()
            try:
                gc.disable()
                return parse(*args, **kwargs)
            finally:
                if collecting:
                    gc.enable()

    guarded_parse.__knot_guarded__ = True  # type: ignore[attr-defined]
    return guarded_parse


def guard_ast_parse() -> bool:
    """Wrap ``ast.parse`` on the CPython versions with the bug, once per process.

    Returns:
        Whether ``ast.parse`` is guarded now.

    Examples:
        >>> import ast
        >>> _ = guard_ast_parse()
        >>> type(ast.parse("x = 1").body[0]).__name__
        'Assign'
    """
    if getattr(ast.parse, "__knot_guarded__", False):
        return True
    if not _AFFECTED:
        return False
    ast.parse = _guarded(ast.parse)  # type: ignore[assignment]  # same signature, wrapped
    return True
