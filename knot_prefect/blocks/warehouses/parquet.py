"""``ParquetLake``: tables as Parquet datasets on a local folder, S3 or GCS.

Each table is a folder holding Parquet data files and one manifest object,
``_manifest.json``, that lists the table's live files. Readers read only the files
the manifest lists, so a write becomes visible in one step: new data files are
written first, then the manifest is switched with a single object write (an atomic
rename on a local disk, a single PUT on S3 and GCS). A writer that fails or is
killed before the switch leaves the table exactly as it was; its orphaned files are
removed later by :meth:`ParquetLake.vacuum`.

Queries run in DuckDB over the lake: every table a query names is registered as a
view over its manifest's files, so ``read("SELECT ... FROM events WHERE day = :d")``
works the same as on a database.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from knot_prefect.blocks.base import DOCS_BASE_URL
from knot_prefect.blocks.optional import optional_block
from knot_prefect.blocks.warehouses._common import (
    bind_named,
    check_compatible,
    check_key_columns,
    prepare_frame,
    type_family,
)
from knot_prefect.blocks.warehouses.base import (
    SchemaMismatchError,
    StagedPart,
    TableNotFoundError,
    Warehouse,
    WarehouseError,
    table_exists_error,
    to_arrow,
    validate_write_mode,
    warehouse_logger,
)
from knot_prefect.blocks.warehouses.identifiers import (
    InvalidIdentifierError,
    TableName,
    validate_identifier,
)
from knot_prefect.settings import get_settings

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads
    from fsspec import AbstractFileSystem
    from prefect_aws import S3Bucket
    from prefect_gcp import GcsBucket
else:  # each of the aws and gcp extras stands alone: see blocks/optional.py
    S3Bucket = optional_block("prefect_aws", "S3Bucket", "aws")
    GcsBucket = optional_block("prefect_gcp", "GcsBucket", "gcp")

MANIFEST_NAME = "_manifest.json"
DATA_FOLDER = "data"
MANIFEST_FORMAT = "knot-parquet-lake/1"


class ConcurrentWriteError(WarehouseError):
    """Another writer switched the table's manifest while this write was running."""


