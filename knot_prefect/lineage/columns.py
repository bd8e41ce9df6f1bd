"""The lineage columns every published prediction row carries.

Examples:
    >>> a = source_query_hash("select * from t where d = :d", {"d": "2026-11-01"})
    >>> b = source_query_hash("select * from t where d = :d", {"d": "2026-11-02"})
    >>> len(a), a == b
    (64, False)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.warehouses.base import Warehouse

# The ``feature_views`` value of a model without a feature store: it read the source
# table's own columns.
WAREHOUSE_COLUMNS = "warehouse columns"

LINEAGE_COLUMNS: tuple[str, ...] = (
    "model_name",
    "model_version",
    "model_alias",
    "feature_views",
    "contract_version",
    "source_query_hash",
    "flow_run_id",
    "features_as_of",
    "scored_at",
)
# Written only by runs that read versioned tables (Delta): older tables lack it.
OPTIONAL_LINEAGE_COLUMNS: tuple[str, ...] = ("source_versions",)
# Every column a predictions row may carry for its lineage.
ALL_LINEAGE_COLUMNS: tuple[str, ...] = LINEAGE_COLUMNS + OPTIONAL_LINEAGE_COLUMNS


def source_query_hash(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """A stable SHA-256 of a query and its bound parameters."""
    payload = json.dumps({"sql": sql.strip(), "params": params or {}}, sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def feature_view_versions(store: Any, views: Sequence[str]) -> str:
    """``view@version`` for each Feast feature view, comma separated.

    Feast has no version numbers; the version is the first 12 hex digits of the
    SHA-256 of the view's serialized spec, so it changes exactly when the definition
    does.
    """
    parts = []
    for name in views:
        spec = store.get_feature_view(name).to_proto().spec.SerializeToString()
        parts.append(f"{name}@{hashlib.sha256(spec).hexdigest()[:12]}")
    return ",".join(parts)


@dataclass(frozen=True)
class Lineage:
    """What produced a batch of predictions; one value per lineage column."""

    model_name: str
    model_version: int
    model_alias: str
    feature_views: str
    contract_version: str | None
    source_query_hash: str
    flow_run_id: str | None
    features_as_of: datetime
    scored_at: datetime
    source_versions: str | None = None
    """The version of every lake table the run read, as JSON (``{"rows": 3}``); None
    when it read no versioned table (see :mod:`knot_prefect.lineage.versions`)."""

    def may_evolve(self, warehouse: Warehouse, table: str, columns: Iterable[str]) -> bool:
        """Whether publishing ``columns`` to ``table`` may add columns to the table.

        Only the optional lineage columns these predictions carry may be added: a
        predictions table written before such a column existed (or by runs that read
        no versioned table) gains it, its older rows holding null. Any other column
        the table lacks is refused by the warehouse as usual (``SchemaMismatchError``
        naming it), so a frame of another shape never changes the table.

        Args:
            warehouse: Where the predictions are published.
            table: The predictions table.
            columns: The columns of the predictions about to be published.
        """
        carried = {column.lower() for column in OPTIONAL_LINEAGE_COLUMNS
                   if getattr(self, column) is not None}
        if not carried or not warehouse.table_exists(table):
            return False
        quoted = warehouse.table_name(table).quoted(warehouse.identifier_quote)
        existing = warehouse.read_arrow(f"SELECT * FROM {quoted} LIMIT 0").schema.names
        # Names compare regardless of case: some warehouses fold them (Snowflake).
        new = {column.lower() for column in columns} - {name.lower() for name in existing}
        return bool(new) and new <= carried

    def attach(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Return ``predictions`` with the lineage columns added (a new frame).

        ``source_versions`` is added only when the run read versioned tables.
        """
        frame = predictions.copy()
        for column, value in asdict(self).items():
            if value is None and column in OPTIONAL_LINEAGE_COLUMNS:
                continue
            frame[column] = value
        return frame
