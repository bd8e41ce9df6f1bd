"""knot-prefect: Prefect blocks, tasks and flow templates for ML teams.

Public names are resolved on first access so that ``import knot_prefect`` does not
import Feast, MLflow, Pandera, Dask or cloud SDKs. ``dir(knot_prefect)`` lists them,
which is how ``prefect block register -m knot_prefect`` finds every block.

Examples:
    >>> import knot_prefect
    >>> knot_prefect.__version__ >= "0.1.0"
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect._ast_guard import guard_ast_parse
from knot_prefect._embedded import apply_embedded_prefect_defaults
from knot_prefect._lazy import lazy_module_attributes
from knot_prefect._registry import EXPORTS, OPTIONAL_BLOCKS
from knot_prefect._version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from knot_prefect.blocks.compute_profile import ComputeProfile as ComputeProfile
    from knot_prefect.blocks.contract import DataContract as DataContract
    from knot_prefect.blocks.feast_store import FeastFeatureStore as FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking as MLflowTracking
    from knot_prefect.blocks.spark_engine import SparkEngine as SparkEngine
    from knot_prefect.blocks.warehouses.base import Warehouse as Warehouse
    from knot_prefect.blocks.warehouses.base import WriteResult as WriteResult
    from knot_prefect.blocks.warehouses.bigquery import BigQueryWarehouse as BigQueryWarehouse
    from knot_prefect.blocks.warehouses.delta_lake import DeltaLake as DeltaLake
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse as DuckDBWarehouse
    from knot_prefect.blocks.warehouses.iceberg_table import IcebergTable as IcebergTable
    from knot_prefect.blocks.warehouses.parquet import ParquetLake as ParquetLake
    from knot_prefect.blocks.warehouses.snowflake import SnowflakeWarehouse as SnowflakeWarehouse
    from knot_prefect.blocks.warehouses.sql import SqlWarehouse as SqlWarehouse
    from knot_prefect.settings import KnotSettings as KnotSettings

__all__ = ["__version__", *list(EXPORTS)]

guard_ast_parse()  # before any block class is built: _ast_guard says why
apply_embedded_prefect_defaults()

__getattr__, __dir__ = lazy_module_attributes(__name__, EXPORTS, globals(), OPTIONAL_BLOCKS)
