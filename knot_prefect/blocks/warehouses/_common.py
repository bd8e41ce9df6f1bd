"""Pieces every warehouse backend shares: parameters, staging names, schema checks.

Backends differ in their drivers, not in their rules. The rules live here so a
frame that one warehouse refuses is refused by every other one with the same words:

- :func:`bind_named` turns ``:name`` placeholders into the driver's own style.
- :func:`staging_name` names the short-lived tables that make writes atomic.
- :func:`prepare_frame` checks column names and normalises Arrow types on the way in.
- :func:`check_compatible` compares a frame with an existing table (new columns,
  type mismatches) and :func:`check_keys` checks upsert keys (present, not null,
  unique).

Examples:
    >>> bind_named("select * from t where id = :id and day = :day", {"id": 1, "day": 2},
    ...            style="numeric_dollar")
    ('select * from t where id = $1 and day = $2', [1, 2])
    >>> bind_named("select x::int from t where y = :y", {"y": 3}, style="named_dollar")
    ('select x::int from t where y = $y', {'y': 3})
    >>> bind_named("select `a:b` from t where d = :d", {"d": 1, "e": 2}, style="named_at")
    ('select `a:b` from t where d = @d', {'d': 1})
    >>> staging_name(TableName.parse("analytics.scores"), token="0123abcd").quoted()
    '"analytics"."_knot_stage_scores_0123abcd"'
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from knot_prefect.blocks.warehouses.base import (
    Evolve,
    SchemaMismatchError,
    WarehouseConnectionError,
    WarehouseError,
    table_exists_error,
)
from knot_prefect.blocks.warehouses.identifiers import (
    TableName,
    quote_identifier,
    validate_identifier,
)
from knot_prefect.blocks.warehouses.type_families import type_family

if TYPE_CHECKING:
    import pyarrow as pa

ParamStyle = Literal["named_colon", "named_dollar", "named_at", "numeric_dollar", "qmark"]

# A ``:name`` placeholder; ``::`` casts are skipped by the scanner below.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- parameters ------------------------------------------------------------------------
def bind_named(
    sql: str, params: Mapping[str, Any] | None, style: ParamStyle
) -> tuple[str, Any]:
    """Translate ``:name`` placeholders into a driver's parameter style.

    Placeholders inside string literals, quoted identifiers (``"x"`` or ```x```) and
    comments are left alone, and so are PostgreSQL/DuckDB ``::type`` casts and a colon
    right after a letter or digit (``12:30``). This is the one placeholder parser of
    every backend.

    Args:
        sql: SQL text with ``:name`` placeholders.
        params: The values.
        style: ``named_colon`` (``:name``, SQLAlchemy), ``named_dollar`` (``$name``,
            DuckDB), ``named_at`` (``@name``, BigQuery), ``numeric_dollar`` (``$1``,
            PostgreSQL) or ``qmark`` (``?``).

    Returns:
        The SQL text and the parameters in the driver's shape: a dict for the named
        styles (for ``named_at``, only the values used, in order of appearance), a
        list (in placeholder order) for the positional ones.

    Raises:
        WarehouseError: When the SQL names a placeholder missing from ``params``.
    """
    params = params or {}
    if ":" not in sql:  # no placeholder to translate
        if style == "named_at":
            return sql, {}
        return sql, (dict(params) if style.startswith("named") else [])
    # SQLAlchemy's text() reads ":word" anywhere, literals included: escape those.
    escape = style == "named_colon"
    out: list[str] = []
    ordered: list[Any] = []
    numbers: dict[str, int] = {}
    missing: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"', "`"):
            end = _end_of_quoted(sql, i, ch)
            out.append(_escape_colons(sql[i:end], escape))
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(_escape_colons(sql[i:end], escape))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out.append(_escape_colons(sql[i:end], escape))
            i = end
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif ch == ":" and not _after_word(sql, i) and (match := _NAME.match(sql, i + 1)):
            name = match.group(0)
            i = match.end()
            if name not in params:
                missing.append(name)
                continue
            if style == "named_colon":
                out.append(f":{name}")
            elif style == "named_dollar":
                out.append(f"${name}")
            elif style == "named_at":
                numbers.setdefault(name, len(numbers))
                out.append(f"@{name}")
            elif style == "numeric_dollar":
                if name not in numbers:
                    ordered.append(params[name])
                    numbers[name] = len(ordered)
                out.append(f"${numbers[name]}")
            else:
                ordered.append(params[name])
                out.append("?")
        else:
            out.append(ch)
            i += 1
    if missing:
        raise WarehouseError(
            f"The SQL uses {', '.join(':' + m for m in dict.fromkeys(missing))} but params "
            f"has no value for it (params has: {', '.join(sorted(params)) or 'nothing'})."
        )
    if style == "named_at":
        return "".join(out), {name: params[name] for name in numbers}
    if style.startswith("named"):
        return "".join(out), dict(params)
    return "".join(out), ordered


def _after_word(sql: str, index: int) -> bool:
    return index > 0 and (sql[index - 1].isalnum() or sql[index - 1] == "_")


def _escape_colons(text: str, escape: bool) -> str:
    return text.replace(":", "\\:") if escape else text


def _end_of_quoted(sql: str, start: int, quote: str) -> int:
    """Index just past the literal or identifier opened at ``start`` (doubled quotes escape)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


