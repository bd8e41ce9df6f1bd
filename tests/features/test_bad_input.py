"""Bad input gets an error that names what was wrong and where."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from knot_prefect.blocks.feast_store import FeastFeatureStore
from knot_prefect.errors import ConfigurationError
from knot_prefect.features.errors import (
    EntityFrameError,
    FeatureReferenceError,
    RepoLoadError,
)
from knot_prefect.tasks.features import (
    feast_apply,
    materialize,
    online_features,
    training_set,
)
from tests.features.conftest import NOW, T0, FeatureRepo

ENTITIES = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [T0 + timedelta(days=1)] * 2})


@pytest.fixture
def applied(local_repo: FeatureRepo) -> FeatureRepo:
    feast_apply.fn(local_repo.block)
    return local_repo


def test_unknown_feature_lists_the_closest_names(applied: FeatureRepo) -> None:
    with pytest.raises(FeatureReferenceError) as misspelt:
        training_set.fn(applied.block, ENTITIES, ["customer_activity:spnd"])
    assert "'customer_activity:spnd': no such feature" in str(misspelt.value)
    assert "did you mean 'customer_activity:spend'" in str(misspelt.value)

    with pytest.raises(FeatureReferenceError) as wrong_view:
        training_set.fn(applied.block, ENTITIES, ["customer_activty:spend"])
    assert "no feature view 'customer_activty' (did you mean 'customer_activity'" in str(
        wrong_view.value
    )

    with pytest.raises(FeatureReferenceError) as service:
        training_set.fn(applied.block, ENTITIES, "churn_modle")
    assert "No feature service 'churn_modle'" in str(service.value)
    assert "did you mean 'churn_model'" in str(service.value)

    materialize.fn(applied.block, end=NOW)
    with pytest.raises(FeatureReferenceError) as online:
        online_features.fn(applied.block, [{"customer_id": 1}], ["customer_plan:sets"])
    assert "did you mean 'customer_plan:seats'" in str(online.value)

    with pytest.raises(FeatureReferenceError) as view:
        materialize.fn(applied.block, views=["customer_plans"])
    assert "'customer_plans' (did you mean 'customer_plan'" in str(view.value)


def test_entity_frame_without_timestamp_or_keys_says_which(applied: FeatureRepo) -> None:
    no_timestamp = ENTITIES.rename(columns={"event_timestamp": "as_of"})
    with pytest.raises(EntityFrameError) as missing:
        training_set.fn(applied.block, no_timestamp, ["customer_activity:spend"])
    assert "no timestamp column 'event_timestamp'" in str(missing.value)
    assert "columns: customer_id, as_of" in str(missing.value)

    # Naming the column fixes it, and the result keeps the caller's column name.
    frame = training_set.fn(
        applied.block, no_timestamp, ["customer_activity:spend"], timestamp_column="as_of"
    )
    assert list(frame.columns) == ["customer_id", "as_of", "spend"]
    assert frame["spend"].tolist() == [10.0, 5.0]

    no_key = ENTITIES.rename(columns={"customer_id": "id"})
    with pytest.raises(EntityFrameError, match="lacks join key column\\(s\\) 'customer_id'"):
        training_set.fn(applied.block, no_key, ["customer_activity:spend"])


def test_sql_entities_need_a_warehouse(applied: FeatureRepo) -> None:
    with pytest.raises(ConfigurationError, match="no warehouse: pass warehouse="):
        training_set.fn(applied.block, "SELECT 1 AS customer_id", ["customer_activity:spend"])


def test_definitions_that_do_not_load_name_the_file_and_line(local_repo: FeatureRepo) -> None:
    definitions = local_repo.path / "definitions.py"
    lines = definitions.read_text().splitlines()
    lines.insert(8, "broken = undefined_name + 1")
    definitions.write_text("\n".join(lines))
    with pytest.raises(RepoLoadError) as error:
        feast_apply.fn(local_repo.block)
    assert error.value.path == str(definitions)
    assert error.value.line == 9
    assert f"{definitions}, line 9: NameError" in str(error.value)

    definitions.write_text("from feast import Entity\ncustomer = Entity(name=\n")
    with pytest.raises(RepoLoadError) as syntax:
        feast_apply.fn(local_repo.block)
    assert syntax.value.path == str(definitions)
    assert syntax.value.line == 2
    assert "SyntaxError" in str(syntax.value)


def test_feature_store_yaml_errors_name_the_line(tmp_path: Path) -> None:
    broken = "project: demo\nprovider: local\nonline_store:\n  type: sqlite\n   path: x.db\n"
    with pytest.raises(ValueError, match="feature_store_yaml does not parse at line 5"):
        FeastFeatureStore(feature_store_yaml=broken, cache_dir=str(tmp_path))

    secret = "hunter2-secret"
    invalid = (
        "project: demo\nprovider: local\nregistry: data/registry.db\n"
        "offline_store:\n  type: postgres\n  host: db\n  port: ${KNOT_OFFLINE_STORE_PASSWORD}\n"
        "  database: d\n  user: u\n  password: ${KNOT_OFFLINE_STORE_PASSWORD}\n"
    )
    block = FeastFeatureStore(
        feature_store_yaml=invalid, offline_store_password=secret, cache_dir=str(tmp_path)
    )
    with pytest.raises(RepoLoadError) as setting:
        block.get_store()
    assert setting.value.line == 7
    assert "line 7: invalid feature_store.yaml setting(s): offline_store.port:" in str(
        setting.value
    )
    assert secret not in str(setting.value)
    assert secret not in repr(setting.value.__cause__)


def test_block_needs_exactly_one_repo_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a repo: set repo_path"):
        FeastFeatureStore()
    with pytest.raises(ValueError, match="set only one of repo_path, s3_bucket, gcs_bucket"):
        from prefect_aws.s3 import S3Bucket

        FeastFeatureStore(repo_path=str(tmp_path), s3_bucket=S3Bucket(bucket_name="features"))
    with pytest.raises(ConfigurationError, match=r"No feature_store\.yaml in the Feast repo"):
        FeastFeatureStore(repo_path=str(tmp_path)).get_store()
