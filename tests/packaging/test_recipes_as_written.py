"""Recipes run as their READMEs say, outside knot's development environment.

Each recipe is copied with `knot recipe new` into an empty folder; its README's commands
run in bash with two translations only: `pip install` is `uv pip install` (the shared
cache, the project's constraints) and knot-prefect comes from the built wheel instead
of GitHub (the README's own alternative). The venv is new for each recipe."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from knot_prefect.recipes import copy_recipe
from tests.packaging.conftest import CONSTRAINTS, UV, Distribution, FreshVenv, fresh_venv, run_in
from tests.recipes.conftest import RECIPES
from tests.services import free_port

pytestmark = pytest.mark.heavy

RECIPE_NAMES = sorted(p.name for p in RECIPES.iterdir() if (p / "README.md").is_file())
# feast[gcp] asks for google-cloud-storage<3 while knot's constraints (the packages the
# suite installs offline) pin 3.x: a user's resolver picks 2.x, which is not cached here.
NOT_OFFLINE = {"bigquery-vertex-gpu": "feast[gcp] needs google-cloud-storage<3; the "
                                      "project's constraints pin 3.x"}
INSTALLABLE = [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=NOT_OFFLINE[name]))
               if name in NOT_OFFLINE else name for name in RECIPE_NAMES]
KNOT_FROM_GITHUB = re.compile(r'pip install "knot-prefect @ https://[^"]+"')
VENV_LINE = "python -m venv .venv && . .venv/bin/activate"
TORCH_WHEELS = Path("/opt/wheels")


def section(readme: str, heading: str) -> str:
    """The first bash code block under ``## heading``."""
    match = re.search(rf"^## {re.escape(heading)}\s*$.*?^```bash\n(.*?)^```", readme,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no bash block under '## {heading}'"
    return match.group(1)


def translate(script: str, wheel: Path, constraints: Path) -> str:
    script = script.replace(VENV_LINE, ". .venv/bin/activate")
    script = KNOT_FROM_GITHUB.sub(f'pip install "{wheel}"', script)
    uv_pip = f"{UV} pip install -c {constraints}"
    if TORCH_WHEELS.is_dir():
        uv_pip += f" --find-links {TORCH_WHEELS}"
    return re.sub(r"^pip install", uv_pip, script, flags=re.MULTILINE)


def bash(venv: FreshVenv, script: str, cwd: Path, env: dict[str, str] | None = None,
         timeout: int = 900) -> tuple[str, float]:
    started = time.monotonic()
    completed = run_in(venv, ["bash", "-euo", "pipefail", "-c", script], cwd, env, timeout)
    elapsed = time.monotonic() - started
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{script}\n---\n{output[-6000:]}"
    return output, elapsed


def constraints_for(folder: Path) -> Path:
    """The project's constraints, plus the PyTorch build the Makefile installs."""
    path = folder / "constraints.txt"
    path.write_text(CONSTRAINTS.read_text() + "\ntorch==2.13.0\n")
    return path


def install(recipe: str, distribution: Distribution, folder: Path) -> tuple[Path, FreshVenv]:
    """`knot recipe new`, then the README's install lines in a new venv."""
    project = copy_recipe(recipe, folder / recipe)
    venv = fresh_venv(project / ".venv")
    readme = (project / "README.md").read_text()
    lines = [line for line in section(readme, "Run it").splitlines()
             if line.startswith(("python -m venv", "pip install"))]
    assert lines[0] == VENV_LINE and KNOT_FROM_GITHUB.match(lines[1]), lines
    _, seconds = bash(venv, translate("\n".join(lines), distribution.wheel,
                                      constraints_for(folder)), project)
    print(f"\n[{recipe}] install {seconds:.1f} s, venv {venv.size_mb():.0f} MB")
    return project, FreshVenv(venv.path, seconds)


@pytest.mark.parametrize("recipe", INSTALLABLE)
def test_requirements_install_without_an_index_serving_knot(
    recipe: str, distribution: Distribution, tmp_path: Path
) -> None:
    project, venv = install(recipe, distribution, tmp_path)
    shown = run_in(venv, [venv.bin("knot"), "--version"], project)
    assert shown.returncode == 0 and "knot-prefect" in shown.stdout, shown.stderr
    # The README's install lines are all a project needs: its own tests import.
    collected = run_in(venv, [venv.python, "-m", "pytest", "--collect-only", "-q"], project)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]


@pytest.mark.timeout(2400)  # three Prefect temporary servers, the pipeline three times
def test_churn_duckdb_quick_start_then_its_tests_twice(
    distribution: Distribution, tmp_path: Path, record_property: Any
) -> None:
    project, venv = install("churn-duckdb", distribution, tmp_path)
    readme = (project / "README.md").read_text()
    run_it = "\n".join(line for line in section(readme, "Run it").splitlines()
                       if not line.startswith(("python -m venv", "pip install", "#")))
    _, quick_start = bash(venv, run_it, project)
    record_property("quick_start_seconds", round(quick_start))
    print(f"\n[churn-duckdb] quick start {quick_start:.0f} s")
    # "Then look around": the lineage of customer 42, as the README writes it.
    lineage = re.search(r"^knot lineage .*$", readme, re.MULTILINE)
    assert lineage, "the README's lineage command is missing"
    output, _ = bash(venv, lineage.group(0), project)
    assert "churn-model" in output, output[-3000:]
    assert not (project / "mlflow.db").exists()  # MLflow's default store stays unused

    for attempt in ("first", "second"):
        output, seconds = bash(venv, section(readme, "Test it"), project)
        assert " passed" in output and "failed" not in output, f"{attempt}: {output[-3000:]}"
        print(f"[churn-duckdb] tests ({attempt} run) {seconds:.0f} s")


@pytest.mark.timeout(1800)
def test_s3_tests_run_as_readme_and_ci_say_twice(
    distribution: Distribution, tmp_path: Path
) -> None:
    project, venv = install("s3-parquet-dask-scoring", distribution, tmp_path)
    port = str(free_port())
    script = section((project / "README.md").read_text(), "Test it").replace("5555", port)
    # The README starts moto in the background: the shell stops it when done.
    script = f"trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}"
    script = script.replace("pytest tests", "pytest tests && pytest tests")
    output, seconds = bash(venv, script, project)
    assert output.count(" passed") == 2 and "failed" not in output, output[-3000:]
    print(f"\n[s3-parquet-dask-scoring] tests twice {seconds:.0f} s")
