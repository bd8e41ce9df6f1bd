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
