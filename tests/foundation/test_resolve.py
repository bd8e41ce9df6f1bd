"""``resolve_block``: the one way a block or a document name becomes a block."""

from __future__ import annotations

from pathlib import Path

import pytest

from knot_prefect import DuckDBWarehouse, MLflowTracking
from knot_prefect.blocks.resolve import BlockNotFoundError, resolve_block
from knot_prefect.blocks.warehouses.base import Warehouse


def test_an_abstract_base_finds_a_document_of_any_backend(tmp_path: Path) -> None:
    DuckDBWarehouse(path=str(tmp_path / "w.duckdb")).save("resolve-any", overwrite=True)
    warehouse = resolve_block("resolve-any", Warehouse)
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.path == str(tmp_path / "w.duckdb")


def test_none_gives_the_default_and_a_block_is_returned_as_it_is(knot_home: Path) -> None:
    embedded = resolve_block(None, MLflowTracking, default=MLflowTracking)
    assert embedded.experiment_name == MLflowTracking().experiment_name
    assert resolve_block(embedded, MLflowTracking) is embedded


def test_a_missing_document_names_the_parameter_and_lists_what_exists(tmp_path: Path) -> None:
    DuckDBWarehouse(path=str(tmp_path / "w.duckdb")).save("resolve-known", overwrite=True)
    with pytest.raises(BlockNotFoundError) as caught:
        resolve_block("resolve-unknwon", Warehouse, parameter="warehouse")
    message = str(caught.value)
    assert message.startswith("warehouse='resolve-unknwon': No Warehouse block document")
    assert "duckdb-warehouse/resolve-known" in message
    assert "Or pass warehouse= the name of your own document." in message


def test_what_is_not_a_block_class_or_a_name_is_refused() -> None:
    with pytest.raises(TypeError, match="Expected a block class"):
        resolve_block("x", dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Expected a Warehouse block, got a MLflowTracking"):
        resolve_block(MLflowTracking(), Warehouse)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="or a block document name, got int"):
        resolve_block(3, Warehouse)  # type: ignore[arg-type]
