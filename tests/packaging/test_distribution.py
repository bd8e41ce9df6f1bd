"""The sdist and the wheel carry everything a user's install needs, pass `twine check`,
and take their version from knot_prefect/_version.py; the release workflow publishes
them from a tag with PyPI's trusted publishing."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from typing import Any

import yaml

from knot_prefect._version import __version__
from tests.packaging.conftest import ROOT, Distribution
from tests.recipes.test_recipe_cicd import actionlint

RELEASE = ROOT / ".github" / "workflows" / "release.yaml"


def tracked(folder: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    return [path for path in listed if (ROOT / path).is_file()]


def test_the_wheel_carries_the_package_data_and_every_recipe(
    distribution: Distribution,
) -> None:
    names = set(zipfile.ZipFile(distribution.wheel).namelist())
    package = tracked("knot_prefect")
    assert package and set(package) <= names
    for data in ("knot_prefect/blocks/logo.png", "knot_prefect/demo/local_blocks.yaml",
                 "knot_prefect/py.typed"):
        assert data in names
    recipes = tracked("recipes")
    assert any("/.github/workflows/" in path for path in recipes)
    missing = [p for p in recipes if f"knot_prefect/_recipes/{p.removeprefix('recipes/')}"
               not in names]
    assert not missing, f"recipes left out of the wheel: {missing}"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".db", ".duckdb"))]


def test_the_sdist_builds_the_same_project(distribution: Distribution) -> None:
    with tarfile.open(distribution.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for path in ("pyproject.toml", "README.md", "CHANGELOG.md", "knot_prefect/_version.py",
                 *tracked("recipes"), *tracked("blocks"), *tracked("flows")):
        assert path in names, f"{path} is missing from the sdist"
    assert not [n for n in names if n.startswith(("docs/", "tests/", ".venv/"))]


def test_version_comes_from_one_place(distribution: Distribution) -> None:
    with zipfile.ZipFile(distribution.wheel) as wheel:
        metadata_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(wheel.read(metadata_name).decode())
        entry_points = wheel.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    assert metadata["Version"] == __version__
    assert distribution.sdist.name == f"knot_prefect-{__version__}.tar.gz"
    assert "knot_prefect = knot_prefect.collection" in entry_points  # prefect.collections
    assert "knot = knot_prefect.cli.main:app" in entry_points
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_twine_check_passes(distribution: Distribution) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict",
         str(distribution.sdist), str(distribution.wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_release_workflow_publishes_tags_with_trusted_publishing() -> None:
    result = subprocess.run([actionlint(), "-no-color", str(RELEASE)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    workflow: dict[Any, Any] = yaml.safe_load(RELEASE.read_text())
    triggers = workflow.get("on", workflow.get(True))
    assert list(triggers) == ["push"] and triggers["push"]["tags"] == ["v*"]
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    build_steps = " ".join(str(step.get("run", "")) for step in build["steps"])
    assert "python -m build" in build_steps and "twine check" in build_steps
    assert "_version.py" in build_steps and "GITHUB_REF_NAME" in build_steps
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    uses = [step.get("uses", "") for step in publish["steps"]]
    assert any(use.startswith("pypa/gh-action-pypi-publish@") for use in uses)
    assert "password" not in RELEASE.read_text()  # no API token: trusted publishing
