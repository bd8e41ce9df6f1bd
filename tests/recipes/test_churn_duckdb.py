"""churn-duckdb, as a user gets it: `knot recipe new` copies it, and the copy's own test
suite (the pipeline end to end on DuckDB, local Feast and MLflow's SQLite store) passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knot_prefect.cli.recipe import app

pytestmark = pytest.mark.heavy


def test_a_copied_project_passes_its_own_tests(tmp_path: Path) -> None:
    project = tmp_path / "my-churn"
    result = CliRunner().invoke(app, ["new", "churn-duckdb", str(project)])
    assert result.exit_code == 0, result.output

    # The copy runs on its own: its own pytest settings, a Prefect API of its own.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API_", "KNOT_HOME", "PYTEST_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900,
    )
    output = completed.stdout[-4000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, output
    assert "1 passed" in completed.stdout, output
    # The run wrote its state where the blocks pointed, not into the copied project.
    assert not (project / "data").exists() and not (project / ".knot").exists()
    assert not (project / "mlflow.db").exists(), "MLflow's default store was used"
