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

from collections.abc import Sequence
from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses.base import Evolve, StagedPart, WriteMode, decode_schema
from knot_prefect.blocks.warehouses.iceberg import writes
from knot_prefect.blocks.warehouses.iceberg.catalog import (
    arrow_schema,
    create_transaction,
    iceberg_errors,
    open_table,
)
from knot_prefect.blocks.warehouses.iceberg.types import concrete
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake.schemas import conform, unify
from knot_prefect.blocks.warehouses.lake.staging import StagedCommit, discard_staged
from knot_prefect.blocks.warehouses.lake.writes import evolve_schema, refuse_existing

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.iceberg.catalog import IcebergLocation


def publish(location: IcebergLocation, commit: StagedCommit, evolve: Evolve,
            mode: WriteMode) -> None:
    """Publish checked staged parts in one snapshot; see ``IcebergTable.commit_staged``."""
    from pyiceberg.expressions import AlwaysTrue

    name, parts, schemas, table = commit.name, commit.parts, commit.schemas, str(commit.name)
    current = open_table(location, name)
    refuse_existing(location.storage, table, mode, current is not None)
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
                schema = evolve_schema(schema, part_schema, table, evolve)
            transaction = current.transaction()
            writes.add_columns(transaction, current, schema)
        files_as_they_are = mode != "upsert" or current is None
        if files_as_they_are and all(part_schema == schema for part_schema in schemas):
            transaction.add_files([location.uri_of(location.storage.table_path(name, path))
                                   for path in commit.paths])
            writes.commit(transaction)
            return
        staged = _read(location, name, parts, schema)
        if files_as_they_are:
            transaction.append(staged)
        else:
            assert current is not None
            writes.upsert(transaction, current, staged, commit.keys, schema, table)
        writes.commit(transaction)
    discard_staged(location.storage, parts)  # the rows were written into files of their own


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