class ParquetLake(Warehouse):
    """Tables as Parquet datasets on a local folder, on S3 or on GCS.

    Writes are atomic through a manifest switch: data files are written first, then
    the table's ``_manifest.json`` is replaced in one object write. Queries run in
    DuckDB over the tables they name.

    Concurrent writers: the manifest switch is last-writer-wins. Before switching,
    a write re-reads the manifest and raises :class:`ConcurrentWriteError` (leaving
    the table untouched) when another writer switched it in the meantime, so an
    ``append`` or ``upsert`` is not silently lost; a second writer switching in the
    short gap between that check and the switch is not detected. Run one writer per
    table at a time (a Prefect concurrency limit does this) when that matters.

    Examples:
        Write and query a table on a local folder:

        >>> import tempfile, pandas as pd
        >>> lake = ParquetLake(path=tempfile.mkdtemp())
        >>> lake.write(pd.DataFrame({"id": [1, 2], "score": [0.5, 0.9]}), "scores").rows
        2
        >>> lake.read("SELECT id FROM scores WHERE score > :s", {"s": 0.6})["id"].tolist()
        [2]
    """

    _block_type_name = "Parquet Lake"
    _description = (
        "Tables as Parquet datasets on a local folder, on S3 or on GCS, written "
        "atomically through a manifest switch and queried with DuckDB."
    )
    _documentation_url = f"{DOCS_BASE_URL}/parquet-lake.md"  # type: ignore[assignment]
    _code_example = """
```python
from knot_prefect import ParquetLake

lake = ParquetLake.load("BLOCK_NAME")
lake.write(frame, "features.daily", mode="replace")
recent = lake.read("SELECT * FROM features.daily WHERE day >= :day", {"day": "2024-01-01"})
```
"""

    path: str = Field(
        default="",
        description=(
            "Folder of the lake: a local folder when no bucket is set (default: "
            "'lake' in the knot home), otherwise a folder inside the bucket."
        ),
    )
    s3_bucket: S3Bucket | None = Field(
        default=None,
        description="An S3 bucket (prefect-aws) holding the lake; leave empty for GCS or local.",
    )
    gcs_bucket: GcsBucket | None = Field(
        default=None,
        description="A GCS bucket (prefect-gcp) holding the lake; leave empty for S3 or local.",
    )
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field(
        default="zstd", description="Compression codec of the Parquet files written."
    )
    rows_per_file: int = Field(
        default=1_000_000,
        gt=0,
        description="Most rows written to one Parquet file; larger writes make several files.",
    )
    threads: int | None = Field(
        default=None,
        gt=0,
        description=(
            "DuckDB threads per query and upsert; empty uses every core (set 1 on Dask "
            "workers that run one task per core)."
        ),
    )
    memory_limit: str = Field(
        default="1GB",
        description=(
            "Most memory DuckDB may use for an upsert's anti-join before it spills to "
            "a temporary folder, e.g. '1GB' or '512MB'."
        ),
    )

    @model_validator(mode="after")
    def _one_storage(self) -> ParquetLake:
        if self.s3_bucket is not None and self.gcs_bucket is not None:
            raise ValueError(
                "ParquetLake takes s3_bucket or gcs_bucket, not both: clear one of them."
            )
        return self

    # -- storage -------------------------------------------------------------------
    @property
    def location(self) -> str:
        """The lake's root as a URL (``s3://...``, ``gs://...`` or a local path)."""
        protocol = {"s3": "s3://", "gcs": "gs://"}.get(self._kind, "")
        return protocol + self._root()

    @property
    def _kind(self) -> str:
        if self.s3_bucket is not None:
            return "s3"
        if self.gcs_bucket is not None:
            return "gcs"
        return "local"

    def _root(self) -> str:
        if self.s3_bucket is not None:
            parts = [self.s3_bucket.bucket_name, self.s3_bucket.bucket_folder, self.path]
        elif self.gcs_bucket is not None:
            parts = [self.gcs_bucket.bucket, self.gcs_bucket.bucket_folder, self.path]
        else:
            local = Path(self.path).expanduser() if self.path else get_settings().home / "lake"
            return str(local.absolute())
        return "/".join(part.strip("/") for part in parts if part and part.strip("/"))

    def _filesystem(self) -> AbstractFileSystem:
        """An fsspec filesystem authenticated by the nested storage block."""
        if self.s3_bucket is not None:
            return _s3_filesystem(self.s3_bucket)
        if self.gcs_bucket is not None:
            return _gcs_filesystem(self.gcs_bucket)
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()

    def _table_dir(self, table: TableName) -> str:
        parts = [self._root(), *([table.schema] if table.schema else []), table.table]
        return "/".join(parts)

    # -- manifest ------------------------------------------------------------------
    def _read_manifest(self, fs: AbstractFileSystem, table: TableName) -> dict[str, Any] | None:
        try:
            raw = fs.cat_file(f"{self._table_dir(table)}/{MANIFEST_NAME}")
        except FileNotFoundError:
            return None
        manifest: dict[str, Any] = json.loads(raw)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise WarehouseError(
                f"{self.location}/{table}: {MANIFEST_NAME} is not a knot Parquet lake "
                f"manifest (format {manifest.get('format')!r}); point the block at another path."
            )
        return manifest

    def _switch_manifest(
        self, fs: AbstractFileSystem, table: TableName, manifest: dict[str, Any]
    ) -> None:
        """Make ``manifest`` the table's live manifest in one object write."""
        body = json.dumps(manifest, indent=1).encode()
        target = f"{self._table_dir(table)}/{MANIFEST_NAME}"
        if self._kind == "local":
            # Write beside the target, then rename over it: a rename is atomic.
            temporary = f"{target}.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        else:
            # One PUT: object stores show the old or the new object, never a mix.
            fs.pipe_file(target, body)

    def _manifest_or_raise(self, fs: AbstractFileSystem, table: TableName) -> dict[str, Any]:
        manifest = self._read_manifest(fs, table)
        if manifest is None:
            raise TableNotFoundError(
                f"Table {str(table)!r} does not exist in the Parquet lake at {self.location}: "
                "check the name, or create it with write(..., mode='replace')."
            )
        return manifest

    def _dataset(
        self, fs: AbstractFileSystem, table: TableName, manifest: dict[str, Any]
    ) -> pads.Dataset:
        import pyarrow.dataset as pads

        base = self._table_dir(table)
        files = [f"{base}/{entry['path']}" for entry in manifest["files"]]
        filesystem: Any = None if self._kind == "local" else fs
        return pads.dataset(
            files, schema=_decode_schema(manifest["schema"]), format="parquet",
            filesystem=filesystem,
        )

    # -- reads ---------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a DuckDB query over the lake's tables and return a pyarrow Table.

        Args:
            sql: The query; tables are named as ``table`` or ``schema.table`` and
                values as ``:name`` placeholders.
            params: Values bound to the placeholders.

        Returns:
            The result.
        """
        connection, statement, values = self._prepare_query(sql, params)
        try:
            return _relation(connection, statement, values).to_arrow_table()
        except Exception as exc:
            raise self._query_error(exc) from exc
        finally:
            connection.close()

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result in record batches of at most ``batch_rows`` rows.

        DuckDB scans the Parquet files as the batches are consumed, so results larger
        than memory stream through.
        """
        connection, statement, values = self._prepare_query(sql, params)
        try:
            try:
                reader = _relation(connection, statement, values).to_arrow_reader(batch_rows)
            except Exception as exc:
                raise self._query_error(exc) from exc
            for batch in reader:
                if batch.num_rows > batch_rows:
                    yield from batch.to_batches(max_chunksize=batch_rows)  # type: ignore[attr-defined]
                elif batch.num_rows:
                    yield batch
        finally:
            connection.close()

    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table, or some of its columns, as a pyarrow Table."""
        table = TableName.parse(name)
        fs = self._filesystem()
        manifest = self._manifest_or_raise(fs, table)
        dataset = self._dataset(fs, table, manifest)
        if columns is not None:
            missing = [c for c in columns if c not in dataset.schema.names]
            if missing:
                raise SchemaMismatchError(
                    f"Table {name!r} has no column(s) {', '.join(map(repr, missing))}; "
                    f"its columns are {', '.join(dataset.schema.names)}."
                )
        return dataset.to_table(columns=list(columns) if columns is not None else None)

    def _prepare_query(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> tuple[duckdb.DuckDBPyConnection, str, dict[str, Any]]:
        statement, values = bind_named(sql, params, "named_dollar")
        fs = self._filesystem()
        connection = self._duckdb()
        try:
            for table in _referenced_tables(connection, statement):
                manifest = self._read_manifest(fs, table)
                if manifest is None:
                    continue  # a CTE, or a missing table DuckDB reports by name
                if self._kind == "local" and manifest["files"]:
                    self._register_files(connection, fs, table, manifest)
                else:
                    self._register(connection, table, self._dataset(fs, table, manifest))
        except BaseException:
            connection.close()
            raise
        return connection, statement, values

    def _duckdb(self, spill: bool = False) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the block's thread count (and memory limit to spill)."""
        import duckdb

        config: dict[str, Any] = {}
        if self.threads:
            config["threads"] = self.threads
        if spill:
            import tempfile

            config["memory_limit"] = self.memory_limit
            config["temp_directory"] = tempfile.gettempdir() + "/knot-duckdb-spill"
            # Rows come out in any order; keeping the input order would buffer them.
            config["preserve_insertion_order"] = False
        try:
            return duckdb.connect(config=config)
        except duckdb.Error as exc:
            raise WarehouseError(
                f"Cannot open DuckDB for the Parquet lake at {self.location}: {exc}. Check "
                "the block's threads and memory_limit (e.g. '1GB')."
            ) from exc

    def _register_files(
        self,
        connection: duckdb.DuckDBPyConnection,
        fs: AbstractFileSystem,
        table: TableName,
        manifest: dict[str, Any],
    ) -> None:
        """Name a local table as a view over its files, read by DuckDB's Parquet reader.

        DuckDB streams its own Parquet scans in constant memory and prunes row groups
        by their statistics; a registered pyarrow dataset is buffered ahead and grows
        with the table.
        """
        schema = _decode_schema(manifest["schema"])
        source = self._scan(connection, fs, table, [e["path"] for e in manifest["files"]], "")
        columns = ", ".join(f'"{name}"' for name in schema.names)  # the table's order
        if table.schema is not None:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
        connection.execute(f"CREATE VIEW {table.quoted()} AS SELECT {columns} FROM {source}")

    @staticmethod
    def _register(
        connection: duckdb.DuckDBPyConnection, table: TableName, dataset: pads.Dataset
    ) -> None:
        if table.schema is None:
            connection.register(table.table, dataset)
            return
        hidden = f"__knot_{uuid.uuid4().hex}"
        connection.register(hidden, dataset)
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
        connection.execute(f'CREATE VIEW {table.quoted()} AS SELECT * FROM "{hidden}"')

    def _query_error(self, exc: Exception) -> Exception:
        import duckdb

        if isinstance(exc, duckdb.CatalogException):
            return TableNotFoundError(
                f"Query on the Parquet lake at {self.location} failed: {exc}. "
                "Check the table names with list_tables()."
            )
        if isinstance(exc, duckdb.Error):
            return WarehouseError(f"Query on the Parquet lake at {self.location} failed: {exc}")
        return exc

    # -- writes --------------------------------------------------------------------
    def _prepare_frame(self, data: pa.Table, table: str) -> pa.Table:
        """``prepare_frame``, keeping dictionary columns encoded (see :func:`_prepare`)."""
        return _prepare(data, table)

    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: bool
    ) -> int:
        name = TableName.parse(table)
        fs = self._filesystem()
        current = self._read_manifest(fs, name)
        if mode == "fail" and current is not None:
            raise table_exists_error(table, f"the Parquet lake at {self.location}")
        if current is None or mode == "replace":
            # A new table (every mode creates a missing one) takes the frame's schema.
            schema = _logical(data.schema)
        else:
            existing = _decode_schema(current["schema"])
            check_compatible(
                _logical(data.schema), {f.name: type_family(f.type) for f in existing}, table,
                evolve,
            )
            schema = _target_schema(existing, data)
            data = _conform(data, schema, table)

        write_id = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}"
        written: list[dict[str, Any]] = []
        try:
            if mode == "upsert" and current is not None:
                kept = self._rows_not_matching(fs, name, current, schema, data, keys)
                written += self._write_files(fs, name, f"{write_id}-kept", kept, schema)
            elif mode == "append" and current is not None:
                written = list(current["files"])
            written += self._write_files(fs, name, write_id, iter(data.to_batches()), schema)
            manifest = {
                "format": MANIFEST_FORMAT,
                "table": str(name),
                "generation": (current["generation"] + 1) if current else 1,
                "write_id": write_id,
                "mode": mode,
                "updated_at": datetime.now(UTC).isoformat(),
                "rows": sum(entry["rows"] for entry in written),
                "schema": _encode_schema(schema),
                "files": written,
            }
            latest = self._read_manifest(fs, name)
            if mode != "replace" and _generation(latest) != _generation(current):
                raise ConcurrentWriteError(
                    f"Another writer changed {table!r} in the Parquet lake at {self.location} "
                    "during this write; nothing was written. Retry the write."
                )
            self._switch_manifest(fs, name, manifest)
        except BaseException:
            self._remove_files(fs, name, [e for e in written if write_id in e["path"]])
            raise
        return data.num_rows

    # -- staged writes ---------------------------------------------------------------
    @staticmethod
    def new_stage_id() -> str:
        """A fresh id for a staged write (its files sort and vacuum like other writes)."""
        return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}-stage"

    def stage(
        self,
        data: Any,
        table: str,
        stage_id: str,
        part: int = 0,
        unique_keys: Sequence[str] | None = None,
    ) -> StagedPart:
        """Write rows as data files of ``table`` that no reader sees until committed.

        Many processes may stage parts of one write at the same time (each Dask worker
        its own part); :meth:`commit_staged` then publishes all of them in one manifest
        switch. Staging the same ``(stage_id, part)`` again (a retried task) overwrites
        the part's files, so nothing is staged twice. Parts never committed are
        removed by :meth:`discard_staged` or, later, :meth:`vacuum`.

        Args:
            data: A pandas, polars or pyarrow frame, or an iterable of them (streamed
                to the files one at a time).
            table: ``"table"`` or ``"schema.table"``.
            stage_id: From :meth:`new_stage_id`, the same for every part of a write.
            part: This part's number, distinct within the staged write.
            unique_keys: Check, after writing, that these columns are never null and
                unique together within the part (out of core); when every part is
                checked and the parts hold disjoint keys, the commit can skip its
                own check (``check_unique=False``).

        Returns:
            The staged part, to pass to :meth:`commit_staged`.

        Raises:
            SchemaMismatchError: When later frames of ``data`` do not convert to the
                first one's column types, or ``unique_keys`` are null or repeat (the
                part's files are then removed).

        Examples:
            >>> import tempfile, pandas as pd
            >>> lake = ParquetLake(path=tempfile.mkdtemp())
            >>> stage = lake.new_stage_id()
            >>> part = lake.stage(pd.DataFrame({"id": [1, 2], "p": [0.1, 0.2]}), "scores", stage)
            >>> lake.table_exists("scores")
            False
            >>> lake.commit_staged("scores", [part], keys=["id"])
            2
            >>> lake.read("SELECT count(*) AS n FROM scores")["n"].tolist()
            [2]
        """
        name = TableName.parse(table)
        if not stage_id.endswith("-stage") or "/" in stage_id:
            raise WarehouseError(
                f"{stage_id!r} is not a stage id: take one from ParquetLake.new_stage_id()."
            )
        frames = [data] if _is_frame(data) else data
        fs = self._filesystem()
        schema: pa.Schema | None = None

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal schema
            for frame in frames:
                arrow = _prepare(to_arrow(frame), table)
                if not arrow.num_rows:
                    continue
                if schema is None:
                    schema = _logical(arrow.schema)
                yield from _conform(arrow, schema, table).to_batches()

        iterator = batches()
        first = next(iterator, None)
        if first is None or schema is None:
            return StagedPart(table=table, stage_id=stage_id, part=part)
        files = self._write_files(
            fs, name, f"{stage_id}-{part:05d}", _chain_first(first, iterator), schema
        )
        if unique_keys:
            try:
                self._check_staged_keys(fs, name, [entry["path"] for entry in files],
                                        list(unique_keys), table, check_unique=True)
            except BaseException:
                self._remove_files(fs, name, files)
                raise
        return StagedPart(table=table, stage_id=stage_id, part=part,
                          rows=sum(entry["rows"] for entry in files), files=files,
                          schema=_encode_schema(schema))

    def commit_staged(
        self,
        table: str,
        parts: Sequence[StagedPart],
        keys: Sequence[str],
        evolve: bool = False,
        check_unique: bool = True,
    ) -> int:
        """Upsert every staged part into ``table`` in one atomic manifest switch.

        The table's rows whose keys the parts hold are replaced, the others kept:
        DuckDB anti-joins the table's files with the staged keys out of core (within
        ``memory_limit``), and the staged files themselves become table files without
        being rewritten. Until the switch nothing is visible; a failure leaves the
        table as it was (the staged files stay until :meth:`discard_staged`).

        Args:
            table: ``"table"`` or ``"schema.table"``; created when missing.
            parts: What :meth:`stage` returned, for every part of the write.
            keys: Columns identifying a row.
            evolve: Allow new columns to be added to an existing table.
            check_unique: Check that no key is staged twice (skip only when the parts
                are known to hold disjoint, unique keys).

        Returns:
            Rows upserted.

        Raises:
            SchemaMismatchError: For a null or repeated key (naming an example), new
                columns without ``evolve``, or types the table cannot hold.
            ConcurrentWriteError: When another writer switched the table meanwhile.
        """
        name = TableName.parse(table)
        validate_write_mode("upsert", keys)
        keys = [validate_identifier(key, "upsert key") for key in keys]
        parts = [part for part in parts if part.rows]
        others = {part.table for part in parts} - {table}
        if others:
            raise WarehouseError(
                f"commit_staged({table!r}) was given parts staged for {sorted(others)}: "
                "commit each table's parts separately."
            )
        rows = sum(part.rows for part in parts)
        if not rows:
            warehouse_logger().info("Nothing to commit to %s: no rows were staged.", table)
            return 0
        fs = self._filesystem()
        current = self._read_manifest(fs, name)
        schemas = [_decode_schema(part.schema) for part in parts if part.schema]
        for part_schema in schemas:
            check_key_columns(keys, part_schema.names, f"the rows staged for {table}")
        if current is None:
            schema = _unify(schemas, table)
        else:
            schema = _decode_schema(current["schema"])
            families = {f.name: type_family(f.type) for f in schema}
            for part_schema in schemas:
                check_compatible(part_schema, families, table, evolve)
                schema = _target_schema(schema, _pa_table_of(part_schema))
        write_id = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}"
        written: list[dict[str, Any]] = []
        try:
            staged = self._conform_staged(fs, name, parts, schema, write_id, written)
            staged_paths = [entry["path"] for entry in staged]
            self._check_staged_keys(fs, name, staged_paths, keys, table, check_unique)
            kept: list[dict[str, Any]] = []
            if current is not None:
                kept = self._write_files(
                    fs, name, f"{write_id}-kept",
                    self._rows_not_matching(fs, name, current, schema, staged_paths, keys),
                    schema,
                )
                written += kept
            manifest = {
                "format": MANIFEST_FORMAT,
                "table": str(name),
                "generation": (current["generation"] + 1) if current else 1,
                "write_id": write_id,
                "mode": "upsert",
                "updated_at": datetime.now(UTC).isoformat(),
                "rows": sum(entry["rows"] for entry in kept + staged),
                "schema": _encode_schema(schema),
                "files": kept + staged,
            }
            if _generation(self._read_manifest(fs, name)) != _generation(current):
                raise ConcurrentWriteError(
                    f"Another writer changed {table!r} in the Parquet lake at "
                    f"{self.location} while staged rows were committed; nothing was "
                    "written. Commit again."
                )
            self._switch_manifest(fs, name, manifest)
        except BaseException:
            self._remove_files(fs, name, written)
            raise
        return rows

    def discard_staged(self, parts: Sequence[StagedPart]) -> None:
        """Remove the files of staged parts that will not be committed."""
        fs = self._filesystem()
        for part in parts:
            self._remove_files(fs, TableName.parse(part.table), part.files)

    def _conform_staged(
        self,
        fs: AbstractFileSystem,
        name: TableName,
        parts: Sequence[StagedPart],
        schema: pa.Schema,
        write_id: str,
        written: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The parts' files in the table's schema: as they are, or rewritten when not."""
        import pyarrow.dataset as pads

        files: list[dict[str, Any]] = []
        for part in parts:
            part_schema = _decode_schema(part.schema) if part.schema else schema
            if part_schema == schema:
                files += part.files
                continue
            # Rare: a column's type differs from the table's (say all-null in this
            # part), so its rows are cast into new files.
            base = self._table_dir(name)
            source = pads.dataset([f"{base}/{entry['path']}" for entry in part.files],
                                  schema=part_schema, format="parquet",
                                  filesystem=None if self._kind == "local" else fs)
            rewritten = self._write_files(
                fs, name, f"{write_id}-{part.part:05d}",
                (batch for chunk in source.to_batches()
                 for batch in _conform(_pa_table_of(part_schema, chunk), schema,
                                       str(name)).to_batches()),
                schema,
            )
            written += rewritten
            files += rewritten
        return files

    def _check_staged_keys(
        self,
        fs: AbstractFileSystem,
        name: TableName,
        paths: list[str],
        keys: list[str],
        table: str,
        check_unique: bool,
    ) -> None:
        """Refuse null keys and, when asked, keys staged more than once (out of core)."""
        connection = self._duckdb(spill=True)
        try:
            source = self._scan(connection, fs, name, paths, "__knot_staged")
            quoted = ", ".join(f'"{key}"' for key in keys)
            nulls = " OR ".join(f'"{key}" IS NULL' for key in keys)
            null_rows = connection.execute(
                f"SELECT count(*) FROM {source} WHERE {nulls}").fetchone()
            if null_rows and null_rows[0]:
                raise SchemaMismatchError(
                    f"Upsert keys {keys} are null in {null_rows[0]} staged row(s) for "
                    f"{table}: every row needs a key value."
                )
            if not check_unique:
                return
            repeated = connection.execute(
                f"SELECT {quoted}, count(*) AS n FROM {source} GROUP BY {quoted} "
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

    def _rows_not_matching(
        self,
        fs: AbstractFileSystem,
        name: TableName,
        current: dict[str, Any],
        schema: pa.Schema,
        new: pa.Table | list[str],
        keys: list[str],
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table's rows whose keys are not in ``new`` (DuckDB anti-join).

        ``new`` is a frame, or the paths (relative to the table) of staged data files.
        Out of core: DuckDB keeps a hash table of the new keys (spilling past the
        block's ``memory_limit``) and streams the table's files through it, so memory
        does not grow with the table.
        """
        connection = self._duckdb(spill=True)
        try:
            if isinstance(new, list):
                new_source = self._scan(connection, fs, name, new, "__knot_new")
            else:
                connection.register("__knot_new", new.select(keys))
                new_source = '"__knot_new"'
            match = " AND ".join(
                f'o."{key}" IS NOT DISTINCT FROM n."{key}"' for key in keys
            )
            stored = _decode_schema(current["schema"])
            # Columns this write adds (evolve) are not in the table's files yet.
            columns = ", ".join(
                f'o."{column}"' if column in stored.names else f'NULL AS "{column}"'
                for column in schema.names
            )
            old_files = [entry["path"] for entry in current["files"]]
            # DuckDB's own Parquet reader streams local files in constant memory; a
            # remote table is read one file at a time (a file is at most rows_per_file).
            groups = [old_files] if self._kind == "local" else [[f] for f in old_files]
            for number, group in enumerate(groups):
                old_source = self._scan(connection, fs, name, group, f"__knot_old_{number}",
                                        stored)
                reader = connection.sql(
                    f"SELECT {columns} FROM {old_source} o ANTI JOIN {new_source} n ON {match}"
                ).to_arrow_reader(min(self.rows_per_file, 100_000))
                for batch in reader:
                    yield batch.cast(schema) if batch.schema != schema else batch
        finally:
            connection.close()

    def _scan(
        self,
        connection: duckdb.DuckDBPyConnection,
        fs: AbstractFileSystem,
        name: TableName,
        paths: list[str],
        alias: str,
        schema: pa.Schema | None = None,
    ) -> str:
        """A FROM expression reading data files of ``name`` (paths relative to the table)."""
        import pyarrow.dataset as pads

        base = self._table_dir(name)
        if self._kind == "local":
            listed = ", ".join("'" + f"{base}/{path}".replace("'", "''") + "'" for path in paths)
            return f"read_parquet([{listed}], union_by_name = true)"
        dataset = pads.dataset([f"{base}/{path}" for path in paths], schema=schema,
                               format="parquet", filesystem=fs)
        connection.register(alias, dataset)
        return f'"{alias}"'

    def _write_files(
        self,
        fs: AbstractFileSystem,
        name: TableName,
        write_id: str,
        batches: Iterator[pa.RecordBatch],
        schema: pa.Schema,
    ) -> list[dict[str, Any]]:
        """Write batches to new Parquet files of at most ``rows_per_file`` rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        base = self._table_dir(name)
        if self._kind == "local":
            Path(base, DATA_FOLDER).mkdir(parents=True, exist_ok=True)
        compression = None if self.compression == "none" else self.compression
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
                                    if _logical(batch.schema).equals(schema) else schema)
                    batch = _as_physical(batch, physical)
                    if writer is None:
                        relative = f"{DATA_FOLDER}/{write_id}-{len(entries):05d}.parquet"
                        entries.append({"path": relative, "rows": 0})
                        target = f"{base}/{relative}"
                        # Local files use Arrow's native I/O; object stores go through fsspec.
                        handle = (
                            pa.OSFile(target, "wb")
                            if self._kind == "local"
                            else fs.open(target, "wb")
                        )
                        writer = pq.ParquetWriter(handle, physical, compression=compression)
                        rows_in_file = 0
                    take = min(batch.num_rows - offset, self.rows_per_file - rows_in_file)
                    writer.write_batch(batch.slice(offset, take))
                    offset += take
                    rows_in_file += take
                    entries[-1]["rows"] = rows_in_file
                    if rows_in_file >= self.rows_per_file:
                        close()
            close()
        except BaseException:
            with contextlib.suppress(Exception):
                if writer is not None:
                    writer.close()
            if handle is not None:
                handle.close()
            self._remove_files(fs, name, entries)
            raise
        return entries

    def _remove_files(
        self, fs: AbstractFileSystem, name: TableName, entries: list[dict[str, Any]]
    ) -> None:
        base = self._table_dir(name)
        for entry in entries:
            # What cannot be removed now, vacuum() removes later.
            with contextlib.suppress(OSError):
                fs.rm_file(f"{base}/{entry['path']}")

    # -- other ---------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"schema.table"``) has a manifest."""
        return self._read_manifest(self._filesystem(), TableName.parse(name)) is not None

    def list_tables(self) -> list[str]:
        """The lake's tables, as ``table`` or ``schema.table``, sorted."""
        fs = self._filesystem()
        root = self._root()
        fs.invalidate_cache()
        names: list[str] = []
        for depth in (1, 2):
            pattern = "/".join([root, *["*"] * depth, MANIFEST_NAME])
            for path in fs.glob(pattern):
                relative = str(path).rstrip("/")[len(root.rstrip("/")) + 1 :]
                names.append(".".join(relative.split("/")[:-1]))
        return sorted(set(names))

    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Remove a table: its manifest first (atomic), then its files.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            missing_ok: Do nothing, instead of raising, when the table does not exist.
        """
        table = TableName.parse(name)
        fs = self._filesystem()
        if self._read_manifest(fs, table) is None:
            if missing_ok:
                return
            self._manifest_or_raise(fs, table)
        base = self._table_dir(table)
        fs.rm_file(f"{base}/{MANIFEST_NAME}")
        fs.invalidate_cache()
        for path in fs.glob(f"{base}/{DATA_FOLDER}/*.parquet"):
            fs.rm_file(path)

    def vacuum(self, name: str, retain_seconds: float = 3600.0) -> int:
        """Delete data files the manifest no longer lists.

        Replaced, upserted and abandoned writes leave files behind; they are kept for
        ``retain_seconds`` so that readers still holding the older manifest finish.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            retain_seconds: Keep unlisted files younger than this.

        Returns:
            The number of files deleted.
        """
        table = TableName.parse(name)
        fs = self._filesystem()
        manifest = self._manifest_or_raise(fs, table)
        live = {entry["path"].rsplit("/", 1)[-1] for entry in manifest["files"]}
        cutoff_ms = (time.time() - retain_seconds) * 1000
        base = self._table_dir(table)
        fs.invalidate_cache()
        removed = 0
        for path in fs.glob(f"{base}/{DATA_FOLDER}/*.parquet"):
            file_name = str(path).rsplit("/", 1)[-1]
            written_ms = file_name.split("-", 1)[0]
            if file_name in live or not written_ms.isdigit() or int(written_ms) > cutoff_ms:
                continue
            fs.rm_file(path)
            removed += 1
        return removed

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run ``DROP TABLE [IF EXISTS] name``; other statements are refused.

        A Parquet lake changes only through :meth:`write` (atomic manifest switches),
        so DML and other DDL raise a :class:`WarehouseError` that says what to use.
        """
        import re

        import duckdb

        statements = duckdb.extract_statements(sql)
        drop = re.fullmatch(
            r"\s*DROP\s+TABLE\s+(IF\s+EXISTS\s+)?([A-Za-z0-9_$.\-]+)\s*;?\s*", sql, re.I
        )
        if len(statements) == 1 and drop and not params:
            self.drop_table(drop.group(2), missing_ok=bool(drop.group(1)))
            return
        raise WarehouseError(
            "A Parquet lake runs only 'DROP TABLE [IF EXISTS] name' through execute(): "
            "change tables with write(...) (append, replace, upsert) and query them with read()."
        )

    def check_connection(self) -> str:
        """List the lake's tables.

        Returns:
            The lake's location and how many tables it holds.
        """
        tables = self.list_tables()
        return f"Parquet lake at {self.location}: {len(tables)} table(s)"


# -- storage helpers -------------------------------------------------------------------
def _s3_filesystem(bucket: S3Bucket) -> AbstractFileSystem:
    """An s3fs filesystem using the credentials and client parameters of ``bucket``."""
    import s3fs

    credentials = bucket.credentials
    session = credentials.get_boto3_session()
    resolved = session.get_credentials()
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    if resolved is not None:
        frozen = resolved.get_frozen_credentials()
        options.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
    client_kwargs: dict[str, Any] = {}
    if session.region_name:
        client_kwargs["region_name"] = session.region_name
    parameters = getattr(credentials, "aws_client_parameters", None)
    if parameters is not None:
        if parameters.endpoint_url:
            options["endpoint_url"] = parameters.endpoint_url
        if parameters.verify is not None and parameters.verify is not True:
            client_kwargs["verify"] = parameters.verify
        if parameters.use_ssl is False:
            options["use_ssl"] = False
    options["client_kwargs"] = client_kwargs
    return s3fs.S3FileSystem(**options)


def _gcs_filesystem(bucket: GcsBucket) -> AbstractFileSystem:
    """A gcsfs filesystem using the credentials of ``bucket``.

    With ``STORAGE_EMULATOR_HOST`` set (a local GCS emulator) requests are anonymous,
    as with Google's own clients.
    """
    import gcsfs
    import gcsfs.core

    credentials = bucket.gcp_credentials
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # Emulators speak only the JSON API: use the plain filesystem, which does not
        # probe for zonal/hierarchical buckets over gRPC.
        return gcsfs.core.GCSFileSystem(project=credentials.project, token="anon", **options)
    options["token"] = credentials.get_credentials_from_service_account()
    return gcsfs.GCSFileSystem(project=credentials.project, **options)


def _relation(
    connection: duckdb.DuckDBPyConnection, statement: str, values: dict[str, Any]
) -> duckdb.DuckDBPyRelation:
    relation = connection.sql(statement, params=values or None)
    if relation is None:
        raise WarehouseError(
            "read() and read_batches() take a query that returns rows (SELECT ...); "
            "this statement returns none."
        )
    return relation


# -- schema helpers --------------------------------------------------------------------
def _encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def _decode_schema(encoded: str) -> pa.Schema:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded)))


