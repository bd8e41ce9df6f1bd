"""Recipes run as their READMEs say, outside knot's development environment.

Each recipe is copied with `knot recipe new` into an empty folder; its README's commands
run in bash with two translations only: `pip install` is `uv pip install` (the shared
cache, the project's constraints) and knot-prefect comes from the built wheel instead
of GitHub (the README's own alternative). Each recipe gets one new venv, shared by its
tests; the `export` lines of a README get the values of the suite's services.

The churn recipe's quick start runs as a first-time user's does, each command on a
temporary Prefect server; the others run theirs against the suite's Prefect server
(`PREFECT_API_URL`, as with a team's server), which spares a server start per command."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from knot_prefect.recipes import copy_recipe
from tests.packaging.conftest import CONSTRAINTS, UV, Distribution, FreshVenv, fresh_venv, run_in
from tests.recipes.conftest import RECIPES
from tests.services import free_port

pytestmark = pytest.mark.heavy

RECIPE_NAMES = sorted(p.name for p in RECIPES.iterdir() if (p / "README.md").is_file())
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
    # Each command is echoed with the time it started: a failure or a timeout says which.
    traced = f"PS4='+ $(date +%T) '; set -x\n{script}"
    try:
        completed = run_in(venv, ["bash", "-euo", "pipefail", "-c", traced], cwd, env, timeout)
    except subprocess.TimeoutExpired as expired:
        parts = (expired.stdout, expired.stderr)  # bytes: what the command wrote so far
        output = "".join(p.decode(errors="replace") if isinstance(p, bytes) else p or ""
                         for p in parts)
        pytest.fail(f"timed out after {timeout} s:\n{output[-6000:]}")
    elapsed = time.monotonic() - started
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{script}\n---\n{output[-6000:]}"
    return output, elapsed


def constraints_for(folder: Path) -> Path:
    """The project's constraints, plus the PyTorch build the Makefile installs."""
    path = folder / "constraints.txt"
    path.write_text(CONSTRAINTS.read_text() + "\ntorch==2.13.0\n")
    return path


@dataclass(frozen=True)
class Installed:
    """A copied recipe and the venv its README's install lines built."""

    project: Path
    venv: FreshVenv
    env: dict[str, str]

    @property
    def readme(self) -> str:
        return (self.project / "README.md").read_text()

    def run(self, script: str, settings: dict[str, str] | None = None,
            env: dict[str, str] | None = None, timeout: int = 1800) -> tuple[str, float]:
        """Run README lines in the project, the test's values in its `export` lines."""
        return bash(self.venv, with_settings(script, settings or {}), self.project,
                    {**self.env, **(env or {})}, timeout)

    def quick_start(self, heading: str = "Run it", settings: dict[str, str] | None = None,
                    replace: dict[str, str] | None = None,
                    env: dict[str, str] | None = None) -> float:
        """The section's commands after the install lines.

        ``replace`` swaps words of the README for the test's (a smaller data size, the
        suite's cluster); each must be in the README.
        """
        script = "\n".join(line for line in section(self.readme, heading).splitlines()
                           if not line.startswith(("python -m venv", "pip install", "#")))
        for old, new in (replace or {}).items():
            assert old in script, f"{old!r} is not in the README's commands"
            script = script.replace(old, new)
        _, seconds = self.run(script, settings, env)
        print(f"\n[{self.project.name}] quick start {seconds:.0f} s")
        return seconds

    def run_tests(self, settings: dict[str, str] | None = None,
                  runs: tuple[str, ...] = ("first", "second")) -> list[float]:
        """"Test it", twice in a row unless told: what a first run leaves must not fail
        a second."""
        took = []
        for attempt in runs:
            output, seconds = self.run(section(self.readme, "Test it"), settings)
            assert " passed" in output and "failed" not in output, f"{attempt}: {output[-3000:]}"
            print(f"[{self.project.name}] tests ({attempt} run) {seconds:.0f} s")
            took.append(seconds)
        return took


def install(recipe: str, distribution: Distribution, folder: Path) -> Installed:
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
    # The project's own Prefect home, as on a machine that never ran Prefect.
    return Installed(project, FreshVenv(venv.path, seconds),
                     {"PREFECT_HOME": str(folder / "prefect-home")})


