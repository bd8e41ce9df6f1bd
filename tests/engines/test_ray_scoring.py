"""``batch_inference_flow`` on Ray (prefect-ray's ``RayTaskRunner``, on a local Ray the flow
starts or on a running head through the Ray client): partitions as Ray tasks staging their
parts, one commit, the same predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from knot_prefect.errors import ConfigurationError
from knot_prefect.flows import batch_inference_flow
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.conftest import _service
from tests.engines.conftest import ROWS, TRACKING
from tests.engines.ray_cluster import RayHead, start_ray_head

pytestmark = pytest.mark.heavy

VARYING = ["flow_run_id", "scored_at", "features_as_of"]


def options(model: str, table: str) -> dict[str, Any]:
    return {"warehouse": "engines-plain-lake", "tracking": TRACKING, "model_name": model,
            "entity_sql": "rows_to_score", "key_columns": ["customer_id"],
            "output_table": table, "feature_source": "warehouse", "batch_rows": 64}


def score(model: str, table: str, **more: Any) -> Any:
    return batch_inference_flow(**options(model, table), **more)


def published(lake: Any, table: str) -> pd.DataFrame:
    return lake.read(f"select * from {table} order by customer_id")


def assert_same_predictions(result: pd.DataFrame, reference: pd.DataFrame) -> None:
    columns = ["customer_id", "prediction", "probability"]
    pd.testing.assert_frame_equal(result[columns], reference[columns],
                                  check_exact=False, rtol=0, atol=1e-9)
    lineage = [c for c in LINEAGE_COLUMNS if c not in VARYING]
    pd.testing.assert_frame_equal(result[lineage], reference[lineage])


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """A running Ray head (2 CPUs, token authentication) on loopback."""
    pytest.importorskip("prefect_ray")
    yield from _service(start_ray_head)


def test_ray_tasks_score_to_the_flow_process_predictions_in_one_commit(
    scoring_models: dict[str, str], plain_lake: Any,
) -> None:
    pytest.importorskip("prefect_ray")
    model = scoring_models["classifier"]
    expected = score(model, "in_process")
    summary = score(model, "on_ray", runner="ray", dask_workers=2, partition_rows=100)
    assert summary["rows_published"] == expected["rows_published"] == ROWS
    assert_same_predictions(published(plain_lake, "on_ray"),
                            published(plain_lake, "in_process"))
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


RAY_CLIENT_SERVER_DIED = "Starting Ray client server failed"

# A flow process of its own, as on a worker: Ray reads RAY_AUTH_MODE once per process.
CLIENT_FLOW = """
import json, sys
from knot_prefect.flows import batch_inference_flow
summary = batch_inference_flow(**json.loads(sys.argv[1]))
print(json.dumps({"rows_published": summary["rows_published"]}))
"""


def test_a_running_ray_head_scores_through_the_ray_client_to_the_same_predictions(
    scoring_models: dict[str, str], plain_lake: Any, ray_head: RayHead,
    record_property: Callable[[str, object], None],
) -> None:
    from prefect.settings import PREFECT_API_URL

    model = scoring_models["classifier"]
    score(model, "client_reference")
    flow_options = {**options(model, "on_ray_client"), "runner": ray_head.address,
                    "partition_rows": 100}
    env = {**os.environ, **ray_head.client_env, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    for attempt in (1, 2):
        done = subprocess.run([sys.executable, "-c", CLIENT_FLOW, json.dumps(flow_options)],
                              env=env, capture_output=True, text=True, timeout=600, check=False)
        if attempt == 1 and RAY_CLIENT_SERVER_DIED in done.stderr:
            # On a saturated machine the head's process for this client now and then
            # ends while it starts (Ray's own infrastructure, before any knot code runs
            # there): the run is tried once more, and the test says so.
            record_property("ray_client_server_died_first", ray_head.client_server_errors())
            continue
        break
    assert done.returncode == 0, done.stderr[-4000:] + ray_head.client_server_errors()
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"rows_published": ROWS}
    assert_same_predictions(published(plain_lake, "on_ray_client"),
                            published(plain_lake, "client_reference"))
    files = sorted((Path(plain_lake.location) / "on_ray_client" / "data").glob("*.parquet"))
    assert len(files) == 3 and all("-stage-" in f.name for f in files)
