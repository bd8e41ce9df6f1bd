"""``batch_inference_flow`` on Ray (prefect-ray's ``RayTaskRunner`` on a local Ray the flow
starts): partitions as Ray tasks staging their parts, one commit, the same predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from knot_prefect.errors import ConfigurationError
from knot_prefect.flows import batch_inference_flow
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.engines.conftest import ROWS, TRACKING

pytestmark = pytest.mark.heavy

VARYING = ["flow_run_id", "scored_at", "features_as_of"]


def score(model: str, table: str, **options: Any) -> Any:
    return batch_inference_flow(
        warehouse="engines-plain-lake", tracking=TRACKING, model_name=model,
        entity_sql="rows_to_score", key_columns=["customer_id"], output_table=table,
        feature_source="warehouse", batch_rows=64, **options)


def test_ray_tasks_score_to_the_flow_process_predictions_in_one_commit(
    scoring_models: dict[str, str], plain_lake: Any,
) -> None:
    pytest.importorskip("prefect_ray")
    model = scoring_models["classifier"]
    expected = score(model, "in_process")
    summary = score(model, "on_ray", runner="ray", dask_workers=2, partition_rows=100)
    assert summary["rows_published"] == expected["rows_published"] == ROWS

    def published(table: str) -> pd.DataFrame:
        return plain_lake.read(f"select * from {table} order by customer_id")

    reference, result = published("in_process"), published("on_ray")
    columns = ["customer_id", "prediction", "probability"]
    pd.testing.assert_frame_equal(result[columns], reference[columns],
                                  check_exact=False, rtol=0, atol=1e-9)
    lineage = [c for c in LINEAGE_COLUMNS if c not in VARYING]
    pd.testing.assert_frame_equal(result[lineage], reference[lineage])
    # Three key ranges, each staged by its Ray task, published by one commit.
    files = sorted((Path(plain_lake.location) / "on_ray" / "data").glob("*.parquet"))
    assert len(files) == 3 and all("-stage-" in f.name for f in files)


def test_a_scoring_runner_is_ray_and_the_only_engine(
    scoring_models: dict[str, str], plain_lake: Any,
) -> None:
    model = scoring_models["regressor"]
    for options, message in (({"runner": "dask"}, "is not Ray"),
                             ({"runner": "ray", "dask_address": "local"}, "not several")):
        with pytest.raises(ConfigurationError, match=message):
            score(model, "refused", **options)
    assert not plain_lake.table_exists("refused")
