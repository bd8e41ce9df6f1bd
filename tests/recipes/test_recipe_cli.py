"""`knot recipe list` and `knot recipe new`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from knot_prefect.cli.recipe import app
from knot_prefect.errors import ConfigurationError
from knot_prefect.recipes import copy_recipe, get_recipe, list_recipes, parse_readme
from tests.recipes.conftest import RECIPES

runner = CliRunner()
MINE = ("churn-duckdb", "postgres-mlflow-server", "snowflake-feast-online",
        "bigquery-vertex-gpu")


def recipe_folders() -> list[str]:
    return sorted(p.name for p in RECIPES.iterdir() if (p / "README.md").is_file())


def test_list_shows_every_recipe_folder_with_its_summary() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()[: len(recipe_folders())]]
    assert listed == recipe_folders()
    assert set(MINE) <= set(listed)
    for recipe in list_recipes():
        _, summary = parse_readme((recipe.path / "README.md").read_text(), recipe.name)
        assert summary and summary in result.output


def test_new_copies_the_project_and_prints_the_next_steps(tmp_path: Path) -> None:
    target = tmp_path / "my-churn"
    result = runner.invoke(app, ["new", "churn-duckdb", str(target)])
    assert result.exit_code == 0, result.output
    source = RECIPES / "churn-duckdb"
    expected = sorted(
        str(p.relative_to(source)) for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "data" not in p.parts
    )
    copied = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert copied == expected
    assert ".github/workflows/ci.yaml" in copied
    assert f"cd {target}" in result.output
    steps = get_recipe("churn-duckdb").next_steps()
    assert "knot blocks apply blocks.yaml" in steps
    for step in steps:
        assert f"  {step}" in result.output


def test_new_refuses_a_folder_with_content_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["new", "churn-duckdb", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_unknown_recipe_names_the_closest_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["new", "churn-duck", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "churn-duckdb" in result.output and "knot recipe list" in result.output
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigurationError, match="No recipe called 'nope'"):
        copy_recipe("nope", tmp_path / "y")


@pytest.mark.parametrize("destination", ["/proc/x", "/proc/self/x/y"])
def test_new_into_a_folder_that_cannot_be_created_says_so(destination: str) -> None:
    result = runner.invoke(app, ["new", "churn-duckdb", destination])
    assert result.exit_code == 1, result.output
    assert f"Cannot create the project folder {destination!r}" in result.output
    assert "folder you can write to" in result.output
    assert not isinstance(result.exception, FileNotFoundError)
