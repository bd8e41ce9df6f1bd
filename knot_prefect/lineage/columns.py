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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


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

    @property
    def evolvable_columns(self) -> tuple[str, ...]:
        """The columns that publishing these predictions may add to an existing table.

        Only the optional lineage columns these predictions carry: a predictions table
        written before such a column existed (or by runs that read no versioned table)
        gains it, its older rows holding null. Pass them as a write's ``evolve``: any
        other column the table lacks is refused by the warehouse as usual
        (``SchemaMismatchError`` naming it), so a frame of another shape never changes
        the table.

        Examples:
            >>> from dataclasses import replace
            >>> from datetime import datetime
            >>> now = datetime(2026, 11, 1)
            >>> lineage = Lineage("m", 1, "prod", "warehouse columns", None, "h", None, now, now)
            >>> lineage.evolvable_columns
            ()
            >>> replace(lineage, source_versions='{"rows": 3}').evolvable_columns
            ('source_versions',)
        """
        return tuple(column for column in OPTIONAL_LINEAGE_COLUMNS
                     if getattr(self, column) is not None)

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
