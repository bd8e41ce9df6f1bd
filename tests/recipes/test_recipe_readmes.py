"""A copied recipe's README stands on its own: commands name the recipe's own block
documents, install knot without a package index serving it, and point nowhere else
in knot's repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.recipes.conftest import RECIPES

FOLDERS = sorted(p for p in RECIPES.iterdir() if (p / "README.md").is_file())
IDS = [p.name for p in FOLDERS]
# A path into knot's own repository (docs/..., tests/..., benchmarks/...) that is not part
# of a URL: it does not exist in a copied project.
OUTSIDE = re.compile(r"(?<![/\w.-])(?:docs|benchmarks|tests/recipes|knot_prefect)/[\w./-]+")


def block_names(folder: Path) -> set[str]:
    documents = yaml.safe_load((folder / "blocks.yaml").read_text())["blocks"]
    return {document["name"] for document in documents}


def lineage_commands(text: str) -> list[list[str]]:
    found = re.findall(r"knot lineage [^`\n#]+", text)
    return [shlex.split(command) for command in found]


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_lineage_commands_name_the_recipes_block_documents(folder: Path) -> None:
    names = block_names(folder)
    for command in lineage_commands((folder / "README.md").read_text()):
        for option in ("--warehouse", "--tracking"):
            assert option in command, (
                f"{folder.name}: `{shlex.join(command)}` needs {option}: the defaults name "
                "knot's demo documents, which a copied project does not have"
            )
            value = command[command.index(option) + 1]
            assert value in names, f"{folder.name}: {option} {value} is not in blocks.yaml"


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_readme_points_nowhere_outside_the_recipe(folder: Path) -> None:
    text = (folder / "README.md").read_text()
    outside = [match for match in OUTSIDE.findall(text) if not (folder / match).exists()]
    assert not outside, f"{folder.name}: README points outside the project: {outside}"
    assert "knot repository" not in text and "knot's own repository" not in text


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_readme_installs_knot_before_the_requirements(folder: Path) -> None:
    from knot_prefect.recipes import run_it_commands

    steps = [line for line in run_it_commands((folder / "README.md").read_text())
             if line.startswith("pip install")]
    assert len(steps) >= 2 and steps[-1] == "pip install -r requirements.txt", steps
    assert "knot-prefect @ https://" in steps[-2], (
        f"{folder.name}: install knot-prefect from GitHub or a wheel before requirements.txt "
        "(it is not on a package index yet)"
    )
    assert "knot-prefect[" in (folder / "requirements.txt").read_text()


# Every README command the suite runs, by recipe. Install lines and quick starts:
# tests/packaging/test_recipes_as_written.py; process deployments and the churn worker:
# tests/recipes/test_recipe_deploy.py; container pools (type and template from the
# README's line): tests/recipes/test_recipe_container_deployments.py.
INSTALL = {
    "python -m venv .venv && . .venv/bin/activate",
    'pip install "knot-prefect @ https://github.com/knot-prefect/knot-prefect/archive/refs/'
    'heads/main.zip"',
    "pip install -r requirements.txt",
}
RUN_BY_TESTS: dict[str, set[str]] = {
    "bigquery-vertex-gpu": INSTALL | {
        "prefect work-pool create vertex-gpu --type vertex-ai",
        "pytest",
    },
    "churn-duckdb": INSTALL | {
        "knot blocks apply blocks.yaml",
        "python generate_data.py --customers 2000",
        "python pipeline.py",
        "knot lineage churn_predictions --key 42 --warehouse churn-warehouse "
        "--tracking churn-mlflow",
        "prefect work-pool create local-process --type process",
        "prefect deploy --name churn-local",
        "prefect worker start --pool local-process",
        "prefect deployment run churn-pipeline/churn-local",
        "prefect work-pool create docker-pool --type docker",
        "pytest",
    },
    "gpu-training": INSTALL | {
        "knot blocks apply blocks.yaml",
        "python generate_data.py --rows 200000",
        "python pipeline.py",
        "prefect work-pool create gpu-process-pool --type process",
        "prefect deploy --name gpu-training-process",
        "knot pool template --type kubernetes --gpu > k8s-gpu.json",
        "prefect work-pool create k8s-gpu-pool --type kubernetes --base-job-template "
        "k8s-gpu.json",
        "pytest",
    },
    "postgres-mlflow-server": INSTALL | {
        "export PG_HOST=db.internal PG_PORT=5432 PG_DATABASE=warehouse PG_USER=ml "
        "PG_PASSWORD=...",
        "export MLFLOW_TRACKING_URI=http://mlflow.internal:5000",
        "knot blocks apply blocks.yaml",
        "python generate_data.py --customers 2000",
        "python pipeline.py",
        "prefect work-pool create k8s-pool --type kubernetes",
        "export PG_HOST=localhost PG_PORT=5432 PG_DATABASE=warehouse PG_USER=ml "
        "PG_PASSWORD=...",
        "export MLFLOW_TRACKING_URI=http://127.0.0.1:5000",
        "pytest",
    },
    "s3-parquet-dask-scoring": INSTALL | {
        "export SCORING_BUCKET=my-bucket AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...",
        "knot blocks apply blocks.yaml",
        "python generate_data.py --rows 1000000",
        "python pipeline.py train",
        "python pipeline.py score --dask-address local",
        "python pipeline.py score --dask-address tcp://scheduler:8786",
        "knot lineage churn_scores --key 42 --warehouse scoring-lake --tracking scoring-mlflow",
        "prefect work-pool create local-process --type process",
        "export DASK_SCHEDULER_ADDRESS=tcp://scheduler:8786",
        "prefect deploy --name score-on-dask",
        "python -m moto.server -p 5555 &",
        "export SCORING_BUCKET=test-bucket AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x "
        "AWS_ENDPOINT_URL=http://127.0.0.1:5555 MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:5555 "
        "DASK_SCHEDULER_ADDRESS=local KNOT_HOME=$(mktemp -d)",
        "pytest tests",
    },
    "snowflake-feast-online": INSTALL | {
        "export SNOWFLAKE_ACCOUNT=emulated SNOWFLAKE_USER=ml SNOWFLAKE_PASSWORD=emulated",
        "export SNOWFLAKE_DATABASE=ANALYTICS",
        "knot blocks apply blocks.yaml",
        "mkdir -p .fakesnow",
        "fakesnow -d .fakesnow generate_data.py --customers 2000",
        "fakesnow -d .fakesnow pipeline.py",
        "prefect work-pool create ecs-pool --type ecs",
        "pytest",
    },
}
INLINE_COMMENT = re.compile(r"\s+#\s?(.*)$")


def readme_commands(text: str) -> list[tuple[str, bool]]:
    """Each command of the README's bash blocks, and whether the README says what it needs.

    A command says so with a comment that starts with "needs", on its line or on the
    comment line above its group (the group ends at a blank line).
    """
    found = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        joined = re.sub(r"\\\n\s*", "", block)  # continuation lines
        group_needs = False
        for line in joined.splitlines():
            line = line.strip()
            if not line:
                group_needs = False
            elif line.startswith("#"):
                group_needs = group_needs or line.lstrip("# ").lower().startswith("needs")
            else:
                comment = INLINE_COMMENT.search(line)
                command = INLINE_COMMENT.sub("", line)
                needs = bool(comment and comment.group(1).lower().startswith("needs"))
                found.append((" ".join(command.split()), needs or group_needs))
    return found


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_every_readme_command_is_run_by_a_test_or_says_what_it_needs(folder: Path) -> None:
    commands = readme_commands((folder / "README.md").read_text())
    covered = RUN_BY_TESTS.get(folder.name, set())
    untold = [command for command, needs in commands if command not in covered and not needs]
    assert not untold, (
        f"{folder.name}: run these in a test, or say in the README what they need (a "
        f"comment starting with 'needs', e.g. '# needs a GKE cluster'): {untold}"
    )
    stale = covered - {command for command, _ in commands}
    assert not stale, f"{folder.name}: no longer in the README: {sorted(stale)}"
