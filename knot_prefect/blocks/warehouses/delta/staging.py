"""Staged writes on a Delta table: parts as data files, committed in one transaction.

Each part (a Dask worker's rows, say) is written as Parquet files inside the
table's folder, where no reader looks: a Delta table is what its log lists. The
commit then publishes every part in one Delta transaction: for a new table (or an
``append``) the staged files themselves are added to the log, unchanged; for an
``upsert`` into an existing table a single MERGE reads them. Files never committed
are removed by ``discard_staged`` or, later, by the table's ``vacuum``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses.base import Evolve, StagedPart, WriteMode, decode_schema
from knot_prefect.blocks.warehouses.delta.tables import arrow_schema, delta_errors, open_table
from knot_prefect.blocks.warehouses.delta.writes import merge
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake.schemas import conform, table_of, unify
from knot_prefect.blocks.warehouses.lake.staging import StagedCommit, discard_staged
from knot_prefect.blocks.warehouses.lake.writes import evolve_schema, refuse_existing

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation


def publish(location: DeltaLocation, commit: StagedCommit, evolve: Evolve, mode: WriteMode) -> None:
    """Publish checked staged parts in one Delta transaction; see ``DeltaLake.commit_staged``."""
    name, parts, schemas, table = commit.name, commit.parts, commit.schemas, str(commit.name)
    current = open_table(location, name)
    refuse_existing(location.storage, table, mode, current is not None)
    with delta_errors(location, table):
        if current is None or mode == "replace":
            schema = unify(schemas, table)
            _add_files(location, name, parts, schema, current, overwrite=current is not None)
            return
        schema = arrow_schema(current)
        for part_schema in schemas:
            schema = evolve_schema(schema, part_schema, table, evolve)
        if mode == "append" and all(s == schema for s in schemas):
            _add_files(location, name, parts, schema, current, overwrite=False)
            return
        source = _reader(location, name, parts, schema)
        if mode == "append":
            from deltalake import write_deltalake

            write_deltalake(current, source, mode="append",
                            schema_mode="merge" if schema != arrow_schema(current) else None)
        else:
            merge(current, source, commit.keys, evolve=schema != arrow_schema(current))
    discard_staged(location.storage, parts)  # the MERGE wrote the rows into files of its own


def _add_files(location: DeltaLocation, name: TableName, parts: Sequence[StagedPart],
               schema: pa.Schema, current: Any, overwrite: bool) -> None:
    """Add the staged files to the log as they are: create, overwrite or append."""
    from deltalake import Schema
    from deltalake.transaction import AddAction, create_table_with_add_actions

    if any(decode_schema(part.schema) != schema for part in parts if part.schema):
        # Rare: a part's column type differs from the others' (say all-null there),
        # so its rows are rewritten by a plain write.
        from deltalake import write_deltalake

        write_deltalake(current if current is not None else location.uri(name),
                        _reader(location, name, parts, schema),
                        mode="overwrite" if overwrite else "append" if current else "error",
                        schema_mode="overwrite" if overwrite else None,
                        storage_options=location.options)
        discard_staged(location.storage, parts)
        return
    storage = location.storage
    now = int(time.time() * 1000)
    actions = [
        AddAction(path=entry["path"], size=storage.fs.size(storage.table_path(name, entry["path"])),
                  partition_values={}, modification_time=now, data_change=True,
                  stats=json.dumps({"numRecords": entry["rows"]}))
        for part in parts for entry in part.files
    ]
    delta_schema = Schema.from_arrow(schema)
    if current is None:
        create_table_with_add_actions(location.uri(name), delta_schema, actions, mode="error",
                                      storage_options=location.options)
    else:
        current.create_write_transaction(actions, mode="overwrite" if overwrite else "append",
                                         schema=delta_schema)


def _reader(location: DeltaLocation, name: TableName, parts: Sequence[StagedPart],
            schema: pa.Schema) -> pa.RecordBatchReader:
    """The staged rows, conformed to ``schema``, streamed one batch at a time."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    storage = location.storage

    def batches() -> Iterator[pa.RecordBatch]:
        for part in parts:
            part_schema = decode_schema(part.schema) if part.schema else schema
            files = [storage.table_path(name, entry["path"]) for entry in part.files]
            source = pads.dataset(files, schema=part_schema, format="parquet",
                                  filesystem=storage.arrow_filesystem)
            for chunk in source.to_batches():
                yield from conform(table_of(part_schema, chunk), schema, str(name)).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())

