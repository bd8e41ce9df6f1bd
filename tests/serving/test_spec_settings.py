"""``knot serve --spec``: the service reads the model spec the flows read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from knot_prefect.serving.settings import ServeSettings

SPEC = {"source": "analytics.loans", "target": "defaulted", "key_columns": ["loan_ref"],
        "model_name": "loan-default", "output_table": "analytics.loan_scores",
        "tracking": "credit-mlflow"}


def write(tmp_path: Path, **fields: object) -> str:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **fields}))
    return str(path)


def test_settings_come_from_the_spec_and_options_override_them(tmp_path: Path) -> None:
    spec = write(tmp_path, features="loan_features", feature_store="credit-features",
                 timestamp_column="opened_at")
    settings = ServeSettings.from_spec(spec)
    assert (settings.model, settings.features, settings.feature_service, settings.tracking) == (
        "loan-default@champion", "credit-features", "loan_features", "credit-mlflow")
    other = ServeSettings.from_spec(spec, model="loan-default@challenger", tracking=None)
    assert other.model == "loan-default@challenger" and other.tracking == "credit-mlflow"


def test_a_spec_on_the_tables_own_columns_serves_from_its_warehouse_table(
    tmp_path: Path,
) -> None:
    spec = write(tmp_path, warehouse="credit-warehouse", timestamp_column="opened_at",
                 scoring_source="analytics.open_loans")
    settings = ServeSettings.from_spec(spec)
    assert settings.features is None
    # The rows batch inference scores, their keys and event time.
    assert (settings.source, settings.warehouse, settings.key_columns,
            settings.timestamp_column) == (
        "analytics.open_loans", "credit-warehouse", ["loan_ref"], "opened_at")
    # A store given explicitly still wins.
    assert ServeSettings.from_spec(spec, features="credit-features").features == (
        "credit-features")


def test_settings_need_exactly_one_feature_source() -> None:
    with pytest.raises(ValidationError, match="exactly one feature source"):
        ServeSettings(model="m@champion")
    with pytest.raises(ValidationError, match="exactly one feature source"):
        ServeSettings(model="m@champion", features="store", source="t", key_columns=["k"])
    with pytest.raises(ValidationError, match="needs key_columns"):
        ServeSettings(model="m@champion", source="analytics.loans")
