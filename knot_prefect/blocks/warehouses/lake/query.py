"""DuckDB over a lake's live files: queries, and the anti-join of an upsert.

Every table a query names is registered in a fresh in-memory DuckDB as a view over
the files its manifest lists, so ``SELECT ... FROM events WHERE day = :d`` works as
on a database and sees exactly one published version of each table.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import bind_named
from knot_prefect.blocks.warehouses.base import TableNotFoundError, WarehouseError, decode_schema
from knot_prefect.blocks.warehouses.identifiers import (
    InvalidIdentifierError,
    TableName,
    quote_identifier,
)
from knot_prefect.blocks.warehouses.lake.files import dataset
from knot_prefect.blocks.warehouses.lake.manifest import (
    Manifest,
    read_manifest,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage


def connect(storage: LakeStorage, spill: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's thread count (and memory limit, to spill).

    Args:
        storage: The lake.
        spill: Bound DuckDB's memory and spill past it to a temporary folder.
        memory_limit: The bound (default: the lake's ``memory_limit``).
    """
    import duckdb

    config: dict[str, Any] = {}
    if storage.threads:
        config["threads"] = storage.threads
    if spill:
        config["memory_limit"] = memory_limit or storage.memory_limit
        config["temp_directory"] = tempfile.gettempdir() + "/knot-duckdb-spill"
        # Rows come out in any order; keeping the input order would buffer them.
        config["preserve_insertion_order"] = False
    try:
        return duckdb.connect(config=config)
    except duckdb.Error as exc:
        raise WarehouseError(
            f"Cannot open DuckDB for the {storage.label} at {storage.location}: {exc}. Check "
            "the block's threads and memory_limit (e.g. '1GB')."
        ) from exc


@contextlib.contextmanager
def query(
    storage: LakeStorage, sql: str, params: Mapping[str, Any] | None
) -> Iterator[duckdb.DuckDBPyRelation]:
    """The relation of a query over the lake, open for the ``with`` block."""

    def register(connection: duckdb.DuckDBPyConnection, table: TableName) -> None:
        manifest = read_manifest(storage, table)
        if manifest is None:
            return  # a CTE, or a missing table DuckDB reports by name
        if storage.is_local and manifest["files"]:
            _register_files(storage, connection, table, manifest)
        else:
            register_dataset(connection, table, dataset(storage, table, manifest))

    with query_tables(storage, sql, params, register) as relation:
        yield relation


@contextlib.contextmanager
def query_tables(
    storage: LakeStorage,
    sql: str,
    params: Mapping[str, Any] | None,
    register: Callable[[duckdb.DuckDBPyConnection, TableName], None],
) -> Iterator[duckdb.DuckDBPyRelation]:
    """A query over a lake of any table format, open for the ``with`` block.

    Args:
        storage: The lake.
        sql: The query, with ``:name`` placeholders.
        params: Values bound to the placeholders.
        register: Names one table the query references in the connection (as a
            view or an Arrow dataset); leaves alone a name that is no table of the
            lake (a CTE, or a missing table DuckDB then reports).
    """
    statement, values = bind_named(sql, params, "named_dollar")
    connection = connect(storage)
    try:
        for table in referenced_tables(connection, statement):
            register(connection, table)
        relation = connection.sql(statement, params=values or None)
        if relation is None:
            raise WarehouseError(
                "read() and read_batches() take a query that returns rows (SELECT ...); "
                "this statement returns none."
            )
        yield relation
    except Exception as exc:
        translated = query_error(storage, exc)
        if translated is exc:
            raise
        raise translated from exc
    finally:
        connection.close()