def with_settings(script: str, settings: dict[str, str]) -> str:
    """The README's ``export NAME=placeholder`` lines with the test's values.

    Every variable a README exports must be given: the test then runs against its own
    services with exactly the settings the README asks a user for.
    """
    lines = []
    for line in script.splitlines():
        if line.startswith("export ") and "\\" not in line:
            names = [word.partition("=")[0] for word in shlex.split(line)[1:]
                     if not word.startswith("#")]
            missing = [name for name in names if name not in settings]
            assert not missing, f"the test gives no value for {missing} ({line})"
            line = "export " + " ".join(f"{n}={shlex.quote(settings[n])}" for n in names)
        lines.append(line)
    return "\n".join(lines)


def project_files(project: Path) -> dict[str, float]:
    """The project's files and their modification times, caches and the venv aside."""
    skip = {".venv", "__pycache__", ".pytest_cache"}
    return {str(path.relative_to(project)): path.stat().st_mtime
            for path in project.rglob("*")
            if path.is_file() and not skip & set(path.relative_to(project).parts)}


@pytest.fixture(scope="session")
def installed(distribution: Distribution,
              tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Installed]:
    """One venv per recipe, shared by its tests (the uv cache makes each a link farm)."""
    done: dict[str, Installed] = {}

    def get(recipe: str) -> Installed:
        if recipe not in done:
            done[recipe] = install(recipe, distribution, tmp_path_factory.mktemp(recipe))
        return done[recipe]

    return get


@pytest.mark.parametrize("recipe", RECIPE_NAMES)
def test_requirements_install_without_an_index_serving_knot(
    recipe: str, installed: Callable[[str], Installed]
) -> None:
    copy = installed(recipe)
    shown = run_in(copy.venv, [copy.venv.bin("knot"), "--version"], copy.project)
    assert shown.returncode == 0 and "knot-prefect" in shown.stdout, shown.stderr
    # That the install lines are all a project needs, each recipe's tests below show.


@pytest.mark.timeout(3600)  # three Prefect temporary servers, the pipeline three times
def test_churn_duckdb_quick_start_then_its_tests_twice(
    installed: Callable[[str], Installed], record_property: Any
) -> None:
    copy = installed("churn-duckdb")
    record_property("quick_start_seconds", round(copy.quick_start()))
    # "Then look around": the lineage of customer 42, as the README writes it.
    lineage = re.search(r"^knot lineage .*$", copy.readme, re.MULTILINE)
    assert lineage, "the README's lineage command is missing"
    output, _ = copy.run(lineage.group(0))
    assert "churn-model" in output, output[-3000:]
    assert not (copy.project / "mlflow.db").exists()  # MLflow's default store stays unused
    before = project_files(copy.project)
    record_property("test_run_seconds", [round(s) for s in copy.run_tests()])
    # The tests write their state where their blocks point, not into the project.
    assert project_files(copy.project) == before


@pytest.mark.timeout(3600)
def test_postgres_mlflow_quick_start_then_its_tests_twice_on_one_database_and_server(
    installed: Callable[[str], Installed], postgres_database: dict[str, str],
    mlflow_server: str, prefect_server: str, record_property: Any,
) -> None:
    copy = installed("postgres-mlflow-server")
    server = {"PREFECT_API_URL": prefect_server}
    dsn = urlparse(postgres_database["dsn"])
    settings = {
        "PG_HOST": str(dsn.hostname), "PG_PORT": str(dsn.port),
        "PG_DATABASE": postgres_database["name"], "PG_USER": str(dsn.username),
        "PG_PASSWORD": "unused-by-trust-auth", "MLFLOW_TRACKING_URI": mlflow_server,
    }
    seconds = copy.quick_start(settings=settings, env=server,
                               replace={"--customers 2000": "--customers 500"})
    record_property("quick_start_seconds", round(seconds))
    lineage = re.search(r"knot lineage [^`\n]+", copy.readme)
    assert lineage, "the README's lineage command is missing"
    output, _ = copy.run(lineage.group(0), env=server)
    assert "churn-model" in output, output[-3000:]
    assert not (copy.project / "mlflow.db").exists()
    # The tests use the database and the server the quick start left behind.
    record_property("test_run_seconds", [round(s) for s in copy.run_tests(settings)])


