"""``batch_inference_flow`` next to the data: a ParquetLake read and written by the
process that scores each key range (Dask workers, or the flow process), published in
one commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
from knot_prefect.blocks.warehouses.lake.manifest import read_manifest
from knot_prefect.blocks.warehouses.parquet import ParquetLake
from knot_prefect.flows import batch_inference_flow
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.scale_out.conftest import CUSTOMERS, MODEL
from tests.scale_out.test_dask_scoring import score_task_runs, value

pytestmark = pytest.mark.heavy

LAKE = "scoring-lake"
ROWS_SQL = "select * from rows_to_score"
PREDICTION = "probability"


@pytest.fixture(scope="module")
def lake(scoring_world: dict[str, Any]) -> ParquetLake:
    """A lake holding every customer with the model's inputs (as warehouse columns)."""
    block = ParquetLake(path=str(Path(scoring_world["home"]) / "scoring-lake"),
                        rows_per_file=120)
    block.save(LAKE, overwrite=True)
    rows = DuckDBWarehouse.load("local-warehouse").read(
        "select c.customer_id, c.monthly_fee, a.sessions_7d, a.minutes_7d, a.tickets_14d, "
        "a.failed_payments_14d from customers c join customer_activity a using (customer_id) "
        "where a.event_timestamp = (select max(event_timestamp) from customer_activity)"
    )
    assert len(rows) == CUSTOMERS
    block.write(rows, "rows_to_score", mode="replace")
    return block


def run(table: str, **options: Any) -> dict[str, Any]:
    return value(batch_inference_flow(
        warehouse=LAKE, contract=None, feature_source="warehouse", entity_sql=ROWS_SQL,
        model_name=MODEL, output_table=table, **options))


def published(lake: ParquetLake, table: str) -> pd.DataFrame:
    return lake.read(f"select * from {table} order by customer_id").reset_index(drop=True)


def data_files(lake: ParquetLake, table: str) -> list[str]:
    return sorted(p.name for p in (Path(lake.location) / table / "data").glob("*.parquet"))


@pytest.fixture(scope="module")
def in_process(lake: ParquetLake) -> pd.DataFrame:
    """Scored in the flow process (ranges one after another): the reference."""
    summary = run("scores_in_process", partition_rows=100)
    assert summary["rows_read"] == summary["rows_published"] == CUSTOMERS
    return published(lake, "scores_in_process")


def test_workers_read_score_and_stage_their_ranges_then_one_commit_publishes(
    lake: ParquetLake, in_process: pd.DataFrame, dask_scheduler: str
) -> None:
    summary = run("scores_on_workers", dask_address=dask_scheduler, partition_rows=100)
    assert summary["rows_published"] == CUSTOMERS
    result = published(lake, "scores_on_workers")
    assert result["customer_id"].tolist() == in_process["customer_id"].tolist()
    pd.testing.assert_series_equal(result[PREDICTION], in_process[PREDICTION])
    assert result[list(LINEAGE_COLUMNS)].drop(columns="contract_version").notna().all().all()
    assert result["model_name"].unique().tolist() == [MODEL]
    # Three ranges of the key (100 rows each), one score-partition task run per range.
    runs = score_task_runs(result["flow_run_id"].iloc[0])
    assert len(runs) == 3 and {r.state_name for r in runs} == {"Completed"}
    # The files the workers staged are the table's files: nothing was rewritten.
    manifest = read_manifest(lake._storage(), lake_table("scores_on_workers"))
    assert manifest is not None
    assert all("-stage-" in entry["path"] for entry in manifest["files"])
    assert sum(entry["rows"] for entry in manifest["files"]) == CUSTOMERS


def lake_table(name: str) -> Any:
    from knot_prefect.blocks.warehouses.identifiers import TableName

    return TableName.parse(name)


