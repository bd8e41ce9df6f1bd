"""Rewrite knot's ``:name`` placeholders into a driver's own parameter style.

knot SQL always writes values as ``:name`` placeholders. Drivers differ: DuckDB binds
``$name``, Snowflake's server-side binding takes ``?`` with a list, BigQuery takes
``@name``. The rewrite skips string literals, quoted identifiers, comments and ``::``
casts, so only real placeholders change; values are never formatted into the text.

Examples:
    >>> sql, names = rewrite_named_params("SELECT :a, b::text, ':b' FROM t", "dollar")
    >>> print(sql, names)
    SELECT $a, b::text, ':b' FROM t ['a']
    >>> rewrite_named_params("SELECT :x, :y, :x", "qmark")
    ('SELECT ?, ?, ?', ['x', 'y', 'x'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

ParamStyle = Literal["dollar", "qmark", "at", "null"]

_TOKEN = re.compile(
    r"""
    (?P<literal>'(?:[^']|'')*')            # 'string literal'
    | (?P<quoted>"(?:[^"]|"")*")           # "quoted identifier"
    | (?P<backtick>`[^`]*`)                # `quoted identifier` (BigQuery)
    | (?P<line>--[^\n]*)                   # -- comment
    | (?P<block>/\*.*?\*/)                 # /* comment */
    | (?P<cast>::)                         # a cast, never a placeholder
    | (?<![:\w]):(?P<name>[A-Za-z_]\w*)    # :name
    """,
    re.VERBOSE | re.DOTALL,
)


def rewrite_named_params(sql: str, style: ParamStyle) -> tuple[str, list[str]]:
    """Rewrite ``:name`` placeholders into ``style``.

    Args:
        sql: SQL with ``:name`` placeholders.
        style: ``"dollar"`` (``$name``), ``"qmark"`` (``?``), ``"at"`` (``@name``) or
            ``"null"`` (``NULL``, for parsing a query without its values).

    Returns:
        The rewritten SQL and the placeholder names in order of appearance.
    """
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            return match.group(0)
        names.append(name)
        if style == "dollar":
            return f"${name}"
        if style == "at":
            return f"@{name}"
        if style == "null":
            return "NULL"
        return "?"

    return _TOKEN.sub(replace, sql), names


def check_params(names: list[str], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check that every placeholder has a value and every value a placeholder.

    Args:
        names: Placeholder names found in the SQL.
        params: The values given.

    Returns:
        The values of the placeholders used, as a plain dict.

    Raises:
        ValueError: Naming the placeholders without values or the values without
            placeholders.
    """
    given = dict(params or {})
    missing = sorted(set(names) - set(given))
    if missing:
        raise ValueError(
            f"No value for placeholder(s) {', '.join(':' + m for m in missing)}: "
            "pass them in params={...}."
        )
    unused = sorted(set(given) - set(names))
    if unused:
        raise ValueError(
            f"params has value(s) for {', '.join(unused)} but the SQL has no such "
            "placeholder: write them as :name in the SQL, or drop them from params."
        )
    return {name: given[name] for name in dict.fromkeys(names)}
