"""Rendering a compute profile as the job variables of each work pool type.

Each work pool type receives CPU, memory and GPUs through different job variables:

- ``process``: ``env`` only (``CUDA_VISIBLE_DEVICES``); CPU, memory and image are the
  worker machine's own and are not enforced.
- ``docker``: ``image``, ``env``, ``mem_limit`` and ``container_create_kwargs``
  (``nano_cpus``, and ``device_requests`` for GPUs).
- ``kubernetes``: ``cpu_request``/``cpu_limit``, ``memory_request``/``memory_limit``,
  and knot's template variables ``gpu_limit`` (``nvidia.com/gpu``), ``mig_<slice>``
  (``nvidia.com/mig-<slice>``), ``node_selector``, ``tolerations`` and ``affinity``;
  ``spot`` selects and tolerates GKE Spot nodes.
- ``ecs``: ``cpu`` (units), ``memory`` (MiB), and for GPUs ``launch_type: EC2`` plus
  knot's template variables ``resource_requirements``, ``requires_compatibilities`` and
  ``placement_constraints``; ``spot`` (without GPUs) ``launch_type: FARGATE_SPOT``.
- ``cloud-run-v2``: ``cpu``, ``memory``, and for an L4 GPU knot's template variables
  ``gpu_limit`` and ``node_selector``.
- ``vertex-ai``: ``machine_type``, ``accelerator_type``, ``accelerator_count``;
  ``spot`` sets ``scheduling.strategy`` to ``SPOT``.

Node selectors, tolerations, affinity and MIG slices are Kubernetes-only, spot capacity
is for kubernetes, vertex-ai and ecs; elsewhere they are refused. A request the pool
type cannot satisfy raises :class:`ProfileNotSatisfiableError`.

Examples:
    >>> from knot_prefect.blocks.compute_profile import ComputeProfile
    >>> profile = ComputeProfile(cpu=4, memory="16Gi", gpu_count=1, gpu_kind="nvidia-tesla-t4")
    >>> render_job_variables(profile, "process")["env"]
    {'CUDA_VISIBLE_DEVICES': '0'}
    >>> variables = render_job_variables(profile, "kubernetes")
    >>> variables["gpu_limit"], variables["node_selector"]
    ('1', {'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4'})
    >>> render_job_variables(profile, "vertex-ai")["machine_type"]
    'n1-highmem-4'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from knot_prefect.compute import quantities
from knot_prefect.compute.errors import ProfileNotSatisfiableError
from knot_prefect.compute.fargate import fargate_size_problem
from knot_prefect.compute.gpus import GPU_KINDS, GpuKind, gpu_kind, mig_variable_key
from knot_prefect.compute.vertex_machines import NoMachineFits, vertex_machine_type
from knot_prefect.errors import ConfigurationError


class ComputeRequest(Protocol):
    """What a compute request holds: the fields of :class:`~knot_prefect.ComputeProfile`.

    Rendering reads only these, so the rules here do not depend on the block.
    """

    @property
    def display_name(self) -> str: ...
    @property
    def cpu(self) -> float | None: ...
    @property
    def memory(self) -> str | None: ...
    @property
    def gpu_count(self) -> int: ...
    @property
    def gpu_kind(self) -> str | None: ...
    @property
    def image(self) -> str | None: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def machine_type(self) -> str | None: ...
    @property
    def node_selector(self) -> Mapping[str, str]: ...
    @property
    def tolerations(self) -> list[dict[str, Any]]: ...
    @property
    def gpu_node_label(self) -> str: ...
    @property
    def mig_profile(self) -> str | None: ...
    @property
    def spot(self) -> bool: ...
    @property
    def affinity(self) -> Mapping[str, Any]: ...


POOL_TYPES: tuple[str, ...] = (
    "process", "docker", "kubernetes", "ecs", "cloud-run-v2", "vertex-ai",
)
NVIDIA_GPU_RESOURCE = "nvidia.com/gpu"
# GKE taints GPU nodes with this key; generic clusters using the NVIDIA device plugin
# commonly do the same, so GPU pods tolerate it.
NVIDIA_GPU_TOLERATION: dict[str, str] = {
    "key": NVIDIA_GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule",
}
# GKE labels Spot VM nodes with this and, on clusters that also run standard nodes,
# often taints them with it; spot pods select and tolerate it.
GKE_SPOT_LABEL = "cloud.google.com/gke-spot"
GKE_SPOT_TOLERATION: dict[str, str] = {
    "key": GKE_SPOT_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule",
}
# The placement requests each pool type can honour; the others are refused.
PLACEMENT_SUPPORT: dict[str, frozenset[str]] = {
    "kubernetes": frozenset({"node_selector", "tolerations", "affinity", "mig_profile",
                             "spot"}),
    "vertex-ai": frozenset({"spot"}),
    "ecs": frozenset({"spot"}),
}
# Cloud Run GPU instances: one NVIDIA L4, at least 4 vCPUs and 16 GiB.
CLOUD_RUN_MAX_CPU = 8
CLOUD_RUN_MAX_MEMORY_MIB = 32 * 1024
CLOUD_RUN_GPU_MIN_CPU = 4
CLOUD_RUN_GPU_MIN_MEMORY_MIB = 16 * 1024
_FARGATE_LAUNCH_TYPES = {"FARGATE", "FARGATE_SPOT"}


@dataclass(frozen=True)
class _Request:
    """A profile's request, validated and in neutral units."""

    profile: str
    pool_type: str
    cpu: float | None
    memory: str | None
    memory_mib: int | None
    gpu_count: int
    kind: GpuKind | None
    image: str | None
    env: dict[str, str]
    machine_type: str | None
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    gpu_node_label: str
    mig_profile: str | None
    spot: bool
    affinity: dict[str, Any]

    def fail(self, problem: str, fix: str) -> ProfileNotSatisfiableError:
        return ProfileNotSatisfiableError(self.profile, self.pool_type, problem, fix)


