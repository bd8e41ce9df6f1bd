"""Every extra stands alone: a fresh venv with knot-prefect from the built wheel and only
that extra installs, imports, registers knot's block types with a real Prefect server,
and saves, loads and uses the blocks the extra promises (tests/packaging/extra_probes.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.conftest import Distribution, fresh_venv, run_in

pytestmark = pytest.mark.heavy

PROBES = Path(__file__).with_name("extra_probes.py")
# Block types registered by every extra (their heavy imports wait until used), and the
# ones only an extra's integration makes importable.
COMMON_BLOCKS = {"DuckDB Warehouse", "SQL Warehouse", "Parquet Lake", "MLflow Tracking",
                 "Feast Feature Store", "Data Contract", "Compute Profile", "knot Model Spec",
                 "Spark Engine"}
EXTRA_BLOCKS = {"gcp": {"Knot BigQuery Warehouse"}, "snowflake": {"Snowflake Warehouse"},
                "delta": {"Delta Lake"}, "iceberg": {"Iceberg Table"}}
# Test tools installed beside an extra: emulators of the service its blocks talk to.
TOOLS = {"snowflake": ("fakesnow",)}
EXTRAS = ["feast", "mlflow", "pandera", "dask", "aws", "gcp", "snowflake", "postgres",
          "spark", "ray", "delta", "iceberg"]


def services_for(extra: str, request: pytest.FixtureRequest, folder: Path) -> dict[str, Any]:
    config: dict[str, Any] = {"folder": str(folder)}
    if extra == "aws":
        config["s3_endpoint"] = request.getfixturevalue("moto_s3")
    if extra == "gcp":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from tests.cloud_warehouses.conftest import service_account_info

        request.getfixturevalue("gcs_emulator")
        bucket = f"probe-{uuid.uuid4().hex[:8]}"
        storage.Client(credentials=AnonymousCredentials(), project="knot-tests").create_bucket(
            bucket)
        config.update(gcs_bucket=bucket, service_account=service_account_info("knot-tests"))
    if extra == "postgres":
        config["postgres_url"] = request.getfixturevalue("postgres_database")["url"]
    return config


@pytest.mark.parametrize("extra", EXTRAS)
def test_extra_installs_registers_and_works_alone(
    extra: str, distribution: Distribution, prefect_server: str, tmp_path: Path,
    request: pytest.FixtureRequest, record_property: Any,
) -> None:
    venv = fresh_venv(tmp_path / "venv", f"knot-prefect[{extra}] @ {distribution.wheel.as_uri()}",
                      *TOOLS.get(extra, ()))
    size = venv.size_mb()
    record_property("install_seconds", round(venv.install_seconds, 1))
    record_property("venv_mb", round(size))
    print(f"\n[{extra}] install {venv.install_seconds:.1f} s, venv {size:.0f} MB")

    env = {"PREFECT_API_URL": prefect_server}
    imported = run_in(venv, [venv.python, "-c", "import knot_prefect, knot_prefect.collection"],
                      tmp_path, env)
    assert imported.returncode == 0, imported.stderr[-3000:]

    registered = run_in(venv, [venv.bin("prefect"), "block", "register", "-m", "knot_prefect"],
                        tmp_path, env)
    output = registered.stdout + registered.stderr
    assert registered.returncode == 0, output[-3000:]
    expected = COMMON_BLOCKS | EXTRA_BLOCKS.get(extra, set())
    assert f"Successfully registered {len(expected)} blocks" in output, output[-3000:]
    for block in expected:
        assert block in output, f"[{extra}] {block} was not registered:\n{output[-3000:]}"

    config = services_for(extra, request, tmp_path)
    probe = run_in(venv, [venv.python, str(PROBES), extra, json.dumps(config)], tmp_path, env)
    assert probe.returncode == 0 and f"ok {extra}" in probe.stdout, (
        probe.stdout[-3000:] + probe.stderr[-5000:])
