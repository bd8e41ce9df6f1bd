"""The recipe end to end: generate, train, score on Dask, score again (no duplicates).

Run against a bucket and a scheduler named by the environment, e.g. MinIO or moto:

    SCORING_BUCKET=... AWS_ENDPOINT_URL=... DASK_SCHEDULER_ADDRESS=local pytest tests
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def test_score_twice_keeps_one_row_per_customer() -> None:
    from generate_data import generate
    from pipeline import LAKE, score_customers, train_model

    from knot_prefect import DeltaLake
    from knot_prefect.documents import apply_file

    apply_file(PROJECT / "blocks.yaml")
    generate(rows=5_000)
    train_model()
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "local")
    for _ in range(2):
        summary = score_customers(dask_address=address, batch_rows=1_000)
        assert summary["rows_scored"] == 5_000
    counts = DeltaLake.load(LAKE).read(
        "select count(*) as n, count(distinct customer_id) as k from churn_scores")
    assert counts["n"].iloc[0] == counts["k"].iloc[0] == 5_000
