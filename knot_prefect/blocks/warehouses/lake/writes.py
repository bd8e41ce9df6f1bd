"""A lake write: new data files, then one manifest switch.

``append`` lists the table's files plus the new ones; ``upsert`` writes the table's
rows whose keys the frame lacks (a DuckDB anti-join) plus the frame; ``replace``
lists only the new files. Until the switch no reader sees anything; when the
switch loses to another writer, or anything else fails, the new files are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from knot_prefect.blocks.warehouses._common import check_compatible, type_family
from knot_prefect.blocks.warehouses.base import Evolve, decode_schema, table_exists_error
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake.files import FileEntry, remove_files, write_files
from knot_prefect.blocks.warehouses.lake.manifest import (
    Manifest,
    new_manifest,
    new_write_id,
    read_manifest,
    switch_manifest,
)
from knot_prefect.blocks.warehouses.lake.query import fill_from_table, rows_not_matching
from knot_prefect.blocks.warehouses.lake.schemas import conform, logical, target_schema

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.lake.storage import FormatLocation, LakeStorage

L = TypeVar("L", bound="FormatLocation")
T = TypeVar("T")


def family_of_columns(schema: pa.Schema) -> dict[str, str]:
    """Each column's type family, for ``check_compatible``."""
    return {field.name: type_family(field.type) for field in schema}



def evolve_schema(existing: pa.Schema, incoming: pa.Schema, table: str,
                  evolve: Evolve) -> pa.Schema:
    """The table's schema once ``incoming``'s columns are written (new ones last).

    Raises:
        SchemaMismatchError: For new columns without ``evolve``, or a type the
            table's column cannot take.
    """
    check_compatible(incoming, family_of_columns(existing), table, evolve)
    return target_schema(existing, incoming.empty_table())

def refuse_existing(storage: LakeStorage, table: str, mode: str, exists: bool) -> None:
    """The ``mode='fail'`` check of every lake write and commit.

    Raises:
        TableExistsError: For ``mode='fail'`` when the table exists.
    """
    if mode == "fail" and exists:
        raise table_exists_error(table, f"the {storage.label} at {storage.location}")


def open_for_write(location: L, table: str, mode: str,
                   open_table: Callable[[L, TableName], T | None]) -> tuple[TableName, T | None]:
    """The table a format's write goes to, opened by ``open_table`` (None: it is missing).

    Raises:
        TableExistsError: For ``mode='fail'`` when the table exists.
    """
    name = TableName.parse(table)
    current = open_table(location, name)
    refuse_existing(location.storage, table, mode, current is not None)
    return name, current


def write_table(
    storage: LakeStorage, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
) -> int:
    """Write a prepared, non-empty frame; return the rows written.

    Raises:
        ConcurrentWriteError: When another writer switched the table's manifest
            during an ``append``, ``upsert`` or ``fail`` write (nothing is written).
    """
    name = TableName.parse(table)
    current = read_manifest(storage, name)
    refuse_existing(storage, table, mode, current is not None)
    if current is None or mode == "replace":
        schema = logical(data.schema)  # every mode creates a missing table from the frame
    else:
        existing = decode_schema(current["schema"])
        check_compatible(logical(data.schema), family_of_columns(existing), table, evolve)
        schema = target_schema(existing, data)
        absent = [column for column in existing.names if column not in data.column_names]
        data = conform(data, schema, table)
        if mode == "upsert" and absent:
            data = fill_from_table(storage, name, current, data, keys, absent)

    write_id = new_write_id()
    written: list[FileEntry] = []
    try:
        new = write_files(storage, name, write_id, iter(data.to_batches()), schema)
        written += new
        publish_files(storage, name, current, write_id, mode, schema, keys, new, data, written)
    except BaseException:
        remove_files(storage, name, written)
        raise
    return data.num_rows


def publish_files(
    storage: LakeStorage,
    name: TableName,
    current: Manifest | None,
    write_id: str,
    mode: str,
    schema: pa.Schema,
    keys: list[str],
    new: list[FileEntry],
    new_rows: Any,
    written: list[FileEntry],
) -> None:
    """Switch the table's manifest to the new files plus what ``mode`` keeps of the table.

    ``append`` keeps the table's files; ``upsert`` writes the table's rows whose keys
    ``new_rows`` (the frame, or the new files' paths) lack into files of their own,
    adding them to ``written``; ``replace`` keeps nothing.
    """
    kept: list[FileEntry] = []
    if mode == "upsert" and current is not None:
        unmatched = rows_not_matching(storage, name, current, schema, new_rows, keys)
        kept = write_files(storage, name, f"{write_id}-kept", unmatched, schema)
        written += kept
    elif mode == "append" and current is not None:
        kept = list(current["files"])
    manifest = new_manifest(name, current, write_id, mode, schema, kept + new)
    # A replace keeps nothing of the table, so it cannot lose another write's rows.
    switch_manifest(storage, name, manifest, current, check=mode != "replace")
