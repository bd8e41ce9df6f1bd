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
from knot_prefect.blocks.warehouses.lake import files, manifest

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage


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


def migrate_parquet_table(storage: LakeStorage, name: TableName, location: DeltaLocation,
                          target_name: TableName, overwrite: bool) -> Migration:
    """Write a ParquetLake table's live rows as a Delta table; see
    :meth:`DeltaLake.migrate_parquet_table`."""
    import pyarrow as pa
    from deltalake import write_deltalake

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
            # Decoded: every batch must match the plain schema declared above.
            yield from to_delta_types(pa.Table.from_batches([batch]), str(target_name),
                                      keep_dictionaries=False).to_batches()

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
