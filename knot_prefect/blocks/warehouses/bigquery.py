"""``BigQueryWarehouse``: BigQuery through prefect-gcp's ``GcpCredentials``.

Reads run a query job and fetch the result as Arrow (through the BigQuery Storage
API when it is installed). Values are always query parameters: ``:name`` in knot's
SQL becomes ``@name`` bound with a ``ScalarQueryParameter``.

Writes load the frame as Parquet into a staging table (a load job), then change the
target in one atomic job:

- ``replace`` (and a new table): a copy job from the staging table with
  ``WRITE_TRUNCATE``;
- ``append``: ``INSERT INTO target (...) SELECT ... FROM stage``;
- ``upsert``: ``MERGE target USING stage ON keys ...``.

A write that fails or is killed before that job leaves the target untouched. The
staging table is deleted afterwards; one left behind by a killed writer is named
``_knot_stage_<table>_<id>`` and can be dropped at any time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from prefect_gcp import GcpCredentials
from pydantic import Field

from knot_prefect.blocks.fields import loaded_block_example
from knot_prefect.blocks.warehouses._common import bind_named, column_kind, staging_name
from knot_prefect.blocks.warehouses.base import Evolve, TableNotFoundError, WarehouseError
from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier
from knot_prefect.blocks.warehouses.sql_session import SqlSession
from knot_prefect.blocks.warehouses.staging import SqlStagedWarehouse

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud import bigquery


# How a saved block is used (the Prefect UI shows it on the block's page).
CODE_EXAMPLE = loaded_block_example("BigQueryWarehouse", "warehouse", """
frame = warehouse.read("SELECT * FROM features WHERE day = :day", {"day": "2024-01-01"})
warehouse.write(frame, "predictions", mode="replace")
""")


class BigQueryWarehouse(SqlStagedWarehouse):
    """Read BigQuery as Arrow; write through Parquet load jobs and atomic jobs.

    Examples:
        ```python
        from prefect_gcp import GcpCredentials
        from knot_prefect import BigQueryWarehouse

        warehouse = BigQueryWarehouse(
            gcp_credentials=GcpCredentials.load("gcp"), project="my-project",
            dataset="ml", location="EU",
        )
        warehouse.write(frame, "predictions", mode="upsert", keys=["customer_id"])
        ```
    """

    # prefect-gcp already registers a "BigQuery Warehouse" block type; keep ours apart.
    _block_type_name = "Knot BigQuery Warehouse"
    _description = (
        "BigQuery tables read as Arrow and written through Parquet load jobs into a "
        "staging table, then one atomic copy, INSERT or MERGE job."
    )
    _code_example = CODE_EXAMPLE

    identifier_quote: ClassVar[str] = "`"

    gcp_credentials: GcpCredentials = Field(
        description="The prefect-gcp credentials used to reach BigQuery."
    )
    project: str | None = Field(
        default=None,
        description=(
            "The project that runs jobs and holds the dataset (default: the credentials' "
            "project)."
        ),
    )
    dataset: str = Field(description="The dataset of table names given without one.")
    location: str = Field(default="US", description="The location of the dataset and its jobs.")
    api_endpoint: str | None = Field(
        default=None,
        description=(
            "A custom BigQuery API endpoint (e.g. a private service connect URL); reads "
            "then use the REST API instead of the BigQuery Storage API."
        ),
    )

    # -- client --------------------------------------------------------------------
    @property
    def _project(self) -> str:
        project = self.project or self.gcp_credentials.project
        if not project:
            raise WarehouseError(
                "BigQueryWarehouse has no project: set 'project' on the block or on its "
                "GcpCredentials."
            )
        return project

    def _client(self) -> bigquery.Client:
        from google.cloud import bigquery

        options = {"api_endpoint": self.api_endpoint} if self.api_endpoint else None
        return bigquery.Client(
            project=self._project,
            credentials=self.gcp_credentials.get_credentials_from_service_account(),
            location=self.location,
            client_options=options,
        )

    def _ref(self, table: TableName) -> str:
        return f"{self._project}.{table.schema}.{table.table}"

    def _quoted(self, table: TableName) -> str:
        project = self._project
        if "`" in project or "\\" in project:
            raise WarehouseError(f"Invalid BigQuery project id {project!r}.")
        return f"`{project}`.{table.quoted('`')}"

    # -- reads ---------------------------------------------------------------------
    def _query(self, client: bigquery.Client, sql: str, params: Mapping[str, Any] | None) -> Any:
        from google.api_core import exceptions
        from google.cloud import bigquery

        statement, used = bind_named(sql, params, "named_at")
        config = bigquery.QueryJobConfig(
            query_parameters=[query_parameter(name, value) for name, value in used.items()]
        )
        try:
            job = client.query(statement, job_config=config)
            job.result()
        except exceptions.NotFound as exc:
            raise TableNotFoundError(f"BigQuery: {exc.message}") from None
        except exceptions.GoogleAPICallError as exc:
            raise WarehouseError(f"BigQuery: {exc.message}") from None
        return job

    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a query and return the result as a pyarrow Table."""
        client = self._client()
        try:
            job = self._query(client, sql, params)
            return job.to_arrow(create_bqstorage_client=self.api_endpoint is None)
        finally:
            client.close()

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        client = self._client()
        try:
            rows = self._query(client, sql, params).result(page_size=batch_rows)
            for batch in rows.to_arrow_iterable():
                for offset in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(offset, batch_rows)
        finally:
            client.close()

    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table, or some of its columns, as a pyarrow Table."""
        table = self._target(name)
        selected = (
            ", ".join(quote_identifier(c, "column", "`") for c in columns) if columns else "*"
        )
        return self.read_arrow(f"SELECT {selected} FROM {self._quoted(table)}")

    # -- writes --------------------------------------------------------------------
    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        from google.api_core import exceptions

        try:
            return self._write_through_stage(data, table, mode, keys, evolve)
        except exceptions.GoogleAPICallError as exc:
            raise WarehouseError(f"BigQuery write to {table!r} failed: {exc.message}") from None

    @contextlib.contextmanager
    def _stage_frame(
        self, session: SqlSession, target: TableName, data: pa.Table
    ) -> Iterator[TableName]:
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        assert isinstance(session, _BigQuerySession)
        stage = staging_name(target)
        buffer = io.BytesIO()
        pq.write_table(data, buffer, compression="zstd")
        size = buffer.tell()
        buffer.seek(0)
        load_config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        )
        parquet_options = bigquery.ParquetOptions()
        parquet_options.enable_list_inference = True
        load_config.parquet_options = parquet_options
        try:
            session.client.load_table_from_file(
                buffer, self._ref(stage), size=size, job_config=load_config
            ).result()
            session.loaded = stage
            yield stage
        finally:
            # Deleting a table is an API call, not a billed query job.
            session.client.delete_table(self._ref(stage), not_found_ok=True)

    def _columns(self, client: bigquery.Client, table: TableName) -> dict[str, str]:
        """The table's columns (name -> BigQuery type), empty when it does not exist."""
        from google.api_core import exceptions

        try:
            found = client.get_table(self._ref(table))
        except exceptions.NotFound:
            return {}
        return {field.name: field.field_type for field in found.schema}

    # -- staged writes: hooks of the shared algorithm (see staging.py) ----------------
    @contextlib.contextmanager
    def _session(self) -> Iterator[SqlSession]:
        client = self._client()
        try:
            yield _BigQuerySession(self, client)
        finally:
            client.close()

    def _default_schema(self) -> str:
        return self.dataset

    def describe(self) -> str:
        """The project as text (for messages)."""
        return f"BigQuery project {self._project}"

    # -- other ---------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"dataset.table"``) exists."""
        client = self._client()
        try:
            return bool(self._columns(client, self._target(name)))
        finally:
            client.close()

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (DDL, DML or a script), with ``:name`` values bound."""
        client = self._client()
        try:
            self._query(client, sql, params)
        finally:
            client.close()

    def check_connection(self) -> str:
        """Read the dataset's metadata.

        Returns:
            The dataset and its location.
        """
        client = self._client()
        try:
            found = client.get_dataset(f"{self._project}.{self.dataset}")
        finally:
            client.close()
        return f"BigQuery dataset {self._project}.{self.dataset} in {found.location}"


class _BigQuerySession(SqlSession):
    """BigQuery's hooks: every job is atomic, so the target changes in one job
    (``CREATE OR REPLACE TABLE ... AS``, ``INSERT`` or ``MERGE``) and the stages are
    dropped after it."""

    quote = "`"
    qualify_set = True
    transactional_ddl = False

    def __init__(self, warehouse: BigQueryWarehouse, client: bigquery.Client) -> None:
        self.warehouse, self.client = warehouse, client
        #: The table a write's frame was loaded into: a new target is copied from it.
        self.loaded: TableName | None = None

    def run(self, sql: str) -> None:
        self.warehouse._query(self.client, sql, None)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.warehouse._query(self.client, sql, None)]

    def full(self, table: TableName) -> str:
        return self.warehouse._quoted(table)

    def families(self, table: TableName) -> dict[str, str]:
        return {n: _family(t) for n, t in self.warehouse._columns(self.client, table).items()}

    def column_type(self, data_type: pa.DataType) -> str:
        return bigquery_type(data_type)

    def table_names(self, schema: str | None) -> list[str]:
        dataset = f"{self.warehouse._project}.{schema or self.warehouse.dataset}"
        return [table.table_id for table in self.client.list_tables(dataset)]

    def create_schema(self, table: TableName) -> None:
        """Datasets are made with their location and access rules, not by knot."""

    def create(
        self, target: TableName, schema: pa.Schema, source: str, replace: bool,
        keys: Sequence[str],
    ) -> None:
        if self.loaded is not None and source == self.full(self.loaded):
            from google.cloud import bigquery

            # One copy job keeps the column types the Parquet load gave the stage.
            config = bigquery.CopyJobConfig(
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            )
            self.client.copy_table(self.warehouse._ref(self.loaded),
                                   self.warehouse._ref(target), job_config=config).result()
            return
        super().create(target, schema, source, replace, keys)


# -- parameters and types --------------------------------------------------------------
def query_parameter(name: str, value: Any) -> Any:
    """A BigQuery query parameter for a Python value (its type inferred).

    Examples:
        >>> query_parameter("day", "2024-01-01").type_
        'STRING'
        >>> query_parameter("ids", [1, 2]).array_type
        'INT64'
    """
    from google.cloud import bigquery

    if isinstance(value, list | tuple):
        kinds = {_scalar_type(item) for item in value if item is not None} or {"STRING"}
        if len(kinds) > 1:
            raise WarehouseError(
                f"Parameter :{name} mixes types {sorted(kinds)}: pass a list of one type."
            )
        return bigquery.ArrayQueryParameter(name, kinds.pop(), list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


def _scalar_type(value: Any) -> str:
    if value is None or isinstance(value, str):
        return "STRING"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "BIGNUMERIC"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP" if value.tzinfo else "DATETIME"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    raise WarehouseError(
        f"Cannot bind a {type(value).__name__} as a BigQuery parameter: pass a str, int, "
        "float, bool, Decimal, date, datetime, bytes or a list of one of these."
    )


_BIGQUERY_TYPES = {
    "boolean": "BOOL", **dict.fromkeys(["int16", "int32", "int64", "uint64"], "INT64"),
    "float32": "FLOAT64", "float64": "FLOAT64", "binary": "BYTES", "date": "DATE",
    "time": "TIME", "timestamp": "DATETIME", "timestamptz": "TIMESTAMP",
}


def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery column type for an Arrow type (as a Parquet load maps it)."""
    kind = column_kind(arrow_type)
    if kind == "decimal":
        small = arrow_type.precision <= 38 and arrow_type.scale <= 9  # type: ignore[attr-defined]
        return "NUMERIC" if small else "BIGNUMERIC"
    return _BIGQUERY_TYPES.get(kind or "", "STRING")


def _family(bigquery_data_type: str) -> str:
    return {
        "INTEGER": "integer", "INT64": "integer", "FLOAT": "float", "FLOAT64": "float",
        "NUMERIC": "decimal", "BIGNUMERIC": "decimal", "BOOLEAN": "boolean", "BOOL": "boolean",
        "STRING": "string", "BYTES": "binary", "TIMESTAMP": "timestamp",
        "DATETIME": "timestamp", "DATE": "date", "TIME": "time",
    }.get(bigquery_data_type.upper(), "other")
