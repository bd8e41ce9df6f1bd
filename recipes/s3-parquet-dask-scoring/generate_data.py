"""Sample data for the recipe: customers with feature columns, written to the Delta lake.

Rows are generated and written in chunks of one million, so any size fits in memory;
each chunk is one Delta commit.
The lake's bucket is created first when it does not exist yet:

    python generate_data.py --rows 5000000
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from knot_prefect import DeltaLake

FEATURES = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d", "monthly_fee"]
LAKE = "scoring-lake"
CHUNK = 1_000_000


def customers(first_id: int, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` customers from ``first_id`` with their feature columns and churn label."""
    rng = np.random.default_rng(seed + first_id)
    sessions = rng.poisson(rng.gamma(2.0, 3.0, rows))
    frame = pd.DataFrame({
        "customer_id": np.arange(first_id, first_id + rows, dtype="int64"),
        "sessions_7d": sessions,
        "minutes_7d": sessions * rng.uniform(2.0, 12.0, rows),
        "tickets_14d": rng.poisson(0.4, rows),
        "failed_payments_14d": rng.poisson(0.1, rows),
        "monthly_fee": rng.choice([19.0, 49.0, 199.0], rows, p=[0.6, 0.3, 0.1]),
    })
    risk = 1.5 - 0.25 * frame["sessions_7d"] + 0.8 * frame["failed_payments_14d"]
    frame["churned"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-risk))).astype("int64")
    return frame


def ensure_bucket(lake: DeltaLake) -> bool:
    """Create the lake's S3 bucket when it does not exist; True when it was created."""
    from botocore.exceptions import ClientError

    if lake.s3_bucket is None:
        return False
    bucket = lake.s3_bucket.bucket_name
    client = lake.s3_bucket.credentials.get_s3_client()
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise  # e.g. 403: the bucket exists but belongs to someone else
    region = client.meta.region_name
    options = ({} if region in (None, "us-east-1")
               else {"CreateBucketConfiguration": {"LocationConstraint": region}})
    client.create_bucket(Bucket=bucket, **options)
    return True


def generate(rows: int = 100_000, seed: int = 7, lake: str = LAKE) -> dict[str, int]:
    """Write ``customers`` (``rows`` rows) and a labelled ``training_sample`` to the lake.

    Returns:
        Rows written per table.
    """
    target = DeltaLake.load(lake)
    ensure_bucket(target)
    for start in range(0, rows, CHUNK):
        mode = "replace" if start == 0 else "append"
        chunk = customers(start + 1, min(CHUNK, rows - start), seed)
        target.write(chunk.drop(columns="churned"), "customers", mode=mode)
    sample = customers(10_000_000_000, 20_000, seed)
    target.write(sample, "training_sample", mode="replace")
    return {"customers": rows, "training_sample": len(sample)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    print(generate(parser.parse_args().rows, parser.parse_args().seed))