@contextlib.contextmanager
def versioned_query(
    storage: LakeStorage,
    sql: str,
    params: Mapping[str, Any] | None,
    versions: Mapping[str, int] | None,
    seen: dict[str, int] | None,
    register_at: Callable[[duckdb.DuckDBPyConnection, TableName, int | None], int | None],
) -> Iterator[duckdb.DuckDBPyRelation]:
    """A query over a lake whose tables keep their versions, open for the ``with`` block.

    Args:
        storage: The lake.
        sql: The query, with ``:name`` placeholders.
        params: Values bound to the placeholders.
        versions: Versions to read, by table name (others are read at their latest).
        seen: Filled with the version of each table the query read.
        register_at: The format's hook: registers one table at a version (None: its
            latest) and returns the version registered; None, registering nothing,
            when the lake has no such table (see ``register`` of :func:`query_tables`).
    """

    def register(connection: duckdb.DuckDBPyConnection, table: TableName) -> None:
        version = register_at(connection, table, (versions or {}).get(str(table)))
        if seen is not None and version is not None:
            seen[str(table)] = version

    with query_tables(storage, sql, params, register) as relation:
        yield relation


def query_error(storage: LakeStorage, exc: Exception) -> Exception:
    """DuckDB's error as the warehouse error it means."""
    import duckdb

    if isinstance(exc, duckdb.CatalogException):
        return TableNotFoundError(
            f"Query on the {storage.label} at {storage.location} failed: {exc}. "
            "Check the table names with list_tables()."
        )
    if isinstance(exc, duckdb.Error):
        return WarehouseError(f"Query on the {storage.label} at {storage.location} failed: {exc}")
    return exc


def _register_files(
    storage: LakeStorage,
    connection: duckdb.DuckDBPyConnection,
    table: TableName,
    manifest: Manifest,
) -> None:
    """Name a local table as a view over the files its manifest lists."""
    schema = decode_schema(manifest["schema"])
    paths = [storage.table_path(table, entry["path"]) for entry in manifest["files"]]
    register_files(connection, table, paths, schema)


def register_files(
    connection: duckdb.DuckDBPyConnection,
    table: TableName,
    paths: list[str],
    schema: pa.Schema,
    cast: bool = False,
) -> None:
    """Name local Parquet files as ``table``, a view read by DuckDB's Parquet reader.

    DuckDB streams its own Parquet scans in constant memory, prunes row groups by
    their statistics and splits a range query across its threads; a registered
    pyarrow dataset is buffered ahead (memory grows with the table) and scanned
    through Arrow's reader.

    Args:
        connection: The query's DuckDB.
        table: The name the query uses.
        paths: The table's live data files, as local paths.
        schema: The table's columns, in order.
        cast: Read each column as the type ``schema`` gives it (files written by
            another engine may hold narrower or differently encoded types) and a
            column no file holds yet as nulls.
    """
    source = _parquet_files(paths)
    names = [quote_identifier(name, "column name") for name in schema.names]
    if cast:
        held = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}")
                .fetchall()}
        types = duckdb_types(connection, schema)
        columns = ", ".join(
            f"CAST({quoted if name in held else 'NULL'} AS {duckdb_type}) AS {quoted}"
            for name, quoted, duckdb_type in zip(schema.names, names, types, strict=True))
    else:
        columns = ", ".join(names)  # the table's order
    if table.schema is not None:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
    connection.execute(f"CREATE VIEW {table.quoted()} AS SELECT {columns} FROM {source}")


