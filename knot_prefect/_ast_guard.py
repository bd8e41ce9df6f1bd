"""A guard for a CPython bug that fails ``ast.parse`` when two threads parse at once.

CPython 3.11.0-3.11.7 and 3.12.0-3.12.1 keep one interpreter-wide counter while they
turn a parsed tree into Python objects. A garbage collection inside that step can run
Python code and so let another thread run; if that thread parses too, the first fails
with ``SystemError: AST constructor recursion depth mismatch`` (CPython gh-106905,
fixed in 3.11.8 and 3.12.2). Pydantic parses source while it builds a class (field
docstrings, the signature of a builtin default factory), so a flow run whose main
thread imports block modules while Prefect's event-loop thread builds a model met it.

On those versions ``import knot_prefect`` wraps ``ast.parse`` so that parses take turns
and no garbage collection runs inside one: a parse is then never interleaved. Nothing
changes on other versions.
"""

from __future__ import annotations

import ast
import functools
import gc
import sys
import threading
from typing import Any

_AFFECTED = ((3, 11, 0) <= sys.version_info[:3] < (3, 11, 8)
             or (3, 12, 0) <= sys.version_info[:3] < (3, 12, 2))
_PARSE_LOCK = threading.RLock()  # re-entrant: a parse never calls back, but be safe


def _guarded(parse: Any) -> Any:
    @functools.wraps(parse)
    def guarded_parse(*args: Any, **kwargs: Any) -> Any:
        with _PARSE_LOCK:
            collecting = gc.isenabled()
            gc.disable()
            try:
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
    ast.parse = _guarded(ast.parse)
    return True
