"""The ``knot`` command at its edges: refuse before writing, change nothing, say why.

- ``knot blocks apply`` validates every document (contract schemas parsed and their
  checks resolved, Feast YAML parsed) before writing any.
- ``knot blocks export`` works for every block type, secret dicts included, and an
  unknown name lists every document.
- ``knot doctor`` opens DuckDB read-only, creates nothing, and reports a missing file.
- An unreachable Prefect API is named, with how to set it; lineage keys are typed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from knot_prefect import ComputeProfile, DuckDBWarehouse, FeastFeatureStore
from knot_prefect.cli.main import app
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.services import free_port

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _doctor_lines() -> tuple[int, dict[str, str]]:
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "600"})
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if "/" in line
             and len(line.split()) > 1}
    return result.exit_code, lines


def test_apply_validates_contracts_and_feast_yaml_before_writing_anything(
    tmp_path: Path,
) -> None:
    good, bad_yaml, bad_check, bad_feast = (
        _unique("good"), _unique("unparseable"), _unique("unknown-check"), _unique("feast")
    )
    path = tmp_path / "blocks.yaml"
    path.write_text(f"""
blocks:
  - type: duckdb-warehouse
    name: {good}
    data: {{path: {tmp_path}/w.duckdb}}
  - type: data-contract
    name: {bad_yaml}
    data:
      schema_yaml: "columns: [\\n"
  - type: data-contract
    name: {bad_check}
    data:
      schema_yaml: |
        columns:
          amount:
            dtype: float64
            checks:
              no_such_check: 1
  - type: knot-feast-feature-store
    name: {bad_feast}
    data:
      feature_store_yaml: "project: p\\nonline_store: [\\n"
""")
    result = runner.invoke(app, ["blocks", "apply", str(path)])
    assert result.exit_code == 1, result.output
    assert "Nothing was applied" in result.output
    assert f"data-contract/{bad_yaml}" in result.output and "cannot be parsed" in result.output
    assert f"data-contract/{bad_check}" in result.output and "no_such_check" in result.output
    assert f"knot-feast-feature-store/{bad_feast}" in result.output
    assert "feature_store_yaml does not parse" in result.output
    listed = runner.invoke(app, ["blocks", "ls"]).stdout
    for name in (good, bad_yaml, bad_check, bad_feast):
        assert name not in listed


def test_export_works_for_secret_dicts_and_round_trips(tmp_path: Path) -> None:
    name, secret = _unique("feast"), f"canary-{uuid.uuid4().hex}"
    FeastFeatureStore(
        feature_store_yaml="project: p\nonline_store:\n  password: ${REDIS_PASSWORD}\n",
        secrets={"REDIS_PASSWORD": secret},
        online_store_password=secret,
    ).save(name)
    exported = runner.invoke(app, ["blocks", "export", name])
    assert exported.exit_code == 0, exported.output
    assert secret not in exported.output
    prefix = name.upper().replace("-", "_")
    assert f"REDIS_PASSWORD: ${{{prefix}_SECRETS_REDIS_PASSWORD}}" in exported.stdout
    assert f"online_store_password: ${{{prefix}_ONLINE_STORE_PASSWORD}}" in exported.stdout

    file = tmp_path / "exported.yaml"
    file.write_text(exported.stdout)
    env = {f"{prefix}_SECRETS_REDIS_PASSWORD": secret, f"{prefix}_ONLINE_STORE_PASSWORD": secret}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        again = runner.invoke(app, ["blocks", "apply", str(file)])
    assert again.exit_code == 0, again.output
    assert f"unchanged knot-feast-feature-store/{name}" in again.stdout


def test_export_of_an_unknown_name_lists_every_document() -> None:
    from prefect.blocks.system import Secret

    other = _unique("not-knot")
    Secret(value="x").save(other)
    knot = _unique("wh")
    DuckDBWarehouse(path=":memory:").save(knot)
    result = runner.invoke(app, ["blocks", "export", "no-such-document"])
    assert result.exit_code == 1
    assert f"secret/{other}" in result.output and f"duckdb-warehouse/{knot}" in result.output
    assert "prefect block ls" in result.output
    exported = runner.invoke(app, ["blocks", "export", other])  # any block type exports
    assert exported.exit_code == 0, exported.output
    assert "type: secret" in exported.stdout and "value: ${" in exported.stdout


def test_doctor_changes_nothing_and_names_a_missing_file(tmp_path: Path) -> None:
    missing_dir = tmp_path / "nonexistent-dir" / "sub"
    existing = tmp_path / "existing.duckdb"
    DuckDBWarehouse(path=str(existing)).write(pd.DataFrame({"id": [1]}), "t")
    before = existing.read_bytes()
    listing_before = sorted(p.name for p in tmp_path.iterdir())
    missing, present = _unique("missing"), _unique("present")
    DuckDBWarehouse(path=str(missing_dir / "x.duckdb")).save(missing)
    DuckDBWarehouse(path=str(existing)).save(present)

    code, lines = _doctor_lines()
    assert code == 1
    assert "failed" in lines[f"duckdb-warehouse/{missing}"]
    assert str(missing_dir / "x.duckdb") in lines[f"duckdb-warehouse/{missing}"]
    assert "does not exist" in lines[f"duckdb-warehouse/{missing}"]
    assert not (tmp_path / "nonexistent-dir").exists()
    assert "ok" in lines[f"duckdb-warehouse/{present}"]
    assert "read-only" in lines[f"duckdb-warehouse/{present}"]
    assert existing.read_bytes() == before
    # The write above leaves its turn lock beside the file; the doctor adds nothing.
    assert sorted(p.name for p in tmp_path.iterdir()) == listing_before


def test_doctor_names_the_field_of_a_document_that_does_not_load() -> None:
    """A document saved around validation (an old version, the raw API) names its field."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentCreate

    ComputeProfile.register_type_and_schema()
    name = _unique("profile")
    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug(ComputeProfile.get_block_type_slug())
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
        assert schema is not None
        client.create_block_document(BlockDocumentCreate(
            name=name, data={"memory": "8GB"},
            block_type_id=block_type.id, block_schema_id=schema.id,
        ))
    _, lines = _doctor_lines()
    line = lines[f"compute-profile/{name}"]
    assert "failed" in line and "field 'memory'" in line and "'8Gi'" in line
    assert "RuntimeError" not in line