# -- staging tables --------------------------------------------------------------------
def staging_name(table: TableName, purpose: str = "stage", token: str | None = None) -> TableName:
    """A unique, valid name for a short-lived table next to ``table``.

    The name stays under PostgreSQL's 63-character limit and starts with
    ``_knot_`` so leftovers (after a killed process) are easy to recognise.

    Args:
        table: The target table.
        purpose: A short word saying what the table is for (``stage``, ``old``).
        token: A fixed suffix (for tests); a random one by default.

    Returns:
        The staging table's name, in the target's schema.
    """
    suffix = token or uuid.uuid4().hex[:8]
    base = re.sub(r"[^A-Za-z0-9_]", "_", table.table)[:32]
    return table.with_table(f"_knot_{purpose}_{base}_{suffix}")


def unique_key_name(table: TableName) -> str:
    """The name of the unique index knot puts on the keys of a table it creates.

    Examples:
        >>> unique_key_name(TableName.parse("analytics.scores"))
        'scores_knot_key_5e42644a'
    """
    digest = hashlib.sha1(str(table).encode()).hexdigest()[:8]
    return f"{table.table[:40]}_knot_key_{digest}"


# -- statements ------------------------------------------------------------------------
def merge_sql(
    target: str,
    source: str,
    columns: Sequence[str],
    keys: Sequence[str],
    quote: str = '"',
    qualify_set: bool = False,
) -> str:
    """One ``MERGE``: update the target's rows whose keys match the source's, insert the rest.

    Args:
        target: The target table, quoted.
        source: The source table (quoted) or a parenthesised query.
        columns: The source's columns (the keys among them).
        keys: The columns that identify a row.
        quote: The dialect's identifier quote.
        qualify_set: Write ``SET t.col = ...`` (Snowflake, BigQuery) rather than
            ``SET col = ...`` (PostgreSQL and DuckDB refuse a qualified target column).

    Examples:
        >>> sql = merge_sql('"scores"', '"stage"', ["id", "score"], ["id"])
        >>> print(sql.replace(" WHEN", "\\nWHEN"))
        MERGE INTO "scores" AS t USING "stage" AS s ON t."id" = s."id"
        WHEN MATCHED THEN UPDATE SET "score" = s."score"
        WHEN NOT MATCHED THEN INSERT ("id", "score") VALUES (s."id", s."score")
    """
    quoted = {column: quote_identifier(column, "column name", quote) for column in columns}
    on = " AND ".join(f"t.{quoted[k]} = s.{quoted[k]}" for k in keys)
    target_prefix = "t." if qualify_set else ""
    updates = ", ".join(
        f"{target_prefix}{q} = s.{q}" for column, q in quoted.items() if column not in keys
    )
    statement = f"MERGE INTO {target} AS t USING {source} AS s ON {on} "
    if updates:
        statement += f"WHEN MATCHED THEN UPDATE SET {updates} "
    listed = ", ".join(quoted.values())
    values = ", ".join(f"s.{q}" for q in quoted.values())
    return statement + f"WHEN NOT MATCHED THEN INSERT ({listed}) VALUES ({values})"


