"""``knot serve --spec``: the service reads the model spec the flows read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knot_prefect.errors import ConfigurationError
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


def test_a_spec_on_the_tables_own_columns_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no features.*online store"):
        ServeSettings.from_spec(write(tmp_path))
