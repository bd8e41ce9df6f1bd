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
from tests.templates.datasets import wine

pytestmark = pytest.mark.heavy


def readme_commands(readme: Path) -> list[list[str]]:
    block = re.search(r"```bash\n(.*?)```", readme.read_text(), re.S)
    assert block, "the README shows its commands in a bash block"
    return [line.split("#")[0].split() for line in block.group(1).splitlines() if line.strip()]


def test_init_writes_a_project_whose_readme_commands_train_score_and_monitor(
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
    assert [c[:2] for c in commands] == [["python", "run.py"]] * 3
    monkeypatch.chdir(project)
    outputs = []
    for command in commands:
        monkeypatch.setattr(sys, "argv", command[1:])
        runpy.run_path(str(project / command[1]), run_name="__main__")
        outputs.append(command[2])
    assert outputs == ["train", "score", "monitor"]
    scores = team["warehouse"].read("select * from cellar_predictions")
    assert len(scores) == len(data.frame)
    assert {"prediction", *[f"probability_{c}" for c in sorted(set(data.frame[data.target]))]
            } <= set(scores.columns)


def test_init_refuses_a_column_the_table_lacks(team: dict[str, Any], tmp_path: Path) -> None:
    team["warehouse"].write(wine().frame, "cellar_check", mode="replace")
    result = CliRunner().invoke(app, [
        "init", str(tmp_path / "p"), "--table", "cellar_check", "--target", "quality",
        "--key", "bottle", "--warehouse", "team-warehouse",
    ])
    assert result.exit_code != 0
    assert "--target 'quality'" in result.output and "cultivar" in result.output