@pytest.mark.parametrize("command", [["doctor"], ["blocks", "apply", "FILE"], ["blocks", "ls"]])
def test_an_unreachable_prefect_api_is_named_with_how_to_set_it(
    command: list[str], tmp_path: Path
) -> None:
    file = tmp_path / "blocks.yaml"
    file.write_text("blocks:\n  - {type: duckdb-warehouse, name: w, data: {path: ':memory:'}}\n")
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_CLIENT_MAX_RETRIES": "0",
           "COLUMNS": "300"}
    result = subprocess.run(
        [sys.executable, "-m", "knot_prefect.cli.main",
         *[str(file) if part == "FILE" else part for part in command]],
        capture_output=True, text=True, env=env, timeout=180, cwd=ROOT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Cannot reach the Prefect API at {api}" in result.stderr
    assert "PREFECT_API_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_lineage_key_is_parsed_by_the_key_column_type(tmp_path: Path) -> None:
    name = _unique("lineage-wh")
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    row = {column: ["x"] for column in LINEAGE_COLUMNS}
    row["flow_run_id"] = [""]
    warehouse.write(pd.DataFrame({"customer_id": [42], "score": [0.5], **row}), "predictions")
    warehouse.save(name)
    result = runner.invoke(
        app, ["lineage", "predictions", "--key", "abc", "--warehouse", name, "--tracking", ""]
    )
    assert result.exit_code == 1
    assert "column 'customer_id'" in result.output and "pass a whole number" in result.output
    assert "invalid literal" not in result.output
    found = runner.invoke(
        app, ["lineage", "predictions", "--key", "42", "--warehouse", name, "--tracking", ""]
    )
    assert found.exit_code == 0, found.output
    assert '"customer_id": 42' in found.stdout
