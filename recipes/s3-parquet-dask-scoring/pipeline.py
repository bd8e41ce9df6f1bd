"""Score every customer in a Delta lake on S3 on a Dask cluster, streaming.

``train_model`` fits the churn classifier on the lake's labelled sample and makes it
``@champion``. ``score_customers`` runs knot's ``batch_inference_flow`` with the
feature columns read from the lake: rows are read in batches, scored in parallel on
the Dask workers and upserted back to the lake (one Delta MERGE), with lineage on every
row, including the Delta version of ``customers`` that was read.

    python pipeline.py train
    python pipeline.py score --dask-address tcp://scheduler:8786   # or "local"
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow
from prefect.states import State

from knot_prefect import DeltaLake, MLflowTracking, tracked_run
from knot_prefect.demo.model import train_churn_classifier
from knot_prefect.flows import batch_inference_flow
from knot_prefect.tasks import register_model

LAKE = "scoring-lake"
TRACKING = "scoring-mlflow"
FEATURES = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d", "monthly_fee"]
SCORING_SQL = "select customer_id, " + ", ".join(FEATURES) + " from customers"


@flow(name="train-scoring-model", log_prints=True)
def train_model(model_name: str = "churn-scorer") -> int:
    """Train on ``training_sample``, register a version and give it ``@champion``.

    Returns:
        The registered version.
    """
    tracking = MLflowTracking.load(TRACKING)
    sample = DeltaLake.load(LAKE).read(
        "select " + ", ".join(FEATURES) + ", churned from training_sample")
    with tracked_run(tracking, run_name="train-scoring-model"):
        uri = train_churn_classifier(sample, {"C": 1.0})
    version = register_model(uri, model_name, tracking).version
    tracking.get_client().set_registered_model_alias(model_name, "champion", str(version))
    print(f"{model_name} version {version} is @champion")
    return version


@flow(name="score-customers", log_prints=True)
def score_customers(
    dask_address: str = "local",
    model_name: str = "churn-scorer",
    batch_rows: int = 250_000,
    output_table: str = "churn_scores",
) -> dict[str, Any]:
    """Score every customer on Dask, streaming from and to the Delta lake on S3.

    Args:
        dask_address: ``tcp://HOST:PORT`` of a Dask scheduler, or ``local`` for a
            temporary cluster of two workers.
        model_name: Registered model whose ``@champion`` scores.
        batch_rows: Rows per streamed batch (one Dask task each).
        output_table: Lake table receiving the scores (upserted by ``customer_id``).

    Returns:
        The batch inference summary.
    """
    result = batch_inference_flow(
        warehouse=LAKE, tracking=TRACKING, contract=None,
        entity_sql=SCORING_SQL, feature_source="warehouse",
        model_name=model_name, output_table=output_table, key_columns=["customer_id"],
        batch_rows=batch_rows, stream=True, dask_address=dask_address,
        prediction_bounds=[0.0, 1.0],
    )
    summary: dict[str, Any] = result.result() if isinstance(result, State) else result
    print(f"Scored {summary['rows_scored']} customers into {output_table}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["train", "score"])
    parser.add_argument("--dask-address", default="local")
    parser.add_argument("--batch-rows", type=int, default=250_000)
    args = parser.parse_args()
    if args.step == "train":
        train_model()
    else:
        score_customers(dask_address=args.dask_address, batch_rows=args.batch_rows)