def _generation(manifest: dict[str, Any] | None) -> tuple[int, str] | None:
    return None if manifest is None else (manifest["generation"], manifest["write_id"])


def _referenced_tables(connection: duckdb.DuckDBPyConnection, sql: str) -> list[TableName]:
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


def _is_frame(data: Any) -> bool:
    """Whether ``data`` is one frame (pandas, polars, pyarrow), not an iterable of them."""
    module = type(data).__module__.split(".")[0]
    return module in ("pandas", "polars", "pyarrow")


def _chain_first(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _pa_table_of(schema: pa.Schema, batch: pa.RecordBatch | None = None) -> pa.Table:
    """An Arrow table of ``batch``, or an empty one of ``schema``."""
    import pyarrow as pa

    if batch is None:
        return schema.empty_table()
    return pa.Table.from_batches([batch], schema=schema)


def _unify(schemas: list[pa.Schema], table: str) -> pa.Schema:
    """One schema for the parts of a new table (an all-null column takes a real type)."""
    import pyarrow as pa

    try:
        return pa.unify_schemas(schemas, promote_options="permissive").remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatchError(
            f"The rows staged for {table} have columns of conflicting types ({exc}); "
            "convert them to one type before scoring."
        ) from exc


def _target_schema(existing: pa.Schema, data: pa.Table) -> pa.Schema:
    """The table's schema after writing ``data``: new columns go last."""
    import pyarrow as pa

    extra = [
        data.schema.field(name).remove_metadata()
        for name in data.column_names
        if name not in existing.names
    ]
    return pa.schema(list(existing) + extra)


def _conform(data: pa.Table, schema: pa.Schema, table: str) -> pa.Table:
    """Cast ``data`` to the table's schema; absent columns become nulls."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name not in data.column_names:
            columns.append(pa.nulls(data.num_rows, field.type))
            continue
        column = data.column(field.name)
        if column.type == field.type or (
            pa.types.is_dictionary(column.type) and column.type.value_type == field.type
        ):
            columns.append(column)  # dictionaries stay encoded: see _write_files
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"Column {field.name!r} of the frame has type {column.type} but table "
                f"{table!r} stores {field.type}, and the values do not convert ({exc}). "
                "Convert the column first, or rewrite the table with mode='replace'."
            ) from exc
    return pa.Table.from_arrays(
        columns, schema=pa.schema(
            [field.with_type(column.type) for field, column in zip(schema, columns, strict=True)]
        ),
    )


def _prepare(data: pa.Table, table: str) -> pa.Table:
    """``prepare_frame``, except that dictionary columns of a plain value type stay encoded.

    A lineage column repeats one value on every row; as a dictionary it costs four
    bytes a row and is written to Parquet without decoding (see :func:`_logical`).
    """
    import pyarrow as pa

    logical = prepare_frame(data.schema.empty_table(), table).schema
    if logical.equals(data.schema):
        return data
    columns = []
    for field, column in zip(logical, data.columns, strict=True):
        encoded = pa.types.is_dictionary(column.type) and column.type.value_type == field.type
        columns.append(column if encoded or column.type == field.type
                       else column.cast(field.type))
    return pa.Table.from_arrays(columns, names=logical.names)


def _logical(schema: pa.Schema) -> pa.Schema:
    """The schema a table records for data of ``schema``: dictionaries as their values."""
    import pyarrow as pa

    return pa.schema([
        field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field
        for field in schema
    ])


def _as_physical(batch: pa.RecordBatch, physical: pa.Schema) -> pa.RecordBatch:
    """``batch`` in the column types of the file being written (encoding or decoding)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.schema.equals(physical):
        return batch
    columns = []
    for field, column in zip(physical, batch.columns, strict=True):
        if column.type == field.type:
            columns.append(column)
        elif pa.types.is_dictionary(field.type):
            columns.append(pc.dictionary_encode(column.cast(field.type.value_type))
                           .cast(field.type))
        else:
            columns.append(column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=physical)