@pytest.mark.timeout(3600)
def test_snowflake_quick_start_on_fakesnow_then_its_tests_twice(
    installed: Callable[[str], Installed], prefect_server: str, record_property: Any
) -> None:
    copy = installed("snowflake-feast-online")
    settings = {"SNOWFLAKE_ACCOUNT": "emulated", "SNOWFLAKE_USER": "ml",
                "SNOWFLAKE_PASSWORD": "emulated", "SNOWFLAKE_DATABASE": "ANALYTICS"}
    seconds = copy.quick_start("Try it without an account", settings,
                               replace={"--customers 2000": "--customers 500"},
                               env={"PREFECT_API_URL": prefect_server})
    record_property("quick_start_seconds", round(seconds))
    assert list((copy.project / ".fakesnow").iterdir()), "fakesnow kept no database"
    record_property("test_run_seconds", [round(s) for s in copy.run_tests()])


@pytest.mark.timeout(3600)
def test_gpu_training_quick_start_on_the_cpu_then_its_tests_twice(
    installed: Callable[[str], Installed], prefect_server: str, record_property: Any
) -> None:
    copy = installed("gpu-training")
    seconds = copy.quick_start(replace={"--rows 200000": "--rows 20000"},
                               env={"PREFECT_API_URL": prefect_server})
    record_property("quick_start_seconds", round(seconds))
    record_property("test_run_seconds", [round(s) for s in copy.run_tests()])


@pytest.mark.timeout(1800)
def test_s3_tests_run_as_readme_and_ci_say_twice(
    installed: Callable[[str], Installed]
) -> None:
    copy = installed("s3-parquet-dask-scoring")
    project, venv = copy.project, copy.venv
    port = str(free_port())
    script = section((project / "README.md").read_text(), "Test it").replace("5555", port)
    # The README starts moto in the background: the shell stops it when done.
    script = f"trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}"
    script = script.replace("pytest tests", "pytest tests && pytest tests")
    output, seconds = bash(venv, script, project, copy.env)
    assert output.count(" passed") == 2 and "failed" not in output, output[-3000:]
    print(f"\n[s3-parquet-dask-scoring] tests twice {seconds:.0f} s")


@pytest.mark.timeout(3600)
def test_s3_quick_start_on_moto_with_a_temporary_and_an_existing_dask_cluster(
    installed: Callable[[str], Installed], moto_s3: str, dask_scheduler: str,
    prefect_server: str, record_property: Any,
) -> None:
    copy = installed("s3-parquet-dask-scoring")
    settings = {"SCORING_BUCKET": "quick-start", "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing"}
    # "MinIO or moto instead of AWS", as the README's comment says.
    endpoints = {"AWS_ENDPOINT_URL": moto_s3, "MLFLOW_S3_ENDPOINT_URL": moto_s3,
                 "AWS_DEFAULT_REGION": "us-east-1", "PREFECT_API_URL": prefect_server}
    seconds = copy.quick_start(settings=settings, env=endpoints, replace={
        "--rows 1000000": "--rows 20000", "tcp://scheduler:8786": dask_scheduler})
    record_property("quick_start_seconds", round(seconds))
    lineage = re.search(r"^knot lineage .*$", copy.readme, re.MULTILINE)
    assert lineage, "the README's lineage command is missing"
    output, _ = copy.run(lineage.group(0), settings, endpoints)
    assert "churn-scorer" in output, output[-3000:]


@pytest.mark.timeout(1200)
def test_bigquery_vertex_tests_run_in_the_recipes_venv(
    installed: Callable[[str], Installed], record_property: Any
) -> None:
    """At the BigQuery and Vertex AI clients' boundary (no emulator exists for either),
    so no service keeps state between runs: one run."""
    copy = installed("bigquery-vertex-gpu")
    record_property("test_run_seconds", [round(s) for s in copy.run_tests(runs=("only",))])
