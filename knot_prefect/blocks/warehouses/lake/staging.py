"""Staged writes: data files no reader sees, published together by one manifest switch.

Each part (a Dask worker's rows, say) is written as data files named by its stage
id; :func:`commit_staged` publishes every part into the table in one switch (append,
replace, upsert or fail, as a write), turning the staged files themselves into table
files without rewriting them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import check_key_columns
from knot_prefect.blocks.warehouses.base import (
    Evolve,
    SchemaMismatchError,
    StagedPart,
    decode_schema,
    encode_schema,
    to_arrow,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, validate_identifier
from knot_prefect.blocks.warehouses.lake.files import FileEntry, remove_files, write_files
from knot_prefect.blocks.warehouses.lake.manifest import (
    new_write_id,
    read_manifest,
)
from knot_prefect.blocks.warehouses.lake.query import connect, scan
from knot_prefect.blocks.warehouses.lake.schemas import (
    conform,
    logical,
    prepare,
    table_of,
    unify,
)
from knot_prefect.blocks.warehouses.lake.writes import (
    evolve_schema,
    publish_files,
    refuse_existing,
)
from knot_prefect.blocks.warehouses.staging import check_stage_id, is_frame, parts_to_commit
from knot_prefect.streaming import chain_handed_on

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage

STAGE_SUFFIX = "-stage"

#: Most keys the key check of a commit groups at once (one hash slice of them).
KEY_CHECK_ROWS = 1_000_000
#: DuckDB's memory for that check (a larger slice spills past it).
KEY_CHECK_MEMORY = "256MB"


@dataclasses.dataclass(frozen=True)
class StagedCommit:
    """The staged parts of one commit, checked and ready for a format to publish.

    Attributes:
        name: The table.
        parts: The parts holding rows.
        rows: Their rows.
        keys: The validated key columns (empty for an ``append`` or ``replace``).
        schemas: Each part's column types.
        paths: The staged data files, relative to the table's folder.
    """

    name: TableName
    parts: list[StagedPart]
    rows: int
    keys: list[str]
    schemas: list[pa.Schema]
    paths: list[str]


def prepare_commit(storage: LakeStorage, table: str, parts: Sequence[StagedPart],
                   keys: Sequence[str], mode: str, check_unique: bool) -> StagedCommit | None:
    """The checks a versioned lake's ``commit_staged`` starts with; None when no rows.

    Refuses a bad mode, parts of another table, keys the parts lack, null keys and
    (with ``check_unique``) keys staged twice, reading the staged files out of core.

    Raises:
        WarehouseError, SchemaMismatchError: For what was refused.
    """
    name = TableName.parse(table)
    parts, rows = parts_to_commit(table, parts, keys, mode)
    keys = [validate_identifier(key, "upsert key") for key in keys]
    if not rows:
        return None
    schemas = [decode_schema(part.schema) for part in parts if part.schema]
    for part_schema in schemas:
        check_key_columns(keys, part_schema.names, f"the rows staged for {table}")
    paths = [entry["path"] for part in parts for entry in part.files]
    if keys:
        check_staged_keys(storage, name, paths, keys, table, check_unique, rows)
    return StagedCommit(name, parts, rows, keys, schemas, paths)


def new_stage_id() -> str:
    """A fresh id for a staged write (its files sort and vacuum like other writes)."""
    return new_write_id(STAGE_SUFFIX)


def stage(
    storage: LakeStorage,
    data: Any,
    table: str,
    stage_id: str,
    part: int,
    unique_keys: Sequence[str] | None,
    convert: Callable[[pa.Table, str], pa.Table] | None = None,
) -> StagedPart:
    """Write a part's rows as data files of ``table``; see :meth:`ParquetLake.stage`.

    Args:
        convert: The table format's column types, applied to each frame first
            (Delta's or Iceberg's types; none for Parquet).
    """
    name = TableName.parse(table)
    check_stage_id(stage_id, part)
    frames: Iterable[Any] = [data] if is_frame(data) else data
    schema: pa.Schema | None = None

    def batches() -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        nonlocal schema
        for frame in frames:
            arrow = to_arrow(frame)
            arrow = prepare(convert(arrow, table) if convert else arrow, table)
            if not arrow.num_rows:
                continue
            if schema is None:
                schema = logical(arrow.schema)
            yield from conform(arrow, schema, table).to_batches()
            del arrow, frame
            # A streamed write stages batch after batch: hand the freed buffers back
            # so that the process's memory stays that of one batch.
            pa.default_memory_pool().release_unused()

    iterator = batches()
    first = next(iterator, None)
    if first is None or schema is None:
        return StagedPart(table=table, stage_id=stage_id, part=part)
    # The first batch is handed on, not kept here: a streamed write would otherwise
    # hold it in memory until its last batch.
    chained = chain_handed_on([first], iterator)
    del first
    files = write_files(storage, name, f"{stage_id}-{part:05d}", chained, schema)
    rows = sum(entry["rows"] for entry in files)
    if unique_keys:
        try:
            check_staged_keys(storage, name, [entry["path"] for entry in files],
                              list(unique_keys), table, check_unique=True, rows=rows)
        except BaseException:
            remove_files(storage, name, files)
            raise
    return StagedPart(table=table, stage_id=stage_id, part=part, rows=rows, files=files,
                      schema=encode_schema(schema))


def publish(storage: LakeStorage, commit: StagedCommit, evolve: Evolve, mode: str) -> None:
    """Publish checked staged parts in one manifest switch (see ``LakeWarehouse``)."""
    name, table = commit.name, str(commit.name)
    current = read_manifest(storage, name)
    refuse_existing(storage, table, mode, current is not None)
    if current is None or mode == "replace":  # the table is made from the parts
        schema = unify(commit.schemas, table)
    else:
        schema = decode_schema(current["schema"])
        for part_schema in commit.schemas:
            schema = evolve_schema(schema, part_schema, table, evolve)
    write_id = new_write_id()
    written: list[FileEntry] = []
    try:
        staged = _conform_staged(storage, name, commit.parts, schema, write_id, written)
        publish_files(storage, name, current, write_id, mode, schema, commit.keys, staged,
                      [entry["path"] for entry in staged], written)
    except BaseException:
        remove_files(storage, name, written)
        raise


def discard_staged(storage: LakeStorage, parts: Sequence[StagedPart]) -> None:
    """Remove the files of staged parts that will not be committed."""
    for part in parts:
        remove_files(storage, TableName.parse(part.table), part.files)


def _conform_staged(
    storage: LakeStorage,
    name: TableName,
    parts: Sequence[StagedPart],
    schema: pa.Schema,
    write_id: str,
    written: list[FileEntry],
) -> list[FileEntry]:
    """The parts' files in the table's schema: as they are, or rewritten when not."""
    import pyarrow.dataset as pads

    files: list[FileEntry] = []
    for part in parts:
        part_schema = decode_schema(part.schema) if part.schema else schema
        if part_schema == schema:
            files += part.files
            continue
        # Rare: a column's type differs from the table's (say all-null in this
        # part), so its rows are cast into new files.
        source = pads.dataset([storage.table_path(name, entry["path"]) for entry in part.files],
                              schema=part_schema, format="parquet",
                              filesystem=storage.arrow_filesystem)
        rewritten = write_files(
            storage, name, f"{write_id}-{part.part:05d}",
            (batch for chunk in source.to_batches()
             for batch in conform(table_of(part_schema, chunk), schema, str(name)).to_batches()),
            schema,
        )
        written += rewritten
        files += rewritten
    return files


def check_staged_keys(
    storage: LakeStorage,
    name: TableName,
    paths: list[str],
    keys: list[str],
    table: str,
    check_unique: bool,
    rows: int,
) -> None:
    """Refuse null keys and, when asked, keys staged more than once (out of core).

    The keys are grouped one hash slice at a time, each of at most about
    :data:`KEY_CHECK_ROWS` keys (rows with equal keys share a slice), so the check's
    memory does not grow with the rows staged; DuckDB spills past
    :data:`KEY_CHECK_MEMORY` should a slice be larger.
    """
    connection = connect(storage, spill=True, memory_limit=KEY_CHECK_MEMORY)
    try:
        source = scan(storage, connection, name, paths, "__knot_staged")
        quoted = ", ".join(f'"{key}"' for key in keys)
        nulls = " OR ".join(f'"{key}" IS NULL' for key in keys)
        null_rows = connection.execute(f"SELECT count(*) FROM {source} WHERE {nulls}").fetchone()
        if null_rows and null_rows[0]:
            raise SchemaMismatchError(
                f"Upsert keys {keys} are null in {null_rows[0]} staged row(s) for "
                f"{table}: every row needs a key value."
            )
        if not check_unique:
            return
        slices = -(-rows // KEY_CHECK_ROWS)
        for number in range(slices):
            in_slice = f"WHERE hash({quoted}) % {slices} = {number} " if slices > 1 else ""
            repeated = connection.execute(
                f"SELECT {quoted}, count(*) AS n FROM {source} {in_slice}GROUP BY {quoted} "
                "HAVING count(*) > 1 LIMIT 1"
            ).fetchall()
            if repeated:
                example = dict(zip(keys, repeated[0][:-1], strict=True))
                raise SchemaMismatchError(
                    f"Upsert keys {keys} repeat in the rows staged for {table}, e.g. "
                    f"{example} ({repeated[0][-1]} times): deduplicate the rows first. "
                    "Nothing was written."
                )
    finally:
        connection.close()
