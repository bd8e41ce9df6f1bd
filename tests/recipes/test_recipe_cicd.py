"""Every recipe ships CI/CD: prefect.yaml deployments (container ones with a Dockerfile and
build/push steps, process ones with none), and a GitHub Actions workflow that tests on
every push and deploys on main (linted by actionlint)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.recipes.conftest import RECIPES

FOLDERS = sorted(p for p in RECIPES.iterdir() if (p / "README.md").is_file())
IDS = [p.name for p in FOLDERS]
BUILD = "prefect_docker.deployments.steps.build_docker_image"
PUSH = "prefect_docker.deployments.steps.push_docker_image"


def workflows(folder: Path) -> list[Path]:
    return sorted((folder / ".github" / "workflows").glob("*.y*ml"))


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    assert Path(found).is_file(), "actionlint is missing: pip install 'knot-prefect[test]'"
    return found


def test_every_workflow_passes_actionlint() -> None:
    files = [str(path) for folder in FOLDERS for path in workflows(folder)]
    assert files
    result = subprocess.run([actionlint(), "-no-color", *files], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yaml"
    broken.write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope_such_context }}\n"
        "        shell: not-a-shell\n"
    )
    result = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "nope_such_context" in result.stdout


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_workflow_tests_every_push_and_deploys_on_main(folder: Path) -> None:
    found = workflows(folder)
    assert len(found) == 1, (
        f"{folder.name}: ship one GitHub Actions workflow in .github/workflows/ that tests "
        "every push and runs `prefect deploy` on main (see docs/recipes.md)"
    )
    (path,) = found
    workflow: dict[Any, Any] = yaml.safe_load(path.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert "pull_request" in triggers and "push" in triggers
    jobs = workflow["jobs"]
    runs = {name: " ".join(str(s.get("run", "")) for s in job["steps"])
            for name, job in jobs.items()}
    assert any("pytest" in text for text in runs.values()), runs
    deploying = [name for name, text in runs.items() if "prefect" in text and "deploy" in text]
    assert deploying, f"{path}: no job runs `prefect deploy`"
    for name in deploying:
        condition = str(jobs[name].get("if", ""))
        assert "refs/heads/main" in condition, f"{path}: job {name} must deploy only on main"
        needs = jobs[name].get("needs", [])
        assert needs, f"{path}: job {name} must wait for the tests"


def resolved_steps(config: dict[str, Any], deployment: dict[str, Any], kind: str) -> list[Any]:
    """The build or push steps ``prefect deploy --name`` runs for a deployment.

    As Prefect 3.9 does: the deployment's own steps when it has the key, else the
    file's; and an empty push (``push: null``) still falls back to the file's push.
    """
    steps = deployment.get(kind, config.get(kind)) or []
    if kind == "push" and not steps:
        steps = config.get("push") or []
    return list(steps)


def is_container_deployment(deployment: dict[str, Any]) -> bool:
    return "image" in (deployment["work_pool"].get("job_variables") or {})


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_prefect_yaml_builds_pushes_and_names_real_flows(folder: Path) -> None:
    config = yaml.safe_load((folder / "prefect.yaml").read_text())
    containers = [d for d in config["deployments"] if is_container_deployment(d)]
    for deployment in config["deployments"]:
        name = deployment["name"]
        builds = [step[BUILD] for step in resolved_steps(config, deployment, "build")
                  if BUILD in step]
        pushes = [step[PUSH] for step in resolved_steps(config, deployment, "push")
                  if PUSH in step]
        if deployment not in containers:
            assert not builds and not pushes, (
                f"{folder.name}: `prefect deploy --name {name}` (a process pool) would build "
                "or push an image: keep the image steps on the container deployments "
                "(see docs/recipes.md)"
            )
            continue
        assert len(builds) == 1 and len(pushes) == 1, (
            f"{folder.name}: {name} needs a `build` step {BUILD} (id: build-image) and a "
            f"`push` step {PUSH} (see docs/recipes.md)"
        )
        (build,), (push,) = builds, pushes
        assert build["id"] and build["dockerfile"] == "Dockerfile"
        assert push["image_name"] == f"{{{{ {build['id']}.image_name }}}}"
        assert deployment["work_pool"]["job_variables"]["image"] == (
            f"{{{{ {build['id']}.image }}}}")
    if containers:
        dockerfile = (folder / "Dockerfile").read_text()
        assert dockerfile.lstrip().startswith(("FROM", "#")) and "COPY . " in dockerfile
    else:
        assert not (folder / "Dockerfile").exists(), f"{folder.name}: no deployment uses it"
    for deployment in config["deployments"]:
        path, _, function = deployment["entrypoint"].partition(":")
        tree = ast.parse((folder / path).read_text())
        flows = {
            node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef)
            and any("flow" in ast.unparse(d) for d in node.decorator_list)
        }
        assert function in flows, f"{folder.name}: {deployment['entrypoint']} is not a flow"
        assert deployment["work_pool"]["name"]


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_recipe_has_its_parts(folder: Path) -> None:
    from knot_prefect.recipes import run_it_commands

    assert run_it_commands((folder / "README.md").read_text()), "README needs '## Run it'"
    documents = [
        p for p in folder.rglob("*.y*ml")
        if p.name != "prefect.yaml" and ".github" not in p.parts
        and isinstance(content := yaml.safe_load(p.read_text()), dict) and "blocks" in content
    ]
    assert documents, "block documents (a YAML file with a 'blocks:' list) are missing"
    assert list(folder.glob("tests/test_*.py")), "the recipe's own tests are missing"
    assert (folder / "generate_data.py").is_file() or list(folder.glob("*data*.py"))


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_workflow_tests_as_the_readme_says(folder: Path) -> None:
    """The test job installs with the README's lines, sets the variables its "Test it"
    exports, starts the services it names, and runs its tests command."""
    import re
    import shlex

    from knot_prefect.recipes import run_it_commands

    readme = (folder / "README.md").read_text()
    (path,) = workflows(folder)
    jobs = yaml.safe_load(path.read_text())["jobs"]
    job = next(job for job in jobs.values()
               if any("pytest" in str(step.get("run", "")) for step in job["steps"]))
    runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
    env = {**job.get("env", {}), **{k: v for step in job["steps"]
                                     for k, v in (step.get("env") or {}).items()}}
    for line in run_it_commands(readme):
        if line.startswith("pip install"):
            assert line in runs, f"{path}: the test job does not run `{line}`"
    match = re.search(r"^## Test it\s*$.*?^```bash\n(.*?)^```", readme,
                      re.MULTILINE | re.DOTALL)
    assert match, f"{folder.name}: README has no bash block under '## Test it'"
    script = re.sub(r"\\\n\s*", "", match.group(1))
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in script.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    for command in commands:
        if command.startswith("export "):
            names = [word.partition("=")[0] for word in shlex.split(command)[1:]
                     if re.match(r"^[A-Z_][A-Z0-9_]*=", word)]
            exported = set(env) | set(re.findall(r"(\w+)=", runs))
            missing = [name for name in names if name not in exported]
            assert not missing, f"{path}: the test job does not set {missing}"
        elif command.endswith("&"):  # a service the README starts in the background
            assert command.rstrip("& ").split(" -p ")[0] in runs, (
                f"{path}: the test job does not start `{command}`")
        else:
            assert command in runs, f"{path}: the test job does not run `{command}`"
    if "MLFLOW_TRACKING_URI" in env and "127.0.0.1" in str(env["MLFLOW_TRACKING_URI"]):
        assert "mlflow server" in runs, f"{path}: no MLflow server is started"
    if "PG_HOST" in env:
        assert "postgres" in job.get("services", {}), f"{path}: no PostgreSQL service"