def duckdb_types(connection: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[str]:
    """The DuckDB type of each column of ``schema``, read off the Arrow schema (no query)."""
    return [str(column_type) for column_type in connection.from_arrow(schema.empty_table()).types]


def _parquet_files(paths: list[str]) -> str:
    """DuckDB's scan of local Parquet files, columns matched by name across files."""
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    return f"read_parquet([{listed}], union_by_name = true)"


def register_dataset(
    connection: duckdb.DuckDBPyConnection, table: TableName, source: pads.Dataset
) -> None:
    """Name an Arrow dataset as ``table`` (``schema.table`` through a view)."""
    if table.schema is None:
        connection.register(table.table, source)
        return
    hidden = f"__knot_{uuid.uuid4().hex}"
    connection.register(hidden, source)
    connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
    connection.execute(f'CREATE VIEW {table.quoted()} AS SELECT * FROM "{hidden}"')


def scan(
    storage: LakeStorage,
    connection: duckdb.DuckDBPyConnection,
    name: TableName,
    paths: list[str],
    alias: str,
    schema: pa.Schema | None = None,
) -> str:
    """A FROM expression reading data files of ``name`` (paths relative to the table)."""
    import pyarrow.dataset as pads

    full = [storage.table_path(name, path) for path in paths]
    if storage.is_local:
        return _parquet_files(full)
    source = pads.dataset(full, schema=schema, format="parquet", filesystem=storage.fs)
    connection.register(alias, source)
    return f'"{alias}"'


def rows_not_matching(
    storage: LakeStorage,
    name: TableName,
    current: Manifest,
    schema: pa.Schema,
    new: pa.Table | list[str],
    keys: list[str],
) -> Iterator[pa.RecordBatch]:
    """Stream the table's rows whose keys are not in ``new`` (DuckDB anti-join).

    ``new`` is a frame, or the paths (relative to the table) of staged data files.
    Out of core: DuckDB keeps a hash table of the new keys (spilling past the
    lake's ``memory_limit``) and streams the table's files through it, so memory
    does not grow with the table.
    """
    connection = connect(storage, spill=True)
    try:
        if isinstance(new, list):
            new_source = scan(storage, connection, name, new, "__knot_new")
        else:
            connection.register("__knot_new", new.select(keys))
            new_source = '"__knot_new"'
        match = " AND ".join(f'o."{key}" IS NOT DISTINCT FROM n."{key}"' for key in keys)
        stored = decode_schema(current["schema"])
        # Columns this write adds (evolve) are not in the table's files yet.
        columns = ", ".join(
            f'o."{column}"' if column in stored.names else f'NULL AS "{column}"'
            for column in schema.names
        )
        old_files = [entry["path"] for entry in current["files"]]
        # DuckDB's own Parquet reader streams local files in constant memory; a
        # remote table is read one file at a time (a file is at most rows_per_file).
        groups = [old_files] if storage.is_local else [[f] for f in old_files]
        for number, group in enumerate(groups):
            old_source = scan(storage, connection, name, group, f"__knot_old_{number}", stored)
            reader = connection.sql(
                f"SELECT {columns} FROM {old_source} o ANTI JOIN {new_source} n ON {match}"
            ).to_arrow_reader(min(storage.rows_per_file, 100_000))
            for batch in reader:
                yield batch.cast(schema) if batch.schema != schema else batch
    finally:
        connection.close()


def fill_from_table(
    storage: LakeStorage,
    name: TableName,
    current: Manifest,
    data: pa.Table,
    keys: list[str],
    absent: list[str],
) -> pa.Table:
    """``data`` with its ``absent`` columns taken from the table's rows of the same keys.

    An upsert updates only the columns the frame has: a matched row keeps its other
    values, a new row gets nulls there.
    """
    connection = connect(storage, spill=True)
    try:
        connection.register("__knot_new", data)
        stored = decode_schema(current["schema"])
        old_source = scan(storage, connection, name, [e["path"] for e in current["files"]],
                          "__knot_old", stored)
        match = " AND ".join(f'o."{key}" IS NOT DISTINCT FROM n."{key}"' for key in keys)
        columns = ", ".join(
            f'{"o" if column in absent else "n"}."{column}"' for column in data.column_names
        )
        filled = connection.sql(
            f"SELECT {columns} FROM __knot_new n LEFT JOIN {old_source} o ON {match}"
        ).to_arrow_table()
        return filled.cast(data.schema)
    finally:
        connection.close()


def referenced_tables(connection: duckdb.DuckDBPyConnection, sql: str) -> list[TableName]:
    """The tables a query names, from DuckDB's parse tree (parsed, not bound)."""
    rows = connection.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()
    tree = json.loads(rows[0][0]) if rows else {}
    if tree.get("error"):
        if tree.get("error_type") == "parser":
            raise WarehouseError(f"Cannot parse the query: {tree.get('error_message')}")
        return []  # not a SELECT: DuckDB itself says what is wrong
    found: dict[str, TableName] = {}
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and not node.get("catalog_name"):
                with contextlib.suppress(InvalidIdentifierError):
                    table = TableName(node["table_name"], node.get("schema_name") or None)
                    found[str(table)] = table
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return list(found.values())


