"""Running one step of a flow on another work pool: a GPU step inside a CPU flow.

:func:`run_step_on` runs a function or task as a run of the ``knot-step`` flow
(:func:`step_flow`) deployed on another work pool, as a child run of the calling flow
run (the Prefect UI shows it under its parent), waits for it and returns its value.
Arguments and the value travel through a result storage block both sides reach (a
local folder both machines mount, S3, GCS), as Prefect persisted results:

- the parent writes the arguments to the storage, the child reads them, runs the step
  and persists its value there; the parent reads it from the child's final state;
- a failed or crashed child fails the parent with the child's message;
- past ``timeout`` the child is cancelled and the parent fails;
- a parent that is cancelled (or stops in any other way while waiting) cancels the
  child; the Prefect server's cancellation service also cancels the subflow runs of a
  cancelled parent.

Deploy the step flow once per pool with ``knot deploy step_flow --pool POOL``: the
deployment is named after the pool, so ``run_step_on("POOL", ...)`` finds it.

Examples:
    >>> step_deployment("gke-l4")
    'knot-step/gke-l4'
    >>> step_deployment("knot-step/a100-large")
    'knot-step/a100-large'
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from prefect import flow, get_run_logger

from knot_prefect.errors import ConfigurationError, KnotError

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.schemas.objects import FlowRun
    from prefect.filesystems import WritableFileSystem
    from prefect.results import ResultStore

STEP_FLOW_NAME = "knot-step"
_INPUTS_PREFIX = "knot-step-inputs"


class RemoteStepError(KnotError):
    """A step run on another work pool failed, crashed, was cancelled or timed out.

    Attributes:
        flow_run_id: The child flow run.
        state_name: Its final state (``"TimedOut"`` when the parent stopped waiting).
    """

    def __init__(self, message: str, flow_run_id: UUID, state_name: str) -> None:
        self.flow_run_id = flow_run_id
        self.state_name = state_name
        super().__init__(message)


def step_deployment(target: str) -> str:
    """The deployment that runs steps for ``target``: a work pool or ``flow/deployment``.

    A bare pool name means the ``knot-step`` deployment ``knot deploy`` names after it.
    """
    target = target.strip()
    if not target:
        raise ConfigurationError(
            "run a step on a work pool name or a 'knot-step/DEPLOYMENT' name, not ''."
        )
    return target if "/" in target else f"{STEP_FLOW_NAME}/{target}"


def step_path(step: Callable[..., Any] | str) -> str:
    """The ``module:attribute`` a child process imports ``step`` by.

    Raises:
        ConfigurationError: ``step`` is not importable by name (defined in ``__main__``,
            inside a function, or a lambda).
    """
    if isinstance(step, str):
        module_text, sep, attribute = step.partition(":")
        if not sep or not module_text or not attribute:
            raise ConfigurationError(
                f"step {step!r} is not 'package.module:function'; give the import path "
                "of a module-level function or task."
            )
        return step
    function = getattr(step, "fn", step)  # a Prefect task: the module holds the task
    module_name: str | None = getattr(function, "__module__", None)
    module = importlib.import_module(module_name) if module_name else None
    names = [name for name, value in vars(module).items() if value is step] if module else []
    if module_name in (None, "__main__") or not names:
        raise ConfigurationError(
            f"step {getattr(function, '__qualname__', step)!r} cannot be imported by "
            "another process (it is not a module-level name of an importable module). "
            "Move it to a module installed on the other pool's workers."
        )
    return f"{module_name}:{names[0]}"


def _import_step(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.partition(":")
    try:
        step: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"step {path!r} cannot be imported on this worker ({exc}); install the module "
            "that defines it where the step's work pool runs."
        ) from exc
    return step


def storage_slug(storage: WritableFileSystem | str | None) -> str:
    """The ``block-type/name`` of a saved result storage block both sides can load.

    Args:
        storage: A saved storage block, its slug, or None for Prefect's default
            result storage block (``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK``).

    Raises:
        ConfigurationError: No storage was given and there is no default, or the block
            is not saved (the other side could not load it).
    """
    if storage is None:
        from prefect.settings import get_current_settings

        default = get_current_settings().results.default_storage_block
        if not default:
            raise ConfigurationError(
                "a step on another work pool returns its value through result storage "
                "both sides reach, and none was given: pass storage= (a saved "
                "LocalFileSystem on a shared folder, S3Bucket or GcsBucket block) or set "
                "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK to its 'block-type/name'."
            )
        return default
    if isinstance(storage, str):
        return storage
    name = getattr(storage, "_block_document_name", None)
    if not name:
        raise ConfigurationError(
            f"result storage {type(storage).__name__} is not saved, so the step's worker "
            "cannot load it; save it first (storage.save('step-results')) and pass it or "
            "its name."
        )
    return f"{storage.get_block_type_slug()}/{name}"


def _store(slug: str) -> ResultStore:
    from prefect.blocks.core import Block
    from prefect.results import ResultStore
    from prefect.serializers import PickleSerializer

    block = Block.load(slug)
    return ResultStore(result_storage=block, serializer=PickleSerializer())


@flow(name=STEP_FLOW_NAME, log_prints=True)
def step_flow(
    step: str, inputs: str, storage: str, gpus: int = 0, gpu_host: str | None = None
) -> Any:
    """Run one step of another flow run, with the arguments it stored in ``storage``.

    The value is persisted to the same storage and returned as the run's result, so the
    parent reads it from this run's final state.

    Args:
        step: ``module:attribute`` of the function or task to run.
        inputs: Storage key of the pickled ``(args, kwargs)``.
        storage: ``block-type/name`` of the result storage block.
        gpus: GPU slots to lease on this host first (see
            :func:`~knot_prefect.compute.gpu_slots.gpu_lease`); 0 for none.
        gpu_host: The GPU host; the worker's ``KNOT_GPU_HOST`` when None.
    """
    from knot_prefect.compute.gpu_slots import gpu_lease

    store = _store(storage)
    args, kwargs = store.read(inputs).result
    function = _import_step(step)
    get_run_logger().info("Running step %s", step)
    with gpu_lease(gpus, gpu_host) if gpus else nullcontext():
        value = function(*args, **kwargs)
    record = store.create_result_record(value)
    store.persist_result_record(record)
    return record


def run_step_on(
    target: str,
    step: Callable[..., Any] | str,
    /,
    *args: Any,
    storage: WritableFileSystem | str | None = None,
    gpus: int = 0,
    gpu_host: str | None = None,
    timeout: float | None = None,
    poll_interval: float = 2.0,
    **kwargs: Any,
) -> Any:
    """Run ``step(*args, **kwargs)`` on another work pool and return its value.

    Call it from a flow: the step runs as a child flow run of the ``knot-step``
    deployment of ``target``. ``target`` and ``step`` are positional, so the step may
    take keyword arguments of the same names.

    Args:
        target: A work pool name (its ``knot-step`` deployment) or
            ``"knot-step/DEPLOYMENT"``.
        step: A module-level function or task, or its ``"module:attribute"`` path; it
            must be importable on the target pool's workers.
        *args: Positional arguments of the step (pickled to ``storage``).
        storage: Result storage block both sides reach, saved, or its slug; Prefect's
            default result storage block when None.
        gpus: GPU slots the child leases on its host before running the step.
        gpu_host: The child's GPU host; when given, a request for more GPUs than it
            declares is refused here, before the child run is created.
        timeout: Seconds to wait for the child; past them it is cancelled.
        poll_interval: Seconds between checks of the child's state.
        **kwargs: Keyword arguments of the step.

    Returns:
        The step's return value.

    Raises:
        RemoteStepError: The child failed, crashed, was cancelled or timed out; the
            message carries the child's own message.
        GpuRequestError: ``gpus`` is more than ``gpu_host`` declares.
        ConfigurationError: The step is not importable by name, or no result storage.

    Examples:
        ```python
        from knot_prefect.compute import run_step_on

        @flow
        def pipeline():
            rows = prepare()
            model_uri = run_step_on("gpu-pool", fit, rows, storage="s3-bucket/steps")
        ```
    """
    from prefect.deployments import run_deployment

    deployment = step_deployment(target)
    path = step_path(step)
    slug = storage_slug(storage)
    if gpus and gpu_host:
        from knot_prefect.compute.gpu_slots import check_gpu_request

        check_gpu_request(gpus, gpu_host)
    store: ResultStore = _store(slug)
    key = f"{_INPUTS_PREFIX}/{uuid4().hex}"
    store.write((args, kwargs), key=key)
    child: FlowRun = run_deployment(  # type: ignore[assignment]
        deployment,
        parameters={"step": path, "inputs": key, "storage": slug, "gpus": gpus,
                    "gpu_host": gpu_host},
        timeout=0,
        as_subflow=True,
    )
    get_run_logger().info("Step %s runs as flow run %s of %s", path, child.name, deployment)
    state = _wait(child, deployment, timeout, poll_interval)
    if not state.is_completed():
        raise RemoteStepError(
            f"step {path} on {deployment} ended {state.name} (flow run {child.name}): "
            f"{state.message or 'no message'}",
            child.id,
            state.name,
        )
    return state.result()


def _wait(child: FlowRun, deployment: str, timeout: float | None, poll_interval: float) -> Any:
    """Poll until the child is final; cancel it when the parent stops waiting for any reason."""
    from prefect.client.orchestration import get_client

    deadline = None if timeout is None else time.monotonic() + timeout
    finished = False
    try:
        with get_client(sync_client=True) as client:
            while True:
                state = client.read_flow_run(child.id).state
                if state is not None and state.is_final():
                    finished = True
                    return state
                if deadline is not None and time.monotonic() > deadline:
                    raise RemoteStepError(
                        f"step on {deployment} did not finish within {timeout:g}s "
                        f"(flow run {child.name}); it was cancelled. Raise timeout= or "
                        "check the pool's workers.",
                        child.id,
                        "TimedOut",
                    )
                time.sleep(poll_interval)
    finally:
        if not finished:
            _cancel(child.id)


def _cancel(flow_run_id: UUID) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            flow_run_id, Cancelling(message="The parent flow run stopped waiting for it."),
            force=True,
        )
