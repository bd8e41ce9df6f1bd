"""Every container deployment of every recipe, checked by rendering (no image is built).

For each deployment that runs in an image (Docker, Kubernetes, ECS, Vertex AI), the
README's own `prefect work-pool create` line says the pool type and template. The test
resolves the deployment's job variables as `prefect deploy` does (the README's
`IMAGE_NAME`/`IMAGE_TAG`, then the build step's outputs), validates them against the
pool's variables schema as Prefect's server does, and renders the job with the worker's
own job configuration class: the image built by the build step is the one the job runs,
and every job variable the deployment sets is used by the pool's job. (Vertex AI's
worker loads application default credentials while it renders: offline ones are given.)
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.recipes.conftest import RECIPES
from tests.recipes.test_recipe_cicd import BUILD, PUSH, is_container_deployment, resolved_steps

REGISTRY_IMAGE = "registry.example/team/recipe"


def container_deployments() -> list[tuple[str, str]]:
    found = []
    for folder in sorted(RECIPES.iterdir()):
        if (folder / "prefect.yaml").is_file():
            config = yaml.safe_load((folder / "prefect.yaml").read_text())
            found += [(folder.name, d["name"]) for d in config["deployments"]
                      if is_container_deployment(d)]
    return found


DEPLOYMENTS = container_deployments()


def readme_commands(folder: Path) -> list[list[str]]:
    text = (folder / "README.md").read_text()
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def pool_template(folder: Path, pool: str) -> tuple[str, dict[str, Any]]:
    """The pool type and base job template the README's `prefect work-pool create` makes."""
    from knot_prefect.deploy.templates import base_job_template, default_job_template

    commands = readme_commands(folder)
    creates = [c for c in commands if c[:3] == ["prefect", "work-pool", "create"] and
               c[3] == pool]
    assert creates, f"{folder.name}: the README never creates the work pool {pool!r}"
    create = creates[0]
    pool_type = option(create, "--type")
    assert pool_type, f"{folder.name}: `{shlex.join(create)}` names no --type"
    template_file = option(create, "--base-job-template")
    if template_file is None:
        return pool_type, default_job_template(pool_type)
    # The file is knot's template, written by `knot pool template ... > FILE`.
    makers = [c for c in commands if c[:3] == ["knot", "pool", "template"]
              and c[-2:] == [">", template_file]]
    assert makers, f"{folder.name}: nothing in the README writes {template_file}"
    assert option(makers[0], "--type") == pool_type
    return pool_type, base_job_template(pool_type, gpu="--gpu" in makers[0])


def deploy_command(folder: Path, name: str) -> list[str]:
    """The README's `prefect deploy` line that deploys ``name`` (--name NAME or --all)."""
    for command in readme_commands(folder):
        at = next((i for i, word in enumerate(command) if word == "prefect"), None)
        if at is None or command[at + 1:at + 2] != ["deploy"]:
            continue
        if "--all" in command or option(command, "--name") == name:
            return command
    raise AssertionError(f"{folder.name}: no README line runs `prefect deploy` for {name}")


def as_deploy_resolves(template: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """`{{ $VAR }}` from the environment, then `{{ step-id.output }}` from the steps."""
    from prefect.utilities.templating import apply_values

    from_environment = apply_values(template, {}, remove_notset=False)
    assert isinstance(from_environment, dict)
    resolved = apply_values(from_environment, outputs)
    assert isinstance(resolved, dict)
    return resolved


@pytest.mark.parametrize(("recipe", "name"), DEPLOYMENTS, ids=[f"{r}-{n}" for r, n in DEPLOYMENTS])
def test_container_deployment_builds_pushes_and_renders_for_its_pool(
    recipe: str, name: str, monkeypatch: pytest.MonkeyPatch, google_adc: Path
) -> None:
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.utilities.schema_tools import validate

    from knot_prefect.deploy.workers import worker_class

    folder = RECIPES / recipe
    config = yaml.safe_load((folder / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == name]

    # The README's deploy line gives the image name and tag the build step reads.
    command = deploy_command(folder, name)
    given = dict(word.split("=", 1) for word in command if re.match(r"^[A-Z_]+=", word))
    (build,) = [s[BUILD] for s in resolved_steps(config, deployment, "build") if BUILD in s]
    (push,) = [s[PUSH] for s in resolved_steps(config, deployment, "push") if PUSH in s]
    for field, variable in (("image_name", "IMAGE_NAME"), ("tag", "IMAGE_TAG")):
        assert build[field] == f"{{{{ ${variable} }}}}", build
        assert variable in given, f"{recipe}: `{shlex.join(command)}` does not set {variable}"
    assert push["tag"] == f"{{{{ {build['id']}.tag }}}}", push

    # As `prefect deploy` resolves it: environment first, then the build step's outputs.
    monkeypatch.setenv("IMAGE_NAME", REGISTRY_IMAGE)
    monkeypatch.setenv("IMAGE_TAG", "v1")
    monkeypatch.setenv("VERTEX_SERVICE_ACCOUNT", "runner@project.iam.gserviceaccount.com")
    image = f"{REGISTRY_IMAGE}:v1"
    built = {build["id"]: {"image_name": REGISTRY_IMAGE, "tag": "v1", "image": image}}
    resolved = as_deploy_resolves(build, built)
    assert (resolved["image_name"], resolved["tag"]) == (REGISTRY_IMAGE, "v1")
    variables = as_deploy_resolves(deployment["work_pool"]["job_variables"], built)
    assert variables["image"] == image

    pool_type, template = pool_template(folder, deployment["work_pool"]["name"])
    schema = template["variables"]
    unknown = sorted(set(variables) - set(schema.get("properties", {})))
    assert not unknown, (
        f"{recipe}/{name}: the {pool_type} pool's template has no variables {unknown} "
        "(a worker ignores them)"
    )
    validate(variables, schema, raise_on_error=True, ignore_required=True)
    job = json.dumps(template["job_configuration"])
    unused = [key for key in variables if not re.search(rf"{{{{\s*{key}\s*}}}}", job)]
    assert not unused, f"{recipe}/{name}: the {pool_type} job never uses {unused}"

    configuration_class = worker_class(pool_type).job_configuration
    rendered: Any = run_coro_as_sync(configuration_class.from_template_and_values(template,
                                                                            variables))
    text = rendered.model_dump_json()
    assert image in text, f"{recipe}/{name}: the rendered {pool_type} job runs another image"
    for key, value in variables.items():
        if isinstance(value, str | int) and not isinstance(value, bool):
            assert str(value) in text, f"{recipe}/{name}: {key}={value!r} is not in the job"
