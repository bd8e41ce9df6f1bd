"""``knot init``: a project for a team's table whose README commands work unedited."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from knot_prefect.cli.main import app
from tests.templates.datasets import loans, wine
from tests.templates.serving import assert_serves_like_batch, served_process

pytestmark = pytest.mark.heavy


def readme_commands(readme: Path) -> list[list[str]]:
    block = re.search(r"```bash\n(.*?)```", readme.read_text(), re.S)
    assert block, "the README shows its commands in a bash block"
    return [line.split("#")[0].split() for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.timeout(1200)  # three flows and a knot serve process, on a loaded machine
def test_init_writes_a_project_whose_readme_commands_train_score_monitor_and_serve(
    team: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = wine()
    team["warehouse"].write(data.frame, "cellar", mode="replace")
    project = tmp_path / "cellar-project"
    # The command as a user runs it: its own process, against the same Prefect API.
    from prefect.settings import PREFECT_API_URL

    result = subprocess.run(
        [str(Path(sys.executable).parent / "knot"), "init", str(project), "--table", "cellar",
         "--target", data.target, "--key", data.key, "--timestamp", data.timestamp,
         "--warehouse", "team-warehouse"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = {p.name for p in project.iterdir()}
    assert {"model.yaml", "contract.yaml", "blocks.yaml", "prefect.yaml", "README.md",
            "run.py", "flows.py"} <= names
    spec = yaml.safe_load((project / "model.yaml").read_text())
    assert spec["task"] == "multiclass" and spec["key_columns"] == [data.key]
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    assert data.target in contract["columns"] and data.key in contract["columns"]
    deployments = yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]
    assert {d["entrypoint"] for d in deployments} == {
        "flows.py:training_flow", "flows.py:batch_inference_flow", "flows.py:monitoring_flow"}

    # The README's commands, run as written from the project folder.
    commands = readme_commands(project / "README.md")
    assert [c[:2] for c in commands] == [["python", "run.py"]] * 3 + [["knot", "serve"]]
    monkeypatch.chdir(project)
    outputs = []
    for command in commands[:3]:
        monkeypatch.setattr(sys, "argv", command[1:])
        runpy.run_path(str(project / command[1]), run_name="__main__")
        outputs.append(command[2])
    assert outputs == ["train", "score", "monitor"]
    scores = team["warehouse"].read("select * from cellar_predictions")
    assert len(scores) == len(data.frame)
    assert {"prediction", *[f"probability_{c}" for c in sorted(set(data.frame[data.target]))]
            } <= set(scores.columns)
    # knot serve, its own process: answers over HTTP equal to batch inference's.
    with served_process(commands[3], project,
                        {"PREFECT_API_URL": str(PREFECT_API_URL.value())}) as url:
        assert_serves_like_batch(url, data, scores)


def test_init_refuses_a_column_the_table_lacks(team: dict[str, Any], tmp_path: Path) -> None:
    team["warehouse"].write(wine().frame, "cellar_check", mode="replace")
    result = CliRunner().invoke(app, [
        "init", str(tmp_path / "p"), "--table", "cellar_check", "--target", "quality",
        "--key", "bottle", "--warehouse", "team-warehouse",
    ])
    assert result.exit_code != 0
    assert "--target 'quality'" in result.output and "cultivar" in result.output


def test_init_feast_writes_a_repo_that_feast_applies_and_training_reads(
    team: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = loans(rows=400)
    team["warehouse"].write(data.frame, "loan_book", mode="replace")
    project = tmp_path / "loan-project"
    result = CliRunner().invoke(app, [
        "init", str(project), "--table", "loan_book", "--target", data.target,
        "--key", data.key, "--timestamp", data.timestamp, "--warehouse", "team-warehouse",
        "--model-name", "team-loans-feast", "--feast",
    ])
    assert result.exit_code == 0, result.output
    repo = project / "feature_repo"
    assert (repo / "feature_store.yaml").is_file() and (repo / "data").is_dir()
    # A plain Feast repo: Feast's own CLI applies it.
    applied = subprocess.run([str(Path(sys.executable).parent / "feast"), "apply"], cwd=repo,
                             capture_output=True, text=True, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    spec = yaml.safe_load((project / "model.yaml").read_text())
    assert spec["features"] == "loan_book_features"
    assert spec["feature_store"] == "team-loans-feast-features"

    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "argv", ["run.py", "train"])
    runpy.run_path(str(project / "run.py"), run_name="__main__")
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

    tracking = MLflowTracking.load(spec["tracking"])
    champion = tracking.get_client().get_model_version_by_alias("team-loans-feast", "champion")
    assert champion.tags["knot.feature_views"].startswith("loan_book@")
    assert champion.tags["knot.task"] == "binary"


def test_init_feast_needs_the_timestamp(team: dict[str, Any], tmp_path: Path) -> None:
    team["warehouse"].write(loans(rows=50).frame, "loan_book_check", mode="replace")
    result = CliRunner().invoke(app, [
        "init", str(tmp_path / "p"), "--table", "loan_book_check", "--target", "defaulted",
        "--key", "loan_ref", "--warehouse", "team-warehouse", "--feast",
    ])
    assert result.exit_code != 0 and "--timestamp" in result.output