def test_rerun_publishes_each_key_once_and_a_failed_run_changes_nothing(
    lake: ParquetLake, in_process: pd.DataFrame, dask_scheduler: str
) -> None:
    first = run("scores_rerun", dask_address=dask_scheduler, partition_rows=150)
    again = run("scores_rerun", dask_address=dask_scheduler, partition_rows=150)
    result = published(lake, "scores_rerun")
    assert len(result) == CUSTOMERS and result["customer_id"].is_unique
    pd.testing.assert_series_equal(result[PREDICTION], in_process[PREDICTION])
    assert result["flow_run_id"].nunique() == 1
    assert first["rows_published"] == again["rows_published"] == CUSTOMERS

    # Bounds no churn probability meets: every range is scored and staged, the check
    # fails, and the table keeps exactly the rows and files it had.
    before, files_before = published(lake, "scores_rerun"), data_files(lake, "scores_rerun")
    with pytest.raises(Exception, match=r"scores_rerun-(prediction|probability)-(min|max)"):
        run("scores_rerun", dask_address=dask_scheduler, partition_rows=150,
            prediction_bounds=[0.4, 0.6])
    pd.testing.assert_frame_equal(published(lake, "scores_rerun"), before)
    assert data_files(lake, "scores_rerun") == files_before  # staged files discarded


def test_streamed_batches_are_staged_and_committed_once(
    lake: ParquetLake, in_process: pd.DataFrame, scoring_world: dict[str, Any]
) -> None:
    # Features from Feast: the flow process reads and scores batch by batch, stages
    # every scored batch in the lake and commits them together at the end.
    common = {"warehouse": LAKE, "contract": None, "entity_sql": ROWS_SQL,
              "feature_source": "historical", "features": "churn_model",
              "as_of": scoring_world["as_of"],
              "model_name": MODEL, "stream": True, "batch_rows": 64}
    summary = value(batch_inference_flow(output_table="scores_streamed", **common))
    assert summary["rows_published"] == CUSTOMERS
    result = published(lake, "scores_streamed")
    assert result["customer_id"].is_unique and len(result) == CUSTOMERS
    assert result[PREDICTION].between(0, 1).all()
    # One staged part: files of rows_per_file (120) rows, whatever the batches.
    assert len(data_files(lake, "scores_streamed")) == -(-CUSTOMERS // 120)

    # A later batch breaking a check stops the run; no batch of it is published.
    before = published(lake, "scores_streamed")
    with pytest.raises(Exception, match=r"scores_streamed-(prediction|probability)-(min|max)"):
        batch_inference_flow(output_table="scores_streamed", prediction_bounds=[0.0, 0.5],
                             **common)
    pd.testing.assert_frame_equal(published(lake, "scores_streamed"), before)

    # Rows to score holding a key twice (in different batches) are refused at commit.
    lake.write(lake.read(f"{ROWS_SQL} where customer_id <= 3"), "repeated_rows")
    with pytest.raises(Exception, match=r"repeat.*customer_id"):
        batch_inference_flow(
            output_table="scores_streamed", **{**common, "entity_sql":
            f"{ROWS_SQL} union all select * from repeated_rows"})
    pd.testing.assert_frame_equal(published(lake, "scores_streamed"), before)


def test_plan_splits_the_key_into_equal_ranges_that_cover_every_row(
    lake: ParquetLake,
) -> None:
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.flows.scoring import plan_partitions

    total, plan = plan_partitions(lake, ROWS_SQL, None, "customer_id", workers=2,
                                  partition_rows=50)
    assert total == CUSTOMERS and len(plan) == 6
    sizes = []
    for partition in plan:
        sql, values = partition.sql(ROWS_SQL, "customer_id")
        sizes.append(len(lake.read(sql, values)))
    assert sum(sizes) == CUSTOMERS
    assert max(sizes) - min(sizes) <= 20  # quantiles of a sample: about equal
    # The default: one range per worker for a small input.
    assert len(plan_partitions(lake, ROWS_SQL, None, "customer_id", workers=2)[1]) == 2
    with pytest.raises(ConfigurationError, match="knot_partition_lower"):
        plan_partitions(lake, ROWS_SQL, {"knot_partition_lower": 1}, "customer_id", 2)
