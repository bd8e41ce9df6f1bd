"""Data files of lake tables: writing new Parquet files, and removing unlisted ones.

A write never changes a file a manifest lists: it writes new files under the
table's ``data/`` folder, named by its write id so that they sort by age. Files no
manifest lists any more (replaced rows, failed or abandoned writes) are removed by
:func:`remove_unlisted`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses.base import decode_schema
from knot_prefect.blocks.warehouses.lake.manifest import (
    LOCK_NAME,
    MANIFEST_NAME,
    Manifest,
)
from knot_prefect.blocks.warehouses.lake.schemas import as_physical, logical

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage

DATA_FOLDER = "data"
FileEntry = dict[str, Any]


def write_files(
    storage: LakeStorage,
    name: TableName,
    write_id: str,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
) -> list[FileEntry]:
    """Write batches to new Parquet files of at most ``rows_per_file`` rows.

    Returns:
        ``{"path", "rows"}`` of each file, paths relative to the table. When writing
        fails, the files written so far are removed before the error is raised.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = storage.fs
    base = storage.table_dir(name)
    if storage.is_local:
        Path(base, DATA_FOLDER).mkdir(parents=True, exist_ok=True)
    compression = storage.compression
    entries: list[dict[str, Any]] = []
    writer: pq.ParquetWriter | None = None
    handle: Any = None
    rows_in_file = 0
    physical: pa.Schema | None = None

    def close() -> None:
        nonlocal writer, handle
        if writer is not None:
            writer.close()
            handle.close()
            writer = handle = None

    try:
        for batch in batches:
            offset = 0
            while offset < batch.num_rows:
                if physical is None:
                    # Dictionary columns are written as they are (no decoding, no
                    # re-hashing of repeated values); the table's schema has their
                    # value types, and readers see plain columns.
                    physical = (batch.schema.remove_metadata()
                                if logical(batch.schema).equals(schema) else schema)
                batch = as_physical(batch, physical)
                if writer is None:
                    relative = f"{DATA_FOLDER}/{write_id}-{len(entries):05d}.parquet"
                    entries.append({"path": relative, "rows": 0})
                    target = f"{base}/{relative}"
                    # Local files use Arrow's native I/O; object stores go through fsspec.
                    handle = pa.OSFile(target, "wb") if storage.is_local else fs.open(target, "wb")
                    writer = pq.ParquetWriter(handle, physical, compression=compression)
                    rows_in_file = 0
                take = min(batch.num_rows - offset, storage.rows_per_file - rows_in_file)
                writer.write_batch(batch.slice(offset, take))
                offset += take
                rows_in_file += take
                entries[-1]["rows"] = rows_in_file
                if rows_in_file >= storage.rows_per_file:
                    close()
            del batch  # not held while the next batch is made
        close()
    except BaseException:
        with contextlib.suppress(Exception):
            if writer is not None:
                writer.close()
        if handle is not None:
            handle.close()
        remove_files(storage, name, entries)
        raise
    return entries


def remove_files(storage: LakeStorage, name: TableName, entries: list[FileEntry]) -> None:
    """Remove data files; what cannot be removed now, :func:`remove_unlisted` removes later."""
    for entry in entries:
        with contextlib.suppress(OSError):
            storage.fs.rm_file(storage.table_path(name, entry["path"]))


def dataset(storage: LakeStorage, name: TableName, manifest: Manifest) -> pads.Dataset:
    """A pyarrow dataset over the files ``manifest`` lists."""
    import pyarrow.dataset as pads

    files = [storage.table_path(name, entry["path"]) for entry in manifest["files"]]
    return pads.dataset(files, schema=decode_schema(manifest["schema"]), format="parquet",
                        filesystem=storage.arrow_filesystem)


def remove_unlisted(
    storage: LakeStorage, name: TableName, manifest: Manifest, retain_seconds: float
) -> int:
    """Delete data files ``manifest`` does not list and older than ``retain_seconds``.

    Returns:
        The number of files deleted.
    """
    live = {entry["path"].rsplit("/", 1)[-1] for entry in manifest["files"]}
    cutoff_ms = (time.time() - retain_seconds) * 1000
    storage.fs.invalidate_cache()
    removed = 0
    for path in storage.fs.glob(storage.table_path(name, f"{DATA_FOLDER}/*.parquet")):
        file_name = str(path).rsplit("/", 1)[-1]
        written_ms = file_name.split("-", 1)[0]
        if file_name in live or not written_ms.isdigit() or int(written_ms) > cutoff_ms:
            continue
        storage.fs.rm_file(path)
        removed += 1
    return removed


def remove_table(storage: LakeStorage, name: TableName) -> None:
    """Remove a table: its manifest first (readers then see no table), then its files."""
    fs = storage.fs
    fs.rm_file(storage.table_path(name, MANIFEST_NAME))
    fs.invalidate_cache()
    for path in fs.glob(storage.table_path(name, f"{DATA_FOLDER}/*.parquet")):
        fs.rm_file(path)
    with contextlib.suppress(OSError):
        fs.rm_file(storage.table_path(name, LOCK_NAME))