def on_conflict_sql(
    target: str, source: str, columns: Sequence[str], keys: Sequence[str]
) -> str:
    """An ``INSERT ... ON CONFLICT`` upsert, for a target with a unique index on ``keys``.

    The rows are applied in key order: two upserts running at once then meet their
    shared keys in the same order, so neither can hold a key the other waits for while
    waiting for one the other holds (a deadlock).

    Args:
        target: The target table, quoted.
        source: The source table (quoted) or a parenthesised query.
        columns: The source's columns (the keys among them).
        keys: The columns of the target's unique index.

    Examples:
        >>> print(on_conflict_sql('"scores"', '"stage"', ["id", "score"], ["id"]))
        INSERT INTO "scores" ("id", "score") SELECT "id", "score" FROM "stage" AS s ORDER BY "id" ON CONFLICT ("id") DO UPDATE SET "score" = EXCLUDED."score"
    """  # noqa: E501
    quoted = {column: quote_identifier(column, "column name") for column in columns}
    listed = ", ".join(quoted.values())
    arbiter = ", ".join(quoted[k] for k in keys)
    updates = ", ".join(f"{q} = EXCLUDED.{q}" for c, q in quoted.items() if c not in keys)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return (f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {source} AS s "
            f"ORDER BY {arbiter} ON CONFLICT ({arbiter}) {action}")


# -- frames ----------------------------------------------------------------------------
def prepare_frame(data: pa.Table, table: str) -> pa.Table:
    """Check a frame's column names and normalise its Arrow types for writing.

    Dictionary (pandas categorical) columns become plain columns of their values,
    and large strings/binaries become regular ones, so every backend sees the same
    small set of types.

    Args:
        data: The frame to write.
        table: The target table's name, for error messages.

    Returns:
        The frame with normalised types.

    Raises:
        InvalidIdentifierError: For a column name that is not a safe identifier.
        SchemaMismatchError: For duplicated column names.
    """
    import pyarrow as pa

    seen: set[str] = set()
    for name in data.column_names:
        validate_identifier(name, f"column name (writing {table})")
        if name.lower() in seen:
            raise SchemaMismatchError(
                f"The frame for {table} has the column {name!r} twice (names are compared "
                "case-insensitively): rename one of them."
            )
        seen.add(name.lower())
    fields = []
    changed = False
    for field in data.schema:
        new_type = _normal_type(field.type)
        changed = changed or new_type != field.type
        fields.append(pa.field(field.name, new_type, field.nullable))
    return data.cast(pa.schema(fields)) if changed else data


def _normal_type(data_type: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_dictionary(data_type):
        return _normal_type(data_type.value_type)
    if pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type):
        return pa.string()
    if pa.types.is_large_binary(data_type) or pa.types.is_binary_view(data_type):
        return pa.binary()
    return data_type


def column_kind(data_type: pa.DataType) -> str | None:
    """The kind of column an Arrow type needs, for the dialects' type maps.

    Returns:
        One of ``boolean``, ``int16``, ``int32``, ``int64``, ``uint64``, ``float32``,
        ``float64``, ``decimal``, ``string``, ``binary``, ``date``, ``time``,
        ``timestamp``, ``timestamptz`` or ``interval`` (the smallest that holds every
        value; all-null columns are strings); None for nested types.

    Examples:
        >>> import pyarrow as pa
        >>> column_kind(pa.uint16()), column_kind(pa.timestamp("us", "UTC"))
        ('int32', 'timestamptz')
    """
    import pyarrow as pa

    t = data_type
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    checks = [
        (pa.types.is_boolean, "boolean"),
        (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t),
         "int16"),
        (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "int32"),
        (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "int64"),
        (pa.types.is_uint64, "uint64"),
        (lambda t: pa.types.is_float16(t) or pa.types.is_float32(t), "float32"),
        (pa.types.is_float64, "float64"),
        (pa.types.is_decimal, "decimal"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
         or pa.types.is_null(t), "string"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "binary"),
        (pa.types.is_date, "date"),
        (pa.types.is_time, "time"),
        (pa.types.is_duration, "interval"),
    ]
    return next((kind for check, kind in checks if check(t)), None)


