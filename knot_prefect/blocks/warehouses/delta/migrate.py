"""A ParquetLake table turned into a Delta table: its live rows, in one commit.

Only the files the table's manifest lists are read (superseded and uncommitted
files a vacuum has not removed yet are left behind), converted to the types Delta
holds, and written as version 0 of the Delta table (or as a new version replacing
an existing one, when asked) in a single Delta transaction. The Parquet table is
left as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses.base import TableExistsError
from knot_prefect.blocks.warehouses.delta.tables import delta_errors, open_table
from knot_prefect.blocks.warehouses.delta.types import delta_type, to_delta_types
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake import files, manifest

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.delta_lake import DeltaLake
    from knot_prefect.blocks.warehouses.parquet import ParquetLake


@dataclasses.dataclass(frozen=True)
class Migration:
    """What a migration wrote.

    Attributes:
        source: The Parquet table's folder (``s3://...``, ``gs://...`` or a path).
        target: The Delta table's URI.
        rows: Rows written.
        files: Live data files read.
        version: The Delta table's version holding the rows.
    """

    source: str
    target: str
    rows: int
    files: int
    version: int


def migrate_parquet_table(source: ParquetLake, table: str, target: DeltaLake,
                          target_table: str | None = None,
                          overwrite: bool = False) -> Migration:
    """Write the live rows of a ParquetLake table as a Delta table, in one commit.

    Args:
        source: The Parquet lake holding the table.
        table: The table, ``"table"`` or ``"schema.table"``.
        target: The Delta lake receiving it.
        target_table: Its name there (default: ``table``).
        overwrite: Replace an existing Delta table of that name (a new version of it);
            without it an existing table is refused.

    Returns:
        What was written.

    Raises:
        TableNotFoundError: When the Parquet table does not exist.
        TableExistsError: When the Delta table exists and ``overwrite`` is False.
        SchemaMismatchError: For a column Delta cannot hold (a time of day).

    Examples:
        >>> import tempfile, pandas as pd
        >>> from knot_prefect import DeltaLake, ParquetLake
        >>> parquet = ParquetLake(path=tempfile.mkdtemp())
        >>> _ = parquet.write(pd.DataFrame({"id": [1, 2]}), "ids")
        >>> _ = parquet.write(pd.DataFrame({"id": [2, 3]}), "ids", mode="upsert", keys=["id"])
        >>> delta = DeltaLake(path=tempfile.mkdtemp())
        >>> migrate_parquet_table(parquet, "ids", delta).rows, delta.table_version("ids")
        (3, 0)
    """
    import pyarrow as pa
    from deltalake import write_deltalake

    name, target_name = TableName.parse(table), TableName.parse(target_table or table)
    storage, location = source._storage(), target._location()
    live = manifest.manifest_or_raise(storage, name)
    uri = location.uri(target_name)
    current = open_table(location, target_name)
    if current is not None and not overwrite:
        raise TableExistsError(
            f"{uri} is already a Delta table (version {current.version()}): pass "
            "overwrite=True (--overwrite) to replace its rows with a new version, or "
            "migrate to another path."
        )
    dataset = files.dataset(storage, name, live)
    schema = pa.schema([field.with_type(delta_type(field.type, field.name, str(target_name)))
                        for field in dataset.schema])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in dataset.to_batches():
            yield from to_delta_types(pa.Table.from_batches([batch]),
                                      str(target_name)).to_batches()

    with delta_errors(location, str(target_name)):
        write_deltalake(current if current is not None else uri,
                        pa.RecordBatchReader.from_batches(schema, batches()),
                        mode="overwrite" if current is not None else "error",
                        schema_mode="overwrite" if current is not None else None,
                        storage_options=location.options)
    written = open_table(location, target_name)
    assert written is not None
    return Migration(source=storage.location + storage.table_dir(name)[len(storage.root):],
                     target=uri, rows=int(live["rows"]), files=len(live["files"]),
                     version=int(written.version()))
