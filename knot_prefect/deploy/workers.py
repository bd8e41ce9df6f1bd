"""Which Prefect worker class serves each work pool type.

The classes live in optional integrations (prefect-docker, prefect-kubernetes,
prefect-aws, prefect-gcp), so they are imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from knot_prefect.compute.job_variables import normalize_pool_type
from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from prefect.workers.base import BaseWorker

# pool type -> (module, class, the extra of knot-prefect that installs it)
WORKER_CLASSES: dict[str, tuple[str, str, str]] = {
    "process": ("prefect.workers.process", "ProcessWorker", ""),
    "docker": ("prefect_docker.worker", "DockerWorker", "docker"),
    "kubernetes": ("prefect_kubernetes.worker", "KubernetesWorker", "kubernetes"),
    "ecs": ("prefect_aws.workers.ecs_worker", "ECSWorker", "aws"),
    "cloud-run-v2": ("prefect_gcp.workers.cloud_run_v2", "CloudRunWorkerV2", "gcp"),
    "vertex-ai": ("prefect_gcp.workers.vertex", "VertexAIWorker", "vertex"),
}


def worker_class(pool_type: str) -> type[BaseWorker]:  # type: ignore[type-arg]
    """Import the worker class of a work pool type.

    Args:
        pool_type: A work pool type, e.g. ``"kubernetes"``.

    Returns:
        The worker class, e.g. ``prefect_kubernetes.worker.KubernetesWorker``.

    Raises:
        ConfigurationError: The pool type is unsupported or its integration is missing;
            the message names the extra to install.
    """
    module_name, class_name, extra = WORKER_CLASSES[normalize_pool_type(pool_type)]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"The {pool_type!r} worker needs {module_name.split('.')[0]}, which is not "
            f"installed: pip install 'knot-prefect[{extra}]'."
        ) from exc
    cls: type[BaseWorker] = getattr(module, class_name)  # type: ignore[type-arg]
    return cls
