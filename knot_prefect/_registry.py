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
    "DeltaLake": "knot_prefect.blocks.warehouses.delta_lake",
    "IcebergTable": "knot_prefect.blocks.warehouses.iceberg_table",
    "SnowflakeWarehouse": "knot_prefect.blocks.warehouses.snowflake",
    "BigQueryWarehouse": "knot_prefect.blocks.warehouses.bigquery",
    "MLflowTracking": "knot_prefect.blocks.mlflow_tracking",
    "FeastFeatureStore": "knot_prefect.blocks.feast_store",
    "DataContract": "knot_prefect.blocks.contract",
    "ComputeProfile": "knot_prefect.blocks.compute_profile",
    "ModelSpec": "knot_prefect.blocks.model_spec",
    "SparkEngine": "knot_prefect.blocks.spark_engine",
}

# Block classes that need an integration only an extra installs: name -> (package, extra).
OPTIONAL_BLOCKS: dict[str, tuple[str, str]] = {
    "SnowflakeWarehouse": ("prefect_snowflake", "snowflake"),
    "BigQueryWarehouse": ("prefect_gcp", "gcp"),
    "DeltaLake": ("deltalake", "delta"),
    "IcebergTable": ("pyiceberg", "iceberg"),
}

# Other public names re-exported from the package root.
OTHER_EXPORTS: dict[str, str] = {
    "KnotSettings": "knot_prefect.settings",
    "Warehouse": "knot_prefect.blocks.warehouses.base",
    "WriteResult": "knot_prefect.blocks.warehouses.base",
    "ContractValidationError": "knot_prefect.contracts.errors",
    "ContractDefinitionError": "knot_prefect.blocks.contract_yaml",
    "QuarantineError": "knot_prefect.contracts.errors",
    "ValidationReport": "knot_prefect.contracts.report",
    "CheckResult": "knot_prefect.checks.result",
    "CheckFailedError": "knot_prefect.checks.result",
    "tracked_run": "knot_prefect.tracking.runs",
}

EXPORTS: dict[str, str] = {**BLOCK_MODULES, **OTHER_EXPORTS}

# Prefect tasks and the plain function behind each (callable outside a run), importable
# as ``from knot_prefect.tasks import NAME``.
TASK_EXPORTS: dict[str, str] = {
    "extract": "knot_prefect.tasks.warehouse",
    "extract_frame": "knot_prefect.tasks.warehouse",
    "publish": "knot_prefect.tasks.warehouse",
    "publish_frame": "knot_prefect.tasks.warehouse",
    "feast_apply": "knot_prefect.tasks.features",
    "apply_feature_repo": "knot_prefect.tasks.features",
    "materialize": "knot_prefect.tasks.features",
    "materialize_views": "knot_prefect.tasks.features",
    "ensure_fresh": "knot_prefect.tasks.features",
    "check_freshness": "knot_prefect.tasks.features",
    "training_set": "knot_prefect.tasks.features",
    "get_training_set": "knot_prefect.tasks.features",
    "online_features": "knot_prefect.tasks.features",
    "get_online_features": "knot_prefect.tasks.features",
    "validate": "knot_prefect.contracts.tasks",
    "validate_frame": "knot_prefect.contracts.tasks",
    "check": "knot_prefect.checks.tasks",
    "run_check": "knot_prefect.checks.tasks",
    "finish_with_warnings": "knot_prefect.checks.completion",
    "row_count": "knot_prefect.checks.metrics",
    "null_fraction": "knot_prefect.checks.metrics",
    "column_min": "knot_prefect.checks.metrics",
    "column_max": "knot_prefect.checks.metrics",
    "column_mean": "knot_prefect.checks.metrics",
    "column_std": "knot_prefect.checks.metrics",
    "freshness": "knot_prefect.checks.metrics",
    "metric": "knot_prefect.checks.metrics",
    "train": "knot_prefect.tasks.mlflow_train",
    "train_model": "knot_prefect.tasks.mlflow_train",
    "evaluate": "knot_prefect.tasks.mlflow_evaluate",
    "evaluate_model": "knot_prefect.tasks.mlflow_evaluate",
    "register_model": "knot_prefect.tasks.mlflow_registry",
    "register_model_version": "knot_prefect.tasks.mlflow_registry",
    "promote": "knot_prefect.tasks.mlflow_registry",
    "promote_model": "knot_prefect.tasks.mlflow_registry",
    "rollback": "knot_prefect.tasks.mlflow_registry",
    "rollback_alias": "knot_prefect.tasks.mlflow_registry",
    "load_model": "knot_prefect.tasks.mlflow_predict",
    "load_model_by_alias": "knot_prefect.tasks.mlflow_predict",
    "predict": "knot_prefect.tasks.mlflow_predict",
    "predict_frame": "knot_prefect.tasks.mlflow_predict",
    "optimize_delta_table": "knot_prefect.tasks.delta_maintenance",
    "optimize_table": "knot_prefect.tasks.delta_maintenance",
    "vacuum_delta_table": "knot_prefect.tasks.delta_maintenance",
    "vacuum_table": "knot_prefect.tasks.delta_maintenance",
}

# Flow templates, importable as ``from knot_prefect.flows import NAME``.
FLOW_EXPORTS: dict[str, str] = {
    "feature_materialization_flow": "knot_prefect.flows.feature_materialization",
    "training_flow": "knot_prefect.flows.training",
    "batch_inference_flow": "knot_prefect.flows.batch_inference",
    "monitoring_flow": "knot_prefect.flows.monitoring",
    "data_quality_flow": "knot_prefect.flows.data_quality",
    "tuning_flow": "knot_prefect.flows.tuning",
}
