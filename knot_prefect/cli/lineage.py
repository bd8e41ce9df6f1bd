"""``knot lineage TABLE --key VALUE``: where did this prediction come from?"""

from __future__ import annotations

import typer


def lineage(
    table: str = typer.Argument(..., help="Predictions table written by batch_inference_flow."),
    key: str = typer.Option(..., "--key", help="Key value of the row to explain."),
    key_column: str = typer.Option(
        None, "--key-column", help="Key column (default: the *_id column)."
    ),
    warehouse: str = typer.Option(
        "local-warehouse", "--warehouse", help="Warehouse block document."
    ),
    tracking: str = typer.Option(
        "local-mlflow", "--tracking", help="MLflowTracking block document (empty to skip)."
    ),
) -> None:
    """Explain which data, features and model produced the prediction for KEY."""
    import json

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.cli._output import fail
    from knot_prefect.errors import KnotError
    from knot_prefect.lineage.query import explain_prediction

    try:
        answer = explain_prediction(
            resolve_block(warehouse, Warehouse),
            table,
            key,
            key_column=key_column,
            tracking=resolve_block(tracking, MLflowTracking) if tracking else None,
        )
    except KnotError as exc:
        fail(str(exc))
    typer.echo(json.dumps(answer.to_dict(), indent=2, default=str))