def normalize_pool_type(pool_type: str) -> str:
    """Map a work pool type to the worker type whose template it uses.

    Push pools (``ecs:push``, ``cloud-run-v2:push``, ``vertex-ai:push``) share their
    worker's template.

    Raises:
        ConfigurationError: knot cannot render job variables for this pool type.
    """
    base = pool_type.removesuffix(":push")
    if base not in POOL_TYPES:
        raise ConfigurationError(
            f"knot cannot render a compute profile for work pool type {pool_type!r}; "
            f"supported types are {', '.join(POOL_TYPES)}."
        )
    return base


def render_job_variables(
    profile: ComputeRequest,
    pool_type: str,
    job_variables: Mapping[str, Any] | None = None,
    pool_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The job variables that give a flow run ``profile`` on a ``pool_type`` work pool.

    Args:
        profile: The compute profile.
        pool_type: A work pool type, e.g. ``"kubernetes"`` (see :data:`POOL_TYPES`).
        job_variables: Job variables the deployment sets besides the profile; they are
            merged in, and any that contradict the profile raise an error.
        pool_defaults: Defaults of the work pool's job variables (not merged; used to
            check, e.g., that a Fargate pool can run the profile's CPU and memory).

    Returns:
        The merged job variables to deploy with.

    Raises:
        ProfileNotSatisfiableError: The pool type cannot satisfy the profile, or the
            job variables contradict it; the message says what to change.
        ConfigurationError: The pool type is not supported.
    """
    base_type = normalize_pool_type(pool_type)
    request = _request(profile, pool_type)
    _check_placement(request, base_type)
    ours = _RENDERERS[base_type](request)
    theirs = dict(job_variables or {})
    _check_against(request, base_type, ours, theirs, dict(pool_defaults or {}))
    return _merge(request, ours, theirs)


def _request(profile: ComputeRequest, pool_type: str) -> _Request:
    return _Request(
        profile=profile.display_name,
        pool_type=pool_type,
        cpu=profile.cpu,
        memory=profile.memory,
        memory_mib=quantities.memory_mib(profile.memory) if profile.memory else None,
        gpu_count=profile.gpu_count,
        kind=gpu_kind(profile.gpu_kind) if profile.gpu_kind else None,
        image=profile.image,
        env=dict(profile.env),
        machine_type=profile.machine_type,
        node_selector=dict(profile.node_selector),
        tolerations=[dict(t) for t in profile.tolerations],
        gpu_node_label=profile.gpu_node_label,
        mig_profile=profile.mig_profile,
        spot=profile.spot,
        affinity=dict(profile.affinity),
    )


def _env(request: _Request) -> dict[str, Any]:
    return {"env": dict(request.env)} if request.env else {}


def _common(request: _Request, variables: dict[str, Any]) -> dict[str, Any]:
    if request.image:
        variables["image"] = request.image
    variables.update(_env(request))
    return variables


# -- one renderer per pool type ---------------------------------------------------------
def _process(request: _Request) -> dict[str, Any]:
    env = dict(request.env)
    if request.gpu_count:
        devices = ",".join(str(i) for i in range(request.gpu_count))
        current = env.get("CUDA_VISIBLE_DEVICES")
        if current is not None and len(current.split(",")) != request.gpu_count:
            raise request.fail(
                f"env sets CUDA_VISIBLE_DEVICES={current!r} but gpu_count is "
                f"{request.gpu_count}.",
                "list as many device ids in CUDA_VISIBLE_DEVICES as gpu_count, or drop "
                "it from env and let knot set it.",
            )
        env.setdefault("CUDA_VISIBLE_DEVICES", devices)
    return {"env": env} if env else {}


def _docker(request: _Request) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if request.memory:
        variables["mem_limit"] = quantities.docker_memory(request.memory)
    create_kwargs: dict[str, Any] = {}
    if request.cpu:
        create_kwargs["nano_cpus"] = quantities.docker_nano_cpus(request.cpu)
    if request.gpu_count:
        create_kwargs["device_requests"] = [
            {"driver": "nvidia", "count": request.gpu_count, "capabilities": [["gpu"]]}
        ]
    if create_kwargs:
        variables["container_create_kwargs"] = create_kwargs
    return _common(request, variables)


def _kubernetes(request: _Request) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if request.cpu:
        variables["cpu_request"] = variables["cpu_limit"] = quantities.kubernetes_cpu(
            request.cpu
        )
    if request.memory:
        variables["memory_request"] = variables["memory_limit"] = request.memory
    node_selector = dict(request.node_selector)
    tolerations = list(request.tolerations)
    if request.gpu_count:
        if request.mig_profile:
            variables[mig_variable_key(request.mig_profile)] = str(request.gpu_count)
        else:
            variables["gpu_limit"] = str(request.gpu_count)
        if request.kind and request.gpu_node_label:
            if request.kind.kubernetes_label is None:
                raise request.fail(
                    f"GKE has no node label for GPU kind {request.kind.name!r}.",
                    "set gpu_node_label to '' and pick the nodes with node_selector, or "
                    "choose a GPU kind GKE offers.",
                )
            label = request.gpu_node_label
            current = node_selector.get(label)
            if current is not None and current != request.kind.kubernetes_label:
                raise _two_kinds(request, current, "its node_selector")
            node_selector[label] = request.kind.kubernetes_label
        if NVIDIA_GPU_TOLERATION not in tolerations:
            tolerations.append(dict(NVIDIA_GPU_TOLERATION))
    if request.spot:
        node_selector.setdefault(GKE_SPOT_LABEL, "true")
        if GKE_SPOT_TOLERATION not in tolerations:
            tolerations.append(dict(GKE_SPOT_TOLERATION))
    if request.affinity:
        variables["affinity"] = dict(request.affinity)
    if node_selector:
        variables["node_selector"] = node_selector
    if tolerations:
        variables["tolerations"] = tolerations
    return _common(request, variables)


def _ecs(request: _Request) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    cpu_units = quantities.ecs_cpu_units(request.cpu) if request.cpu else None
    if cpu_units:
        variables["cpu"] = cpu_units
    if request.memory_mib:
        variables["memory"] = request.memory_mib
    if request.spot:
        if request.gpu_count:
            raise request.fail(
                "spot GPUs on ECS come from an EC2 Spot capacity provider of your cluster, "
                "which knot cannot name.",
                "set spot to false and pass capacity_provider_strategy with your EC2 Spot "
                "capacity provider in the job variables.",
            )
        # The ECS worker's own spelling: it turns this into the FARGATE_SPOT capacity
        # provider strategy of the run task request.
        variables["launch_type"] = "FARGATE_SPOT"
    if request.gpu_count:
        variables["launch_type"] = "EC2"
        variables["requires_compatibilities"] = ["EC2"]
        variables["resource_requirements"] = [
            {"type": "GPU", "value": str(request.gpu_count)}
        ]
        if request.kind:
            if request.kind.ecs_instance_pattern is None:
                raise request.fail(
                    f"no EC2 instance family offers GPU kind {request.kind.name!r}.",
                    f"choose one of {_kinds_with('ecs_instance_family')}, or leave "
                    "gpu_kind empty to run on any GPU instance of the cluster.",
                )
            variables["placement_constraints"] = [{
                "type": "memberOf",
                "expression": f"attribute:ecs.instance-type =~ {request.kind.ecs_instance_pattern}",
            }]
    return _common(request, variables)


def _cloud_run(request: _Request) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if request.cpu:
        if request.cpu > CLOUD_RUN_MAX_CPU:
            raise request.fail(
                f"Cloud Run jobs have at most {CLOUD_RUN_MAX_CPU} vCPUs, not {request.cpu:g}.",
                f"lower cpu to {CLOUD_RUN_MAX_CPU} or less, or use a vertex-ai or "
                "kubernetes pool.",
            )
        variables["cpu"] = quantities.kubernetes_cpu(request.cpu)
    if request.memory_mib:
        if request.memory_mib > CLOUD_RUN_MAX_MEMORY_MIB:
            raise request.fail(
                f"Cloud Run jobs have at most 32Gi of memory, not {request.memory}.",
                "lower memory to 32Gi or less, or use a vertex-ai or kubernetes pool.",
            )
        variables["memory"] = request.memory
    if request.gpu_count:
        offered = _kinds_with("cloud_run_accelerator")
        if request.kind is None:
            raise request.fail(
                "Cloud Run needs to know the GPU kind.",
                f"set gpu_kind to one of {offered}.",
            )
        if request.kind.cloud_run_accelerator is None:
            raise request.fail(
                f"Cloud Run does not offer GPU kind {request.kind.name!r}.",
                f"use gpu_kind {offered}, or a vertex-ai or kubernetes pool.",
            )
        if request.gpu_count != 1:
            raise request.fail(
                f"a Cloud Run job instance has one GPU, not {request.gpu_count}.",
                "set gpu_count to 1, or use a vertex-ai or kubernetes pool.",
            )
        if (request.cpu or 0) < CLOUD_RUN_GPU_MIN_CPU or (
            request.memory_mib or 0
        ) < CLOUD_RUN_GPU_MIN_MEMORY_MIB:
            raise request.fail(
                "Cloud Run GPU instances need at least 4 vCPUs and 16Gi of memory.",
                "set cpu to 4 or more and memory to 16Gi or more.",
            )
        variables["gpu_limit"] = "1"
        variables["node_selector"] = {"accelerator": request.kind.cloud_run_accelerator}
    return _common(request, variables)


def _vertex(request: _Request) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    kind = request.kind
    if request.gpu_count:
        if kind is None:
            raise request.fail(
                "Vertex AI needs an accelerator type for GPUs.",
                f"set gpu_kind to one of {_kinds_with('vertex_accelerator')}.",
            )
        if kind.vertex_accelerator is None:
            raise request.fail(
                f"Vertex AI does not offer GPU kind {kind.name!r}.",
                f"use one of {_kinds_with('vertex_accelerator')}.",
            )
        variables["accelerator_type"] = kind.vertex_accelerator
        variables["accelerator_count"] = request.gpu_count
    if request.spot:
        variables["scheduling"] = {"strategy": "SPOT"}
    if request.machine_type:
        variables["machine_type"] = request.machine_type
    else:
        try:
            variables["machine_type"] = vertex_machine_type(
                kind if request.gpu_count else None,
                request.gpu_count,
                cpu=request.cpu,
                memory_mib=request.memory_mib,
            )
        except NoMachineFits as exc:
            raise request.fail(
                f"{exc}.",
                "set machine_type on the profile, or change cpu, memory or gpu_count.",
            ) from None
    return _common(request, variables)


def _check_placement(request: _Request, pool_type: str) -> None:
    """Refuse placement requests the pool type has no way to honour."""
    supported = PLACEMENT_SUPPORT.get(pool_type, frozenset())
    scheduling = [name for name in ("node_selector", "tolerations", "affinity")
                  if getattr(request, name) and name not in supported]
    if scheduling:
        raise request.fail(
            f"{', '.join(scheduling)} {'is a' if len(scheduling) == 1 else 'are'} "
            f"Kubernetes scheduling rule{'s' if len(scheduling) > 1 else ''}; a "
            f"{pool_type} pool has no nodes to select.",
            f"clear {', '.join(scheduling)}, or use a kubernetes pool.",
        )
    if request.mig_profile and "mig_profile" not in supported:
        raise request.fail(
            f"MIG slices (nvidia.com/mig-{request.mig_profile}) are Kubernetes resources; "
            f"a {pool_type} pool gives whole GPUs.",
            "clear mig_profile and ask for whole GPUs, or use a kubernetes pool.",
        )
    if request.spot and "spot" not in supported:
        raise request.fail(
            f"a {pool_type} pool has no spot / preemptible capacity knot can ask for.",
            "set spot to false, or use a kubernetes, vertex-ai or ecs pool.",
        )


_RENDERERS: dict[str, Callable[[_Request], dict[str, Any]]] = {
    "process": _process,
    "docker": _docker,
    "kubernetes": _kubernetes,
    "ecs": _ecs,
    "cloud-run-v2": _cloud_run,
    "vertex-ai": _vertex,
}


def _kinds_with(attribute: str) -> str:
    return ", ".join(k.name for k in GPU_KINDS.values() if getattr(k, attribute))


# -- merging with the deployment's own job variables -------------------------------------
def _two_kinds(
    request: _Request, other: str, source: str = "the job variables"
) -> ProfileNotSatisfiableError:
    assert request.kind is not None
    return request.fail(
        f"it asks for GPU kind {request.kind.name!r}, but the GPU kind in {source} is "
        f"{other!r}; a flow run gets one GPU kind.",
        f"keep one: remove the GPU kind from {source}, or use a profile with "
        f"gpu_kind {other!r}.",
    )


def _check_against(
    request: _Request,
    pool_type: str,
    ours: dict[str, Any],
    theirs: dict[str, Any],
    defaults: dict[str, Any],
) -> None:
    """Checks that need the deployment's job variables or the pool's defaults."""
    if pool_type == "ecs":
        _check_ecs(request, ours, theirs, defaults)
    if not request.gpu_count:
        return
    if pool_type == "vertex-ai":
        other = theirs.get("accelerator_type")
        if other and other != ours.get("accelerator_type"):
            raise _two_kinds(request, other)
    if pool_type in ("kubernetes", "cloud-run-v2"):
        for label, value in (ours.get("node_selector") or {}).items():
            other = (theirs.get("node_selector") or {}).get(label)
            if other is not None and other != value:
                raise _two_kinds(request, other)


def _check_ecs(
    request: _Request, ours: dict[str, Any], theirs: dict[str, Any], defaults: dict[str, Any]
) -> None:
    launch_type = theirs.get("launch_type")
    strategy = theirs.get("capacity_provider_strategy") or defaults.get(
        "capacity_provider_strategy"
    ) or []
    providers = [str(p.get("capacityProvider", "")) for p in strategy]
    on_fargate = any(p.startswith("FARGATE") for p in providers)
    if request.gpu_count:
        # knot sets the EC2 launch type over the pool's default launch type, but a
        # capacity provider strategy takes precedence over any launch type.
        if launch_type in _FARGATE_LAUNCH_TYPES or on_fargate:
            asked = launch_type or "a FARGATE capacity provider"
            raise request.fail(
                f"it asks for {request.gpu_count} GPU(s), but Fargate has no GPUs and the "
                f"job variables ask for {asked}.",
                "remove launch_type/capacity_provider_strategy from the job variables "
                "(knot sets the EC2 launch type), or use a profile with gpu_count 0.",
            )
        return
    effective = launch_type or defaults.get("launch_type") or "FARGATE"
    if effective in _FARGATE_LAUNCH_TYPES or on_fargate:
        problem = fargate_size_problem(ours.get("cpu"), ours.get("memory"))
        if problem:
            raise request.fail(
                f"{problem} (cpu {request.cpu}, memory {request.memory}).",
                "pick a Fargate size (docs/deploy.md lists them), or deploy with "
                "launch_type EC2.",
            )


def _merge(request: _Request, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    merged = dict(theirs)
    for key, value in ours.items():
        if key not in theirs:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(theirs[key], dict):
            merged[key] = _merge_mapping(request, key, value, theirs[key])
        elif isinstance(value, list) and isinstance(theirs[key], list) and key == "tolerations":
            merged[key] = theirs[key] + [item for item in value if item not in theirs[key]]
        elif theirs[key] != value:
            raise _conflict(request, key, value, theirs[key])
    return merged


def _merge_mapping(
    request: _Request, key: str, ours: dict[str, Any], theirs: dict[str, Any]
) -> dict[str, Any]:
    merged = dict(theirs)
    for sub_key, value in ours.items():
        if sub_key in theirs and theirs[sub_key] != value:
            raise _conflict(request, f"{key}.{sub_key}", value, theirs[sub_key])
        merged[sub_key] = value
    return merged


def _conflict(request: _Request, key: str, ours: Any, theirs: Any) -> ProfileNotSatisfiableError:
    return request.fail(
        f"the job variable {key!r} is {theirs!r} in the deployment's job variables but "
        f"the profile sets it to {ours!r}.",
        f"remove {key!r} from the job variables, or change the profile.",
    )
