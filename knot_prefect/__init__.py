"""knot-prefect: Prefect blocks, tasks and flow templates for ML teams.

Public names are resolved on first access so that ``import knot_prefect`` does not
import Feast, MLflow, Pandera, Dask or cloud SDKs.

Examples:
    >>> import knot_prefect
    >>> knot_prefect.__version__ >= "0.1.0"
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from knot_prefect._registry import EXPORTS
from knot_prefect._version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from knot_prefect.blocks.warehouses.base import Warehouse, WriteResult
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.settings import KnotSettings

__all__ = ["__version__", *EXPORTS]


def __getattr__(name: str) -> Any:
    module_path = EXPORTS.get(name)
    if module_path is None:
        raise AttributeError(f"module 'knot_prefect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_path), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # `prefect block register -m knot_prefect` walks dir(); listing the lazy names
    # here makes it find (and import) every block.
    return sorted(set(globals()) | set(__all__))
