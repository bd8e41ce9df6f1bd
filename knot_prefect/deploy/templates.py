"""knot's base job templates: the workers' defaults plus GPU placement variables.

A work pool's base job template decides which job variables a deployment may set.
Prefect's default templates have CPU and memory variables but no GPU variable for
Kubernetes, ECS or Cloud Run, so knot builds its templates from each worker's own
``get_default_base_job_template()`` and adds:

- ``kubernetes``: ``gpu_limit`` (container ``resources.limits["nvidia.com/gpu"]``),
  ``mig_<slice>`` (``resources.limits["nvidia.com/mig-<slice>"]``, e.g. ``mig_1g_10gb``,
  one per known MIG slice), ``node_selector``, ``tolerations`` and ``affinity`` (pod spec).
- ``ecs``: ``resource_requirements`` (container ``resourceRequirements``),
  ``requires_compatibilities`` (task definition) and ``placement_constraints``
  (run task request).
- ``cloud-run-v2``: ``gpu_limit`` (container ``resources.limits["nvidia.com/gpu"]``)
  and ``node_selector`` (task template ``nodeSelector``).

The added variables have no default: when a deployment leaves them unset, Prefect drops
the keys, and the job is exactly what the default template would make. The process,
docker and vertex-ai defaults already carry every variable a profile needs.

Examples:
    >>> template = base_job_template("kubernetes", gpu=True)
    >>> sorted(k for k in template["variables"]["properties"] if k in KNOT_VARIABLES)
    ['affinity', 'gpu_limit', 'node_selector', 'tolerations']
"""

from __future__ import annotations

import copy
from typing import Any

from knot_prefect.compute.gpus import ALL_MIG_PROFILES, mig_resource, mig_variable_key
from knot_prefect.compute.job_variables import NVIDIA_GPU_RESOURCE, normalize_pool_type
from knot_prefect.deploy.workers import worker_class


def _variable(title: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"title": title, "description": description, **schema}


def _list_variable(title: str, description: str, item_type: str) -> dict[str, Any]:
    return _variable(title, description, type="array", items={"type": item_type})


# Every variable knot adds to a default template.
KNOT_VARIABLES: dict[str, dict[str, Any]] = {
    "gpu_limit": _variable(
        "GPU Limit",
        "Number of NVIDIA GPUs (nvidia.com/gpu) for the flow run's container.",
        anyOf=[{"type": "string"}, {"type": "null"}],
    ),
    "node_selector": _variable(
        "Node Selector",
        "Node labels the flow run must be placed on, e.g. the GPU kind.",
        type="object",
        additionalProperties={"type": "string"},
    ),
    "tolerations": _list_variable(
        "Tolerations", "Pod tolerations, e.g. of the nvidia.com/gpu taint on GPU nodes.", "object"
    ),
    "affinity": _variable(
        "Affinity",
        "Pod affinity: nodeAffinity, podAffinity, podAntiAffinity.",
        type="object",
    ),
    "resource_requirements": _list_variable(
        "Resource Requirements",
        "Container resourceRequirements of the task definition, e.g. GPUs.",
        "object",
    ),
    "requires_compatibilities": _list_variable(
        "Requires Compatibilities",
        "Launch types the task definition must be compatible with, e.g. EC2.",
        "string",
    ),
    "placement_constraints": _list_variable(
        "Placement Constraints",
        "ECS placement constraints of the task, e.g. the GPU instance family.",
        "object",
    ),
}


def default_job_template(pool_type: str) -> dict[str, Any]:
    """The worker's own default base job template for a pool type."""
    return copy.deepcopy(worker_class(pool_type).get_default_base_job_template())


def base_job_template(pool_type: str, gpu: bool = True) -> dict[str, Any]:
    """A base job template for a work pool that accepts knot compute profiles.

    Args:
        pool_type: ``process``, ``docker``, ``kubernetes``, ``ecs``, ``cloud-run-v2``
            or ``vertex-ai``.
        gpu: Add knot's GPU placement variables (no effect where the default template
            already has what a profile needs).

    Returns:
        A template for ``prefect work-pool create --base-job-template FILE``.
    """
    base_type = normalize_pool_type(pool_type)
    template = default_job_template(base_type)
    if gpu and base_type in _ADD_GPU_VARIABLES:
        _ADD_GPU_VARIABLES[base_type](template)
    return template


def _add_variables(template: dict[str, Any], *names: str) -> None:
    properties = template["variables"].setdefault("properties", {})
    for name in names:
        properties[name] = copy.deepcopy(KNOT_VARIABLES[name])


def _kubernetes(template: dict[str, Any]) -> None:
    pod_spec = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    limits = container.setdefault("resources", {}).setdefault("limits", {})
    limits[NVIDIA_GPU_RESOURCE] = "{{ gpu_limit }}"
    # Template keys are not templated, so each MIG slice has its own key and variable;
    # the unset ones are dropped when the job is built.
    properties = template["variables"].setdefault("properties", {})
    for profile in ALL_MIG_PROFILES:
        variable = mig_variable_key(profile)
        limits[mig_resource(profile)] = f"{{{{ {variable} }}}}"
        properties[variable] = {
            "title": f"MIG {profile}",
            "description": f"Number of MIG slices {mig_resource(profile)} for the container.",
            "anyOf": [{"type": "string"}, {"type": "null"}],
        }
    pod_spec["nodeSelector"] = "{{ node_selector }}"
    pod_spec["tolerations"] = "{{ tolerations }}"
    pod_spec["affinity"] = "{{ affinity }}"
    _add_variables(template, "gpu_limit", "node_selector", "tolerations", "affinity")


def _ecs(template: dict[str, Any]) -> None:
    configuration = template["job_configuration"]
    task_definition = configuration["task_definition"]
    task_definition["containerDefinitions"][0]["resourceRequirements"] = (
        "{{ resource_requirements }}"
    )
    task_definition["requiresCompatibilities"] = "{{ requires_compatibilities }}"
    configuration["task_run_request"]["placementConstraints"] = "{{ placement_constraints }}"
    _add_variables(
        template, "resource_requirements", "requires_compatibilities", "placement_constraints"
    )


def _cloud_run(template: dict[str, Any]) -> None:
    task = template["job_configuration"]["job_body"]["template"]["template"]
    container = task["containers"][0]
    container.setdefault("resources", {}).setdefault("limits", {})[NVIDIA_GPU_RESOURCE] = (
        "{{ gpu_limit }}"
    )
    task["nodeSelector"] = "{{ node_selector }}"
    _add_variables(template, "gpu_limit", "node_selector")


_ADD_GPU_VARIABLES = {
    "kubernetes": _kubernetes,
    "ecs": _ecs,
    "cloud-run-v2": _cloud_run,
}


def missing_variables(template: dict[str, Any], job_variables: dict[str, Any]) -> list[str]:
    """The job variables that a base job template has no variable for.

    Prefect accepts such variables at deploy time and then ignores them, so a GPU
    request would be silently lost; knot refuses to deploy instead.
    """
    properties = template.get("variables", {}).get("properties", {})
    return sorted(name for name in job_variables if name not in properties)


def template_defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The default value of each job variable of a base job template that has one."""
    properties = template.get("variables", {}).get("properties", {})
    return {
        name: schema["default"]
        for name, schema in properties.items()
        if isinstance(schema, dict) and schema.get("default") is not None
    }