def no_column_type(data_type: pa.DataType, where: str) -> SchemaMismatchError:
    """The error for an Arrow type a dialect has no column type for."""
    return SchemaMismatchError(
        f"Arrow type {data_type} has no {where} column type in knot: serialise the column "
        "(e.g. to a JSON string) before writing."
    )


# Which families a column of each family accepts (numbers widen; nothing narrows).
_ACCEPTS: dict[str, set[str]] = {
    "integer": {"integer"},
    "float": {"integer", "float", "decimal"},
    "decimal": {"integer", "float", "decimal"},
    "boolean": {"boolean"},
    "string": {"string"},
    "binary": {"binary"},
    "timestamp": {"timestamp", "date"},
    "date": {"date"},
    "time": {"time"},
}


def check_compatible(
    incoming: pa.Schema,
    existing: Mapping[str, str],
    table: str,
    evolve: Evolve,
    case_insensitive: bool = False,
) -> list[str]:
    """Compare a frame's schema with an existing table's columns.

    Args:
        incoming: The frame's Arrow schema.
        existing: The table's columns, name -> type family (see :func:`type_family`).
        table: The table's name, for messages.
        evolve: Whether new columns may be added to the table: all (True), none
            (False), or only those named.
        case_insensitive: Match column names regardless of case (DuckDB).

    Returns:
        The frame's columns that the table lacks (to add when ``evolve`` is true).

    Raises:
        SchemaMismatchError: For new columns ``evolve`` does not allow, or a column
            whose type the table's column cannot hold.

    Examples:
        >>> import pyarrow as pa
        >>> frame = pa.schema([("id", pa.int64()), ("note", pa.string())])
        >>> check_compatible(frame, {"id": "integer"}, "t", evolve=["note"])
        ['note']
        >>> check_compatible(frame, {"id": "integer"}, "t", evolve=["other"])
        Traceback (most recent call last):
        ...
        knot_prefect.blocks.warehouses.base.SchemaMismatchError: The frame has columns \
that table t lacks: 'note'. Only 'other' may be added to it (evolve=['other']): drop \
the others from the frame.
    """

    def norm(name: str) -> str:
        return name.lower() if case_insensitive else name

    columns = {norm(name): (name, family) for name, family in existing.items()}
    new: list[str] = []
    problems: list[str] = []
    for field in incoming:
        found = columns.get(norm(field.name))
        if found is None:
            new.append(field.name)
            continue
        _, family = found
        have = type_family(field.type)
        if have == "null" or family not in _ACCEPTS or have == "other":
            continue
        if have not in _ACCEPTS[family]:
            problems.append(
                f"column {field.name!r} is {have} ({field.type}) in the frame but "
                f"{family} in the table"
            )
    if problems:
        raise SchemaMismatchError(
            f"Cannot write to {table}: {'; '.join(problems)}. Cast the frame's column to the "
            "table's type, or write to a new table (mode='replace' recreates it)."
        )
    if new and not evolve:
        raise SchemaMismatchError(
            f"The frame has columns that table {table} lacks: {', '.join(map(repr, new))}. "
            "Pass evolve=True to add them to the table, or drop them from the frame."
        )
    if new and not isinstance(evolve, bool):
        allowed = [evolve] if isinstance(evolve, str) else list(evolve)
        refused = [name for name in new if name not in allowed]
        if refused:
            raise SchemaMismatchError(
                f"The frame has columns that table {table} lacks: "
                f"{', '.join(map(repr, refused))}. Only {', '.join(map(repr, allowed))} "
                f"may be added to it (evolve={allowed!r}): drop the others from the frame."
            )
    return new


