"""Where each public name of :mod:`knot_prefect` lives.

The package root resolves these lazily so ``import knot_prefect`` stays as cheap as
``import prefect``; a block's module is imported on first access.
"""

from __future__ import annotations

# Block classes: exported from the package root and registered with Prefect.
BLOCK_MODULES: dict[str, str] = {
    "DuckDBWarehouse": "knot_prefect.blocks.warehouses.duckdb",
    "SqlWarehouse": "knot_prefect.blocks.warehouses.sql",
    "ParquetLake": "knot_prefect.blocks.warehouses.parquet",
    "MLflowTracking": "knot_prefect.blocks.mlflow_tracking",
    "FeastFeatureStore": "knot_prefect.blocks.feast_store",
}

# Other public names re-exported from the package root.
OTHER_EXPORTS: dict[str, str] = {
    "KnotSettings": "knot_prefect.settings",
    "Warehouse": "knot_prefect.blocks.warehouses.base",
    "WriteResult": "knot_prefect.blocks.warehouses.base",
}

EXPORTS: dict[str, str] = {**BLOCK_MODULES, **OTHER_EXPORTS}

# Prefect tasks, importable as ``from knot_prefect.tasks import NAME``.
TASK_EXPORTS: dict[str, str] = {
    "feast_apply": "knot_prefect.tasks.features",
    "materialize": "knot_prefect.tasks.features",
    "ensure_fresh": "knot_prefect.tasks.features",
    "training_set": "knot_prefect.tasks.features",
    "online_features": "knot_prefect.tasks.features",
}

# Flow templates, importable as ``from knot_prefect.flows import NAME``.
FLOW_EXPORTS: dict[str, str] = {
    "feature_materialization_flow": "knot_prefect.flows.feature_materialization",
}
