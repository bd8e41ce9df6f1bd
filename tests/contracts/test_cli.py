"""`knot contract infer` and `knot contract apply` against a real DuckDB warehouse."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from knot_prefect.blocks.contract import DataContract
from knot_prefect.cli.contract import app
from knot_prefect.contracts.tasks import validate
from tests.contracts.conftest import ORDERS_YAML, make_orders

runner = CliRunner()


def test_infer_then_apply_then_validate(warehouse: Any, tmp_path: Path) -> None:
    frame = make_orders(500)
    warehouse.write(frame, "sales.orders")
    document = f"wh-{uuid.uuid4().hex[:6]}"
    warehouse.save(document)

    inferred = runner.invoke(
        app, ["infer", "--warehouse", document, "--table", "sales.orders", "--sample", "200"]
    )
    assert inferred.exit_code == 0, inferred.output
    assert inferred.output.startswith("# Inferred by `knot contract infer` from sales.orders (200")
    assert "name: orders" in inferred.output
    assert "greater_than_or_equal_to" in inferred.output

    path = tmp_path / "orders.yaml"
    path.write_text(inferred.output)
    name = f"inferred-{uuid.uuid4().hex[:6]}"
    applied = runner.invoke(app, ["apply", name, str(path), "--sensitive", "email"])
    assert applied.exit_code == 0, applied.output
    contract = DataContract.load(name)
    assert f"DataContract '{name}' created: 4 columns, version {contract.version}" in applied.output
    assert contract.sensitive_columns == ["email"]
    assert set(contract.schema().columns) == {"order_id", "amount", "status", "email"}
    # The inferred contract accepts the data it was inferred from.
    assert len(validate.fn(frame.head(200), contract)) == 200


def test_apply_updates_and_keeps_sensitive_columns(tmp_path: Path) -> None:
    name = f"orders-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "orders.yaml"
    path.write_text(ORDERS_YAML)
    assert runner.invoke(app, ["apply", name, str(path), "--sensitive", "email"]).exit_code == 0
    path.write_text(
        ORDERS_YAML.replace("greater_than_or_equal_to: 0", "greater_than_or_equal_to: 1")
    )
    result = runner.invoke(app, ["apply", name, str(path)])
    assert result.exit_code == 0, result.output
    assert "updated" in result.output
    contract = DataContract.load(name)
    assert contract.sensitive_columns == ["email"]
    assert "greater_than_or_equal_to: 1" in str(contract.schema_yaml)


def test_apply_bad_yaml_names_the_document_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("columns:\n  a:\n    dtype: int64\n    nulable: true\n")
    name = f"bad-{uuid.uuid4().hex[:6]}"
    result = runner.invoke(app, ["apply", name, str(path)])
    assert result.exit_code == 1
    assert f"DataContract '{name}'" in result.output
    assert "line 4 (columns.a.nulable)" in result.output
    try:
        DataContract.load(name)
    except ValueError:
        pass
    else:
        raise AssertionError("an invalid contract must not be saved")


def test_infer_unknown_table_and_warehouse(warehouse: Any) -> None:
    document = f"wh-{uuid.uuid4().hex[:6]}"
    warehouse.save(document)
    missing_table = runner.invoke(app, ["infer", "--warehouse", document, "--table", "nope"])
    assert missing_table.exit_code == 1
    assert "Table 'nope' does not exist" in missing_table.output
    missing_wh = runner.invoke(app, ["infer", "--warehouse", "no-such-wh", "--table", "t"])
    assert missing_wh.exit_code == 1
    assert "no-such-wh" in missing_wh.output and document in missing_wh.output


def test_infer_keeps_the_bounds_of_a_time_zone_aware_column(warehouse: Any) -> None:
    """Zoned timestamps (TIMESTAMPTZ) get bounds that still check, not a YAML writer error."""
    import pandas as pd
    import pandera.pandas as pa

    frame = pd.DataFrame({
        "event_id": [1, 2, 3],
        "seen_at": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 11:00", "2024-03-05 12:00"])
        .tz_localize("Europe/Berlin"),
    })
    warehouse.write(frame, "events_zoned")
    document = f"wh-{uuid.uuid4().hex[:6]}"
    warehouse.save(document)

    inferred = runner.invoke(app, ["infer", "--warehouse", document, "--table", "events_zoned"])
    assert inferred.exit_code == 0, inferred.output
    schema = pa.DataFrameSchema.from_yaml(inferred.output)
    read_back = warehouse.read_table("events_zoned")
    schema.validate(read_back)
    too_early = read_back.copy()
    too_early.loc[0, "seen_at"] = read_back["seen_at"].min() - pd.Timedelta(days=1)
    try:
        schema.validate(too_early)
    except pa.errors.SchemaError as error:
        assert "seen_at" in str(error)
    else:
        raise AssertionError("a time before the inferred lower bound passed the contract")