@dataclass(frozen=True)
class WritePlan:
    """What a write into a table will do, decided before any data moves.

    Attributes:
        table: The target table, as the caller named it.
        mode: The write mode.
        keys: The upsert keys (empty for other modes).
        exists: Whether the table exists now.
        new_columns: The frame's columns to add to the table (``evolve=True``).
    """

    table: str
    mode: str
    keys: list[str]
    exists: bool
    new_columns: list[str]

    @property
    def creates(self) -> bool:
        """Whether the write creates the table (missing) or recreates it (``replace``)."""
        return not self.exists or self.mode == "replace"


def plan_write(
    data: pa.Table,
    table: str,
    mode: str,
    keys: Sequence[str],
    evolve: Evolve,
    existing: Mapping[str, str],
    where: str,
    case_insensitive: bool = False,
) -> WritePlan:
    """The checks every backend makes against the table before it writes.

    Args:
        data: The prepared frame.
        table: The target table, for messages.
        mode: The write mode.
        keys: The upsert keys.
        evolve: Which new columns may be added (see :func:`check_compatible`).
        existing: The table's columns, name -> type family; empty when it is missing.
        where: The warehouse, described without secrets.
        case_insensitive: Match column names regardless of case (DuckDB).

    Raises:
        TableExistsError: For ``mode='fail'`` on an existing table.
        SchemaMismatchError: For new columns without ``evolve``, or a type mismatch.
    """
    exists = bool(existing)
    if exists and mode == "fail":
        raise table_exists_error(table, where)
    new_columns: list[str] = []
    if exists and mode != "replace":
        new_columns = check_compatible(data.schema, existing, table, evolve, case_insensitive)
    return WritePlan(table, mode, list(keys), exists, new_columns)


def check_columns_exist(
    requested: Sequence[str],
    available: Sequence[str],
    table: str,
    case_insensitive: bool = False,
) -> None:
    """Check that a read asks only for columns the table has.

    Raises:
        SchemaMismatchError: Naming the unknown columns and listing the table's.

    Examples:
        >>> check_columns_exist(["id"], ["id", "score"], "scores")
        >>> check_columns_exist(["nope"], ["id", "score"], "scores")
        Traceback (most recent call last):
        ...
        knot_prefect.blocks.warehouses.base.SchemaMismatchError: Table scores has no \
column 'nope' (its columns: id, score).
    """

    def norm(name: str) -> str:
        return name.lower() if case_insensitive else name

    have = {norm(name) for name in available}
    unknown = [name for name in requested if norm(name) not in have]
    if unknown:
        raise SchemaMismatchError(
            f"Table {table} has no column {', '.join(map(repr, unknown))} "
            f"(its columns: {', '.join(available)})."
        )


def check_key_columns(keys: Sequence[str], columns: Sequence[str], what: str) -> None:
    """Check that every upsert key is one of ``columns`` (of ``what``, for the message).

    Raises:
        SchemaMismatchError: Naming the missing keys and listing the columns.
    """
    missing = [key for key in keys if key not in columns]
    if missing:
        raise SchemaMismatchError(
            f"Upsert keys {', '.join(map(repr, missing))} are not columns of {what} "
            f"(its columns: {', '.join(columns)})."
        )


def check_keys(data: pa.Table, keys: Sequence[str], table: str) -> None:
    """Check upsert keys: present in the frame, never null, unique together.

    A null key would never match on a retry and a repeated key would match twice,
    so both are refused before anything is written.

    Raises:
        SchemaMismatchError: Naming the missing key columns, the null count or an
            example of a repeated key.
    """
    import pyarrow.compute as pc

    check_key_columns(keys, data.column_names, f"the frame for {table}")
    for key in keys:
        nulls = data.column(key).null_count
        if nulls:
            raise SchemaMismatchError(
                f"Upsert key {key!r} is null in {nulls} row(s) of the frame for {table}: "
                "every row needs a key value."
            )
    if len(keys) == 1 and _strictly_increasing(data.column(keys[0])):
        return  # ordered keys (the common case): unique without hashing them
    counts = data.select(list(keys)).group_by(list(keys)).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if repeated.num_rows:
        example = {key: repeated.column(key)[0].as_py() for key in keys}
        raise SchemaMismatchError(
            f"Upsert keys {list(keys)} repeat in the frame for {table}: {repeated.num_rows} "
            f"key value(s) appear more than once, e.g. {example}. Deduplicate the frame first."
        )


