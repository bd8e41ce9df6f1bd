"""Features from a warehouse table's own columns: the latest row per entity key.

For a team without a feature store: the model was trained on the columns of a table
(or query) in a knot ``Warehouse``, and a request's features are that table's latest
row for the key, by the event-timestamp column when there is one. The plan (which
columns, the key types, the SQL text) is worked out once per model version; a
micro-batch then costs one parameterised query for all its keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError
from knot_prefect.serving.errors import AmbiguousEntityError
from knot_prefect.serving.features import FeaturePlan, JoinKey, OnlineRows

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.base import Warehouse

_RANK = "knot_rank"
#: How long a feature read waits for another process's turn on a warehouse file (the
#: shadow runs at a lower priority, so on a busy machine its turn can last seconds).
TURN_WAIT_SECONDS = 10.0


def _join_key(name: str, data_type: pa.DataType) -> JoinKey:
    import pyarrow.types as t

    if t.is_integer(data_type):
        return JoinKey(name, "int", max(data_type.bit_width, 32))
    if t.is_floating(data_type) or t.is_decimal(data_type):
        return JoinKey(name, "float")
    if t.is_boolean(data_type):
        return JoinKey(name, "bool")
    return JoinKey(name, "str")


class WarehouseSource:
    """The latest row per key of a warehouse table (or query) as the feature source.

    Args:
        warehouse: The warehouse block holding the table.
        source: A table name (``"analytics.loans"``) or a SQL query returning the rows.
        key_columns: The columns identifying an entity; a request carries them.
        timestamp_column: Event-time column: the latest row per key is used. Without
            it a key must identify one row.

    Examples:
        >>> from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
        >>> import pandas as pd, tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> warehouse = DuckDBWarehouse(path=os.path.join(folder, "w.duckdb"))
        >>> _ = warehouse.write(pd.DataFrame({"loan_ref": [1, 1], "income": [10.0, 12.0],
        ...     "opened_at": pd.to_datetime(["2026-01-01", "2026-02-01"], utc=True)}), "loans")
        >>> source = WarehouseSource(warehouse, "loans", ["loan_ref"], "opened_at")
        >>> plan = source.plan(["income"])
        >>> source.read(plan, {"loan_ref": [1]}).columns
        {'income': [12.0]}
    """

    def __init__(
        self,
        warehouse: Warehouse,
        source: str,
        key_columns: Sequence[str],
        timestamp_column: str | None = None,
    ) -> None:
        from knot_prefect.tasks.warehouse import is_table_name

        if not key_columns:
            raise ConfigurationError(
                "Serving from a warehouse table needs the entity key columns a request "
                "carries: set key_columns in the model spec, or pass --key COLUMN."
            )
        # A DuckDB file also holding the shadow's table is open in the shadow's process
        # now and then: a read waits for that turn rather than failing the request.
        self.warehouse = warehouse.waiting_for_turns(TURN_WAIT_SECONDS)
        self.source = source.strip()
        self.key_columns = list(key_columns)
        self.timestamp_column = timestamp_column
        self._is_table = is_table_name(self.source)
        self.label = self.source if self._is_table else "query"
        self.description = (f"warehouse table {self.source}" if self._is_table
                            else "the rows of the spec's warehouse query")
        self.absent_hint = f"Check the key: {self.description} holds no row for it."

    # -- SQL -------------------------------------------------------------------------
    def _quote(self, name: str) -> str:
        from knot_prefect.blocks.warehouses.identifiers import quote_identifier

        return quote_identifier(name, "column name", self._quote_char())

    def _quote_char(self) -> str:
        # BigQuery quotes identifiers with backticks; every other backend with ".
        return "`" if type(self.warehouse).__name__ == "BigQueryWarehouse" else '"'

    def _relation(self) -> str:
        if self._is_table:
            return self.warehouse.table_name(self.source).quoted(self._quote_char())
        return f"({self.source}) AS knot_source"

    def _columns_of_source(self) -> pa.Schema:
        sql = f"SELECT * FROM {self._relation()} WHERE 1 = 0"
        return self.warehouse.read_arrow(sql).schema

    # -- the interface ---------------------------------------------------------------
    def plan(self, inputs: Sequence[str]) -> FeaturePlan:
        """Check the table holds the keys, the timestamp and every model input.

        Raises:
            ConfigurationError: Naming the columns the table lacks and those it has.
        """
        schema = self._columns_of_source()
        present = set(schema.names)
        features = [name for name in inputs if name not in self.key_columns]
        wanted = {"key column": self.key_columns,
                  "timestamp column": [self.timestamp_column] if self.timestamp_column else [],
                  "model input": features}
        lacking = [f"{kind} {name!r}" for kind, names in wanted.items()
                   for name in names if name not in present]
        if lacking:
            raise ConfigurationError(
                f"Cannot serve from {self.description}: it has no {', '.join(lacking)} "
                f"(its columns: {sorted(present)}). Serve the model trained on this table, "
                "or point the spec's source (or --source) at the table it was trained on."
            )
        from knot_prefect.lineage.columns import WAREHOUSE_COLUMNS

        keys = [_join_key(name, schema.field(name).type) for name in self.key_columns]
        return FeaturePlan(
            references=tuple(features),
            view_of={name: self.label for name in features},
            join_keys=tuple(keys),
            view_versions={},
            lineage_label=WAREHOUSE_COLUMNS,
        )

    def read(self, plan: FeaturePlan, keys: Mapping[str, Sequence[Any]]) -> OnlineRows:
        """One query for the batch's distinct keys; the latest row of each.

        Raises:
            AmbiguousEntityError: Without a timestamp column, when a key has several rows.
        """
        names = [key.name for key in plan.join_keys]
        wanted = list(zip(*(keys[name] for name in names), strict=True))
        distinct = list(dict.fromkeys(wanted))
        features = list(plan.view_of)
        found = self._latest(names, features, distinct) if distinct else {}
        columns: dict[str, list[Any]] = {name: [] for name in features}
        times: list[datetime | None] = []
        missing: list[int] = []
        for position, key in enumerate(wanted):
            row = found.get(key)
            if row is None:
                missing.append(position)
            for name in features:
                columns[name].append(row[name] if row is not None else None)
            times.append(_utc(row.get(self.timestamp_column)) if row and self.timestamp_column
                         else None)
        return OnlineRows(columns=columns, event_times={self.label: times},
                          missing={self.label: missing} if missing else {})

    def _latest(
        self, names: list[str], features: list[str], distinct: list[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        params: dict[str, Any] = {}
        matches = []
        for row, key in enumerate(distinct):
            terms = []
            for column, (name, value) in enumerate(zip(names, key, strict=True)):
                params[f"knot_key_{row}_{column}"] = value
                terms.append(f"{self._quote(name)} = :knot_key_{row}_{column}")
            matches.append("(" + " AND ".join(terms) + ")")
        wanted = [*names, *features, *([self.timestamp_column] if self.timestamp_column else [])]
        selected = ", ".join(self._quote(name) for name in dict.fromkeys(wanted))
        where = " OR ".join(matches)
        if self.timestamp_column:
            partition = ", ".join(self._quote(name) for name in names)
            sql = (f"SELECT {selected} FROM (SELECT {selected}, ROW_NUMBER() OVER "
                   f"(PARTITION BY {partition} ORDER BY {self._quote(self.timestamp_column)} "
                   f"DESC) AS {_RANK} FROM {self._relation()} WHERE {where}) AS knot_latest "
                   f"WHERE {_RANK} = 1")
        else:
            sql = f"SELECT {selected} FROM {self._relation()} WHERE {where}"
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        table = self.warehouse.read_arrow(sql, params)
        for row in table.to_pylist():
            key = tuple(row[name] for name in names)
            if key in found:
                shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, key, strict=True))
                raise AmbiguousEntityError(
                    f"{self.description} holds several rows for {shown} and no timestamp "
                    "column says which is the latest: set timestamp_column in the model "
                    "spec (or pass --timestamp COLUMN).",
                    {"entity": dict(zip(names, key, strict=True))},
                )
            found[key] = row
        return found


def _utc(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
