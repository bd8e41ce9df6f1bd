"""Answer "which data, features and model produced this prediction?" for one row.

The answer joins the row's lineage columns with what MLflow knows of the model version
(its run, source, metrics) and what Prefect knows of the flow run (name, state, times).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError
from knot_prefect.lineage.columns import ALL_LINEAGE_COLUMNS, LINEAGE_COLUMNS

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.base import Warehouse


@dataclass
class PredictionLineage:
    """Everything known about how one published prediction was made."""

    table: str
    key: dict[str, Any]
    prediction: dict[str, Any]
    lineage: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    flow_run: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_prediction(
    warehouse: Warehouse,
    table: str,
    key_value: Any,
    key_column: str | None = None,
    tracking: MLflowTracking | None = None,
) -> PredictionLineage:
    """Look up one published row and explain where it came from.

    Args:
        warehouse: Where the predictions table lives.
        table: The predictions table (``batch_inference_flow``'s output).
        key_value: The row's key value (converted to the key column's type).
        key_column: The key column (default: the table's only column ending in ``_id``).
        tracking: The MLflow store of the model registry, for model details.

    Raises:
        ConfigurationError: When the table has no lineage columns, the key column is
            ambiguous or missing, or no row has that key.
    """
    from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier

    name = TableName.parse(table)
    columns = list(warehouse.read_arrow(f"select * from {name.quoted()} where 1 = 0").schema.names)
    missing = [c for c in LINEAGE_COLUMNS if c not in columns]
    if missing:
        raise ConfigurationError(
            f"Table {table} has no lineage column(s) {missing}: only tables written by "
            "batch_inference_flow carry lineage."
        )
    if key_column is None:
        candidates = [c for c in columns if c.endswith("_id") and c != "flow_run_id"]
        if len(candidates) != 1:
            raise ConfigurationError(
                f"Cannot tell the key column of {table} (candidates: {candidates}); "
                "pass --key-column."
            )
        key_column = candidates[0]
    if key_column not in columns:
        raise ConfigurationError(
            f"Table {table} has no column {key_column!r}; its columns are {columns}."
        )
    frame = warehouse.read(
        f"select * from {name.quoted()} where {quote_identifier(key_column, 'column')} = :key",
        {"key": _typed(key_value, warehouse, name, key_column)},
    )
    if frame.empty:
        raise ConfigurationError(f"No row of {table} has {key_column} = {key_value!r}.")
    row = {str(k): v for k, v in frame.iloc[0].to_dict().items()}
    lineage = {c: row.pop(c) for c in ALL_LINEAGE_COLUMNS if c in row}
    key = {key_column: row.pop(key_column)}
    answer = PredictionLineage(table=str(name), key=key, prediction=row, lineage=lineage)
    if tracking is not None:
        answer.model = _model_details(tracking, lineage["model_name"], lineage["model_version"])
    if lineage.get("flow_run_id"):
        answer.flow_run = _flow_run_details(str(lineage["flow_run_id"]))
    return answer


def _typed(value: Any, warehouse: Warehouse, name: Any, column: str) -> Any:
    """Convert a command-line value to the key column's type.

    Raises:
        ConfigurationError: When the value is not of that type; names the column.
    """
    import pyarrow as pa

    field_type = warehouse.read_arrow(f"select * from {name.quoted()} where 1 = 0").schema.field(
        column
    ).type
    if not isinstance(value, str):
        return value
    if pa.types.is_integer(field_type):
        convert: Any = int
    elif pa.types.is_floating(field_type):
        convert = float
    else:
        return value
    try:
        return convert(value.strip())
    except ValueError:
        wanted = "a whole number" if convert is int else "a number"
        raise ConfigurationError(
            f"Key {value!r} is not a valid key of {name}: column {column!r} holds "
            f"{field_type} values, so pass {wanted} (e.g. --key 42)."
        ) from None


def _model_details(tracking: MLflowTracking, model_name: str, version: Any) -> dict[str, Any]:
    try:
        client = tracking.get_client()
        model_version = client.get_model_version(model_name, str(int(version)))
        details: dict[str, Any] = {
            "name": model_name,
            "version": int(version),
            "run_id": model_version.run_id,
            "source": model_version.source,
            "aliases": list(model_version.aliases or []),
            "tags": {k: v for k, v in (model_version.tags or {}).items() if k.startswith("knot.")},
        }
        if model_version.run_id:
            run = client.get_run(model_version.run_id)
            details["training_run"] = {
                "name": run.info.run_name,
                "prefect_flow_run_id": run.data.tags.get("knot.prefect.flow_run_id"),
                "prefect_flow_run_url": run.data.tags.get("knot.prefect.flow_run_url"),
            }
        return details
    except Exception as exc:  # Lineage from the row itself still answers.
        return {"error": f"{type(exc).__name__}: {tracking.redact(str(exc))}"}


def _flow_run_details(flow_run_id: str) -> dict[str, Any]:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        return {
            "id": flow_run_id,
            "name": run.name,
            "state": run.state_name,
            "start_time": str(run.start_time),
            "end_time": str(run.end_time),
            "parameters": run.parameters,
        }
    except Exception as exc:  # The Prefect API may be another one than the run's.
        return {"id": flow_run_id, "error": f"{type(exc).__name__}: {exc}"}