def _strictly_increasing(column: pa.ChunkedArray) -> bool:
    """Whether each value is greater than the one before (then no value repeats)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(column) < 2 or not (pa.types.is_integer(column.type) or pa.types.is_string(column.type)):
        return False
    return bool(pc.all(pc.greater(column.slice(1), column.slice(0, len(column) - 1))).as_py())


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret (and its URL-encoded form) replaced by ``***``."""
    from urllib.parse import quote, quote_plus

    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return text


# -- connection errors -----------------------------------------------------------------
# SQLSTATEs of a connection the server ended or could not open: class 08 (connection
# exception), admin/crash shutdown and "cannot connect now" (a server starting up).
_LOST_STATES = ("08", "57P01", "57P02", "57P03")
_CONFLICT_STATES = ("40P01", "40001")  # deadlock detected, serialization failure
_LOST_WORDS = (
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "could not receive data",
    "could not send data",
    "connection already closed",
    "the database system is",
    "connection refused",
    "failed to connect",
    "could not connect",
    "timeout expired",
)
_REFUSED_WORDS = ("authentication failed", "no pg_hba.conf entry", "does not exist")


def is_lost_connection(sqlstate: str | None, message: str) -> bool:
    """Whether a driver error means the connection failed, not the statement.

    Examples:
        >>> is_lost_connection("57P01", "terminating connection due to administrator command")
        True
        >>> is_lost_connection("42P01", 'relation "t" does not exist')
        False
    """
    if sqlstate and sqlstate.startswith(_LOST_STATES):
        return True
    lowered = message.lower()
    return any(word in lowered for word in _LOST_WORDS)


def is_write_conflict(sqlstate: str | None) -> bool:
    """Whether a driver error means concurrent writers collided (a retry may succeed).

    Examples:
        >>> is_write_conflict("40P01")  # deadlock detected
        True
        >>> is_write_conflict("23505")  # a unique violation is the data's fault
        False
    """
    return sqlstate in _CONFLICT_STATES


def is_transient_connect_failure(message: str) -> bool:
    """Whether a failure to connect may pass (a server down) rather than a refusal.

    Examples:
        >>> is_transient_connect_failure("Connection refused")
        True
        >>> is_transient_connect_failure('password authentication failed for user "x"')
        False
    """
    lowered = message.lower()
    return not any(word in lowered for word in _REFUSED_WORDS)


class DriverPath:
    """What the drivers of ``SqlWarehouse`` share: the server described, and its errors.

    Args:
        describe: The database described without secrets, for error messages.
        redact: Removes secrets from a driver's error text.
    """

    def __init__(self, describe: str, redact: Callable[[str], str]) -> None:
        self._describe = describe
        self._redact = redact

    def connect_failed(self, error: BaseException) -> WarehouseConnectionError:
        """The error for a connection that could not be opened (redacted)."""
        message = self._redact(str(error)).strip()
        return WarehouseConnectionError(
            f"Cannot connect to {self._describe}: {message} "
            "Check the URL, the user and the password of the block.",
            transient=is_transient_connect_failure(message),
        )

    @staticmethod
    def refuse_unsupported_types(data: pa.Table, column_type: Callable[[Any], object]) -> None:
        """Refuse a frame with a column the database has no type for, before connecting."""
        for field in data.schema:
            column_type(field.type)

    @staticmethod
    def connection_lost(said: str) -> WarehouseConnectionError:
        """The error for a connection lost during an operation (``said``: redacted)."""
        return WarehouseConnectionError(
            f"{said} The connection was lost; the operation was rolled back and may be "
            "retried."
        )
