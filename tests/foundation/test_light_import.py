"""``import knot_prefect`` must not import heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("feast", "mlflow", "pandera", "dask", "distributed", "sklearn", "boto3",
         "botocore", "google.cloud", "snowflake.connector", "polars", "torch",
         "prefect_aws", "prefect_gcp", "prefect_kubernetes", "prefect_docker", "kubernetes")


def imported_modules(code: str) -> set[str]:
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout
    return set(json.loads(output.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_import_knot_prefect_is_light() -> None:
    modules = imported_modules("import knot_prefect")
    assert "knot_prefect" in modules
    assert heavy_in(modules) == []


def test_task_and_flow_packages_and_cli_are_light() -> None:
    modules = imported_modules(
        "import knot_prefect.tasks, knot_prefect.flows, knot_prefect.cli.main"
    )
    assert heavy_in(modules) == []


def test_embedded_default_block_is_light() -> None:
    modules = imported_modules("from knot_prefect import DuckDBWarehouse, KnotSettings")
    assert "knot_prefect.blocks.warehouses.duckdb" in modules
    assert heavy_in(modules) == []
