"""Staged writes on an Iceberg table: parts as data files, committed in one snapshot.

Each part (a Dask worker's rows, say) is written as Parquet files inside the
table's folder, where no reader looks: an Iceberg table is what its snapshot's
manifests list. The commit then publishes every part in one snapshot: for a new
table, an ``append`` or a ``replace`` the staged files themselves are added
(``add_files``: not rewritten); an ``upsert`` into an existing table reads them and
overwrites the matching rows. Files never committed are removed by
``discard_staged``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import check_key_columns
from knot_prefect.blocks.warehouses.base import (
    StagedPart,
    WriteMode,
    decode_schema,
    table_exists_error,
    to_arrow,
)
from knot_prefect.blocks.warehouses.iceberg import writes
from knot_prefect.blocks.warehouses.iceberg.catalog import (
    arrow_schema,
    create_transaction,
    iceberg_errors,
    open_table,
)
from knot_prefect.blocks.warehouses.iceberg.types import concrete, to_iceberg_types
from knot_prefect.blocks.warehouses.identifiers import TableName, validate_identifier
from knot_prefect.blocks.warehouses.lake import staging as lake_staging
from knot_prefect.blocks.warehouses.lake.schemas import conform, unify
from knot_prefect.blocks.warehouses.staging import is_frame, parts_to_commit

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.iceberg.catalog import IcebergLocation


def stage(location: IcebergLocation, data: Any, table: str, stage_id: str, part: int,
          unique_keys: Sequence[str] | None) -> StagedPart:
    """Write a part's rows as data files of ``table``; see ``IcebergTable.stage``."""
    frames: Iterable[Any] = [data] if is_frame(data) else data
    iceberg_frames = (to_iceberg_types(to_arrow(frame), table, keep_null=True) for frame in frames)
    return lake_staging.stage(location.storage, iceberg_frames, table, stage_id, part,
                              unique_keys)


def commit_staged(location: IcebergLocation, table: str, parts: Sequence[StagedPart],
                  keys: Sequence[str], evolve: bool, check_unique: bool,
                  mode: WriteMode) -> int:
    """Publish the staged parts in one snapshot; see ``IcebergTable.commit_staged``."""
    name = TableName.parse(table)
    parts, rows = parts_to_commit(table, parts, keys, mode)
    keys = [validate_identifier(key, "upsert key") for key in keys]
    if not rows:
        return 0
    schemas = [decode_schema(part.schema) for part in parts if part.schema]
    for part_schema in schemas:
        check_key_columns(keys, part_schema.names, f"the rows staged for {table}")
    paths = [entry["path"] for part in parts for entry in part.files]
    if keys:
        lake_staging.check_staged_keys(location.storage, name, paths, keys, table, check_unique)
    current = open_table(location, name)
    if current is not None and mode == "fail":
        raise table_exists_error(table, f"the Iceberg lake at {location.location}")
    from pyiceberg.expressions import AlwaysTrue

    with iceberg_errors(location, table):
        if current is None or mode == "replace":
            schema = concrete(unify(schemas, table))
            if current is None:
                transaction = create_transaction(location, name, schema)
            else:
                transaction = current.transaction()
                writes.replace_schema(transaction, current, schema)
                transaction.delete(AlwaysTrue())
        else:
            schema = arrow_schema(current)
            for part_schema in schemas:
                schema = writes.evolve_schema(schema, part_schema, table, evolve)
            transaction = current.transaction()
            writes.add_columns(transaction, current, schema)
        files_as_they_are = mode != "upsert" or current is None
        if files_as_they_are and all(part_schema == schema for part_schema in schemas):
            transaction.add_files([location.uri_of(location.storage.table_path(name, path))
                                   for path in paths])
            writes.commit(transaction)
            return rows
        staged = _read(location, name, parts, schema)
        if files_as_they_are:
            transaction.append(staged)
        else:
            assert current is not None
            writes.upsert(transaction, current, staged, keys, schema, table)
        writes.commit(transaction)
    discard_staged(location, parts)  # the rows were written into files of their own
    return rows


def discard_staged(location: IcebergLocation, parts: Sequence[StagedPart]) -> None:
    """Remove the files of staged parts that will not be committed."""
    lake_staging.discard_staged(location.storage, parts)


def _read(location: IcebergLocation, name: TableName, parts: Sequence[StagedPart],
          schema: pa.Schema) -> pa.Table:
    """The staged rows, conformed to ``schema``."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    storage = location.storage
    tables = []
    for part in parts:
        part_schema = decode_schema(part.schema) if part.schema else schema
        files = [storage.table_path(name, entry["path"]) for entry in part.files]
        source = pads.dataset(files, schema=part_schema, format="parquet",
                              filesystem=storage.arrow_filesystem)
        tables.append(conform(source.to_table(), schema, str(name)))
    return pa.concat_tables(tables)
