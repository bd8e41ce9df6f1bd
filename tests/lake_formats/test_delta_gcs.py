"""DeltaLake on GCS, on the GCS emulator the suite starts: what the emulator can serve.

delta-rs talks to GCS through its XML API, and gcp-storage-emulator serves the JSON
API plus single-object XML GET/PUT only: it answers ``GET /BUCKET?list-type=2`` (the
listing of ``_delta_log/`` every Delta read and commit starts with) with 501, so no
Delta table can be opened or committed there (docs/blocks/delta-lake.md, "Tested
where"). Tested here: the block sends delta-rs to the emulator, as Google's own
clients are, and stages parts into the bucket through gcsfs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
import pytest


@pytest.fixture
def gcs_delta(gcs_bucket_name: str) -> Any:
    from prefect_gcp import GcpCredentials, GcsBucket

    from knot_prefect import DeltaLake
    from tests.cloud_warehouses.conftest import service_account_info

    credentials = GcpCredentials(service_account_info=service_account_info("knot-tests"),
                                 project="knot-tests")
    return DeltaLake(gcs_bucket=GcsBucket(bucket=gcs_bucket_name, gcp_credentials=credentials),
                     path=f"delta-{uuid.uuid4().hex[:10]}")


def test_delta_rs_is_sent_to_the_emulator_without_the_service_account(
    gcs_delta: Any, gcs_emulator: str
) -> None:
    options = gcs_delta._location().options
    key = json.loads(options["google_service_account_key"])
    assert key["gcs_base_url"] == gcs_emulator and key["disable_oauth"] is True
    assert not key["private_key"], "the service account is not sent to an emulator"
    assert options["allow_http"] == "true"
    assert gcs_delta.table_uri("ml.scores") == f"gs://{gcs_delta.gcs_bucket.bucket}/" \
        f"{gcs_delta.path}/ml/scores"


def test_staged_parts_land_in_the_bucket_and_discard_removes_them(
    gcs_delta: Any, gcs_bucket_name: str
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="knot-tests")  # type: ignore[no-untyped-call]

    def objects() -> list[str]:
        return [blob.name for blob in client.list_blobs(gcs_bucket_name,
                                                        prefix=f"{gcs_delta.path}/")]

    stage_id = gcs_delta.new_stage_id()
    parts = [gcs_delta.stage(pd.DataFrame({"id": [1, 2], "score": [0.1, 0.2]}), "scores",
                             stage_id, 0, unique_keys=["id"]),
             gcs_delta.stage(pd.DataFrame({"id": [3], "score": [0.3]}), "scores", stage_id, 1)]
    assert sum(entry["rows"] for part in parts for entry in part.files) == 3
    staged = objects()
    assert staged and all(name.endswith(".parquet") for name in staged)
    assert not any("_delta_log" in name for name in staged)  # not a table: nothing committed
    gcs_delta.discard_staged(parts)
    assert objects() == []
