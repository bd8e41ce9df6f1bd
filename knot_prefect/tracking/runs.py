"""``tracked_run``: an MLflow run tied to the Prefect run around it, resumed on retries."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from knot_prefect.run_context import log_in_run
from knot_prefect.tracking.fluent import fluent_store
from knot_prefect.tracking.links import link_run
from knot_prefect.tracking.prefect_context import PrefectRunInfo, current_prefect_run
from knot_prefect.tracking.resolve import resolve_tracking

if TYPE_CHECKING:
    from mlflow import ActiveRun
    from mlflow.tracking import MlflowClient

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

RUN_KEY_TAG = "knot.run_key"
RESUMED_TAG = "knot.resumed_attempts"

# The MLflow run opened by the innermost ``tracked_run``; Prefect copies context
# variables into task threads, so a task's nested run finds its flow's run here.
_current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "knot_current_mlflow_run", default=None
)

# How many tracked runs with a given name each attempt of a Prefect run has opened: the
# n-th run of a retried attempt resumes the n-th run of the failed one.
_ordinals: Counter[tuple[str, int, str]] = Counter()
_ordinals_lock = threading.Lock()
_experiment_ids: dict[tuple[str, str], str] = {}


@contextlib.contextmanager
def tracked_run(
    tracking: MLflowTracking | str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, str] | None = None,
) -> Iterator[ActiveRun]:
    """Open an MLflow run linked to the current Prefect run; resume it on a retry.

    Inside the block the block's store is MLflow's active store and its credentials are
    applied, so ``mlflow.log_metric``, ``mlflow.log_model`` and autologging all work.
    The run is tagged with the Prefect flow-run id and URL, flow name, deployment,
    work pool, task run and git commit where known, plus the block's ``default_tags``;
    a Prefect artifact links back to the MLflow run. When a Prefect task (or flow) is
    retried, the same MLflow run is reopened instead of a new one. The run ends
    ``FINISHED``, or ``FAILED`` when the block raises.

    Args:
        tracking: The ``MLflowTracking`` block, its document name, or None for the
            embedded store.
        run_name: Name of the MLflow run; defaults to the task run's (or flow run's) name.
        nested: Open the run as a child of the enclosing tracked run (in this thread, or
            of the flow when called from one of its tasks).
        tags: More tags for this run.

    Yields:
        MLflow's active run.

    Raises:
        TrackingUnavailableError: The store cannot be reached after the block's bounded
            retries; the message names the URI, never a secret.

    Examples:
        >>> import mlflow
        >>> from knot_prefect.blocks.mlflow_tracking import MLflowTracking
        >>> tracking = MLflowTracking(experiment_name="examples")
        >>> with tracked_run(tracking, run_name="example") as run:
        ...     mlflow.log_metric("rows", 3)
        >>> tracking.get_client().get_run(run.info.run_id).data.metrics["rows"]
        3.0
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    block = resolve_tracking(tracking)
    prefect_run = current_prefect_run()
    name = run_name or prefect_run.task_run_name or prefect_run.flow_run_name
    with block.session(), fluent_store(block):
        if block.is_http():
            # Local stores need no probing; a server gets bounded retries and a clear error.
            block.ensure_reachable()
        experiment_id = _experiment_id(block)
        client = block.get_client()
        run_key = _run_key(prefect_run, name)
        resume_id = None
        if run_key and prefect_run.attempt > 1:
            # Only a retry can have an earlier run to resume: the key holds the run id.
            resume_id = _find_run(client, experiment_id, run_key)

        parent_id = None
        if nested and mlflow.active_run() is None:
            parent_id = _current_run_id.get()
        run_tags = {**block.default_tags, **prefect_run.tags(), **(tags or {})}
        if run_key:
            run_tags[RUN_KEY_TAG] = run_key
        if prefect_run.git_commit:
            run_tags.setdefault("mlflow.source.git.commit", prefect_run.git_commit)

        linking: threading.Thread | None = None
        if resume_id is not None:
            run = mlflow.start_run(run_id=resume_id, nested=nested, parent_run_id=parent_id)
            mlflow.set_tag(RESUMED_TAG, str(prefect_run.attempt - 1))
        else:
            def start(experiment: str) -> mlflow.ActiveRun:
                return mlflow.start_run(experiment_id=experiment, run_name=name, nested=nested,
                                        parent_run_id=parent_id, tags=run_tags)

            try:
                run = start(experiment_id)
            except MlflowException:
                # The cached experiment may have been deleted since: look it up again.
                _experiment_ids.pop((block.resolved_tracking_uri(), block.experiment_name), None)
                experiment_id = _experiment_id(block)
                run = start(experiment_id)
            linking = _in_background(
                link_run, block, experiment_id, run.info.run_id, run.info.run_name or "run"
            )
        log_in_run(
            f"{'Resumed' if resume_id else 'Started'} MLflow run {run.info.run_id} "
            f"({run.info.run_name}) at {block.safe_uri()}"
        )
        token = _current_run_id.set(run.info.run_id)
        try:
            with run:
                yield run
        finally:
            _current_run_id.reset(token)
            if linking is not None:
                linking.join()


def _experiment_id(block: MLflowTracking) -> str:
    """The block's experiment id, looked up once per process and store (saves a query)."""
    key = (block.resolved_tracking_uri(), block.experiment_name)
    with _ordinals_lock:
        cached = _experiment_ids.get(key)
    if cached is not None:
        return cached
    experiment_id = block.get_or_create_experiment_id()
    with _ordinals_lock:
        _experiment_ids[key] = experiment_id
    return experiment_id


def _in_background(function: Callable[..., object], *args: object) -> threading.Thread:
    """Run ``function`` in a thread with this context (the Prefect run's), off the hot path.

    The link artifact is one API round trip; it overlaps with the user's code and is
    joined when the run closes. A failure to write it is logged, never raised.
    """
    context = contextvars.copy_context()

    def target() -> None:
        try:
            context.run(function, *args)
        except Exception as exc:
            log_in_run(f"Could not write the MLflow link artifact: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=target, name="knot-mlflow-link", daemon=True)
    thread.start()
    return thread


def _run_key(prefect_run: PrefectRunInfo, name: str | None) -> str | None:
    """Identify this tracked run across retries of the Prefect run around it."""
    scope = prefect_run.scope_id
    if scope is None:
        return None  # Outside Prefect nothing is retried: always a fresh run.
    with _ordinals_lock:
        counter_key = (scope, prefect_run.attempt, name or "")
        _ordinals[counter_key] += 1
        ordinal = _ordinals[counter_key]
    return f"{scope}/{name or ''}/{ordinal}"


def _find_run(client: MlflowClient, experiment_id: str, run_key: str) -> str | None:
    escaped = run_key.replace("'", "\\'")
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{escaped}'", max_results=1
    )
    return str(runs[0].info.run_id) if runs else None
