"""Staged writes on BigQuery, at the client's boundary: what knot asks BigQuery to do."""

from __future__ import annotations

import pandas as pd

from knot_prefect.blocks.warehouses.bigquery import BigQueryWarehouse
from tests.cloud_warehouses.bigquery_endpoint import BigQueryEndpoint
from tests.cloud_warehouses.test_bigquery import endpoint, warehouse  # noqa: F401  (fixtures)


def test_parts_load_into_stage_tables_and_one_merge_publishes_them_then_drops_them(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint,  # noqa: F811
) -> None:
    warehouse.write(pd.DataFrame({"id": [1], "score": [0.0]}), "scores")
    stage_id = warehouse.new_stage_id()
    parts = [warehouse.stage(pd.DataFrame({"id": ids, "score": [1.0] * len(ids)}),
                             "scores", stage_id, number)
             for number, ids in enumerate([[1, 2], [3]])]
    stages = [f"`knot-proj`.`ml`.`{part.stage_table}`" for part in parts]
    assert all(part.stage_table.startswith("_knot_stage_scores_") for part in parts)
    # Each part is a table of its own next to the target (a load job and a copy job).
    assert {"scores", *(part.stage_table for part in parts)} <= set(endpoint.tables)
    endpoint.requests.clear()

    assert warehouse.commit_staged("scores", parts, keys=["id"]) == 3
    queries = [job["query"]["query"] for job in endpoint.job_requests() if "query" in job]
    union = "(" + " UNION ALL ".join(f"SELECT `id`, `score` FROM {s}" for s in stages) + ")"
    nulls, repeats, merge, *drops = queries
    assert nulls == f"SELECT count(*) FROM {union} AS s WHERE `id` IS NULL"
    assert repeats.startswith(f"SELECT `id`, count(*) FROM {union} AS s GROUP BY `id`")
    assert merge == (
        f"MERGE INTO `knot-proj`.`ml`.`scores` AS t USING {union} AS s ON t.`id` = s.`id` "
        "WHEN MATCHED THEN UPDATE SET t.`score` = s.`score` "
        "WHEN NOT MATCHED THEN INSERT (`id`, `score`) VALUES (s.`id`, s.`score`)"
    )
    # The stages are dropped after the one job that changed the target.
    assert drops == [f"DROP TABLE IF EXISTS {stage}" for stage in stages]
