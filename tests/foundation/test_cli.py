"""The ``knot`` command line, against the test Prefect API and a real Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from typer.testing import CliRunner

from knot_prefect import DuckDBWarehouse, __version__
from knot_prefect.blocks.registry import load_block_classes
from knot_prefect.cli.main import app

BIN = Path(sys.executable).parent
runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"knot-prefect {__version__}"


def test_blocks_register_registers_every_type() -> None:
    result = runner.invoke(app, ["blocks", "register"])
    assert result.exit_code == 0, result.output
    for cls in load_block_classes().values():
        assert f"registered {cls.get_block_type_slug()}" in result.stdout


def test_blocks_apply_export_and_doctor(tmp_path: Path) -> None:
    good, broken = f"wh-{uuid.uuid4().hex[:6]}", f"broken-{uuid.uuid4().hex[:6]}"
    DuckDBWarehouse(path=f"{tmp_path}/warehouse.duckdb").table_exists("t")  # creates the file
    path = tmp_path / "blocks.yaml"
    path.write_text(f"""
blocks:
  - type: duckdb-warehouse
    name: {good}
    data:
      path: {tmp_path}/warehouse.duckdb
  - type: duckdb-warehouse
    name: {broken}
    data:
      path: {tmp_path}
""")
    first = runner.invoke(app, ["blocks", "apply", str(path)])
    assert first.exit_code == 0, first.output
    assert f"created   duckdb-warehouse/{good}" in first.stdout
    second = runner.invoke(app, ["blocks", "apply", str(path)])
    assert f"unchanged duckdb-warehouse/{good}" in second.stdout

    exported = runner.invoke(app, ["blocks", "export", good])
    assert exported.exit_code == 0, exported.output
    assert f"name: {good}" in exported.stdout and "warehouse.duckdb" in exported.stdout

    missing = runner.invoke(app, ["blocks", "export", "no-such-document"])
    assert missing.exit_code == 1
    assert "named documents" in missing.output and good in missing.output

    doctor = runner.invoke(app, ["doctor"], terminal_width=200)
    assert doctor.exit_code == 1  # the broken document fails
    lines = {line.split()[1]: line for line in doctor.stdout.splitlines()
             if "duckdb-warehouse/" in line}
    assert "ok" in lines[f"duckdb-warehouse/{good}"]
    assert "failed" in lines[f"duckdb-warehouse/{broken}"]
    assert DuckDBWarehouse.load(good).path == f"{tmp_path}/warehouse.duckdb"


def test_apply_of_a_bad_file_fails_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("blocks:\n  - {type: duckdb-warehouse, name: x, data: {path: [1, 2]}}\n")
    result = runner.invoke(app, ["blocks", "apply", str(path)])
    assert result.exit_code == 1
    assert "bad.yaml#1 (duckdb-warehouse/x)" in result.output and "path" in result.output


def test_prefect_block_register_module_against_a_real_server(prefect_server: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    result = subprocess.run(
        [str(BIN / "prefect"), "block", "register", "-m", "knot_prefect"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = subprocess.run(
        [str(BIN / "prefect"), "block", "type", "ls"],
        capture_output=True, text=True, env={**env, "COLUMNS": "300"}, timeout=120,
    )
    for cls in load_block_classes().values():
        assert cls.get_block_type_slug() in listed.stdout
