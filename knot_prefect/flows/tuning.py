"""``tuning_flow``: a random or grid search whose trials run in parallel as Prefect tasks.

Each trial is a nested MLflow run under one search run; the best trial's model is
registered and receives the ``challenger`` alias; failed trials are recorded and the
search goes on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from prefect import flow, get_run_logger, unmapped

from knot_prefect.errors import ConfigurationError
from knot_prefect.tuning.trial import TuningFailedError

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.tuning.trial import TrialRecord

TEMPORARY_CLUSTERS = ("dask", "local")


@flow(name="knot-tuning", log_prints=True)
def tuning_flow(
    train_fn: Callable[..., Any] | str,
    search_space: dict[str, Any],
    trials: int | None,
    metric: str,
    mode: Literal["max", "min"] = "max",
    strategy: Literal["random", "grid"] = "random",
    seed: int | None = None,
    tracking: Any = None,
    model_name: str | None = None,
    alias: str = "challenger",
    runner: str | None = None,
    dask_workers: int = 2,
    trial_retries: int = 0,
    search_name: str | None = None,
    spec: str | None = None,
    trial_resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Search hyperparameters: one Prefect task and one nested MLflow run per trial.

    Steps: plan the trials (every grid combination, or ``trials`` seeded random draws)
    -> open the search's MLflow run -> map the trials over the task runner (threads of
    this process, or Dask workers) -> record failures (a ``FAILED`` run with the error;
    the search goes on) -> rank by ``metric`` -> register the best trial's model and
    give it ``alias`` -> Prefect artifacts: the ranked trials table and a summary.

    Args:
        train_fn: ``fn(params) -> metrics | (metrics, model) | TrialOutput``, or its
            import path ``"package.module:function"`` (what a deployment passes). It runs
            inside the trial's MLflow run, so it may log more itself. See
            :mod:`knot_prefect.tuning.trial` for the models it may return.
        search_space: Parameter name -> list of values, distribution (``{"kind":
            "uniform"|"log_uniform"|"int"|"choice", ...}``) or constant; see
            :mod:`knot_prefect.tuning.space`.
        trials: How many points a random search draws; for a grid None (the whole
            grid) or an upper bound the grid must not exceed.
        metric: The returned metric that ranks the trials.
        mode: ``"max"`` when a larger ``metric`` is better, ``"min"`` otherwise.
        strategy: ``"random"`` or ``"grid"``.
        seed: Seed of the random draws; None draws one (it is logged, so a search can
            be repeated).
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded
            store. With Dask workers in other processes (or machines) use an MLflow
            server: SQLite does not take many writers well.
        model_name: Registered model that receives the best trial's model; None
            registers nothing.
        alias: The alias the best trial's version receives (never ``"champion"``:
            the champion changes only through ``promote``).
        runner: None for the flow's own task runner (threads by default, or the
            ``DaskTaskRunner`` given with ``tuning_flow.with_options(task_runner=...)``);
            ``"dask"`` (or ``"local"``) for a temporary local Dask cluster; or
            ``"tcp://HOST:PORT"`` of a running Dask scheduler; ``"ray"`` for a temporary
            local Ray (``dask_workers`` CPUs) or ``"ray://HOST:PORT"`` of a Ray cluster
            (prefect-ray's ``RayTaskRunner``).
        dask_workers: Worker processes of the temporary local cluster (one thread each).
        trial_retries: Retries of a failed trial task; a retry resumes its MLflow run.
        search_name: Name of the search's MLflow run (default ``"tuning-<metric>"``).
        spec: ModelSpec block document name, or the path of a model spec YAML file;
            gives ``model_name`` and ``tracking`` when they are not passed.
        trial_resources: On Ray, what each trial asks for (``num_cpus``, ``num_gpus``,
            ``memory``, ``resources``), e.g. ``{"num_cpus": 1, "num_gpus": 1}``.

    Returns:
        A summary: the search's MLflow run, the best trial (number, parameters,
        metrics, run), finished and failed counts, the registered version, and every
        trial in ranking order.

    Raises:
        SearchSpaceError: The search space (naming the parameter), strategy or
            ``trials`` is unusable; nothing was run.
        ConfigurationError: Another parameter is wrong; nothing was run.
        TuningFailedError: Every trial failed (the search's run ends ``FAILED``).

    Examples:
        ```python
        from knot_prefect.flows import tuning_flow

        tuning_flow(
            "knot_prefect.demo.tuning:train_churn_trial",
            {"learning_rate": {"kind": "log_uniform", "low": 0.01, "high": 0.3},
             "max_depth": {"kind": "int", "low": 2, "high": 5}},
            trials=16,
            metric="roc_auc",
            runner="tcp://scheduler:8786",
            tracking="prod-mlflow",
            model_name="churn-model",
        )
        ```
    """
    import mlflow

    from knot_prefect.flows._parameters import settle
    from knot_prefect.flows._support import publish_summary
    from knot_prefect.import_paths import import_callable
    from knot_prefect.tracking.resolve import resolve_tracking
    from knot_prefect.tracking.runs import tracked_run
    from knot_prefect.tuning.report import rank, records_json
    from knot_prefect.tuning.space import plan_trials
    from knot_prefect.tuning.trial import ROLE_TAG

    logger = get_run_logger()
    given = settle("tuning_flow", spec)
    model_name = given.value(model_name, "model_name")
    tracking = given.value(tracking, "tracking")
    _check_options(metric, mode, alias, runner, dask_workers, trial_retries,
                   trial_resources)
    function = import_callable(train_fn) if isinstance(train_fn, str) else train_fn
    if not callable(function):
        raise ConfigurationError(
            f"train_fn must be a function or 'package.module:function', not {train_fn!r}."
        )
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    points = plan_trials(search_space, trials, strategy, seed)
    block = _portable(resolve_tracking(tracking))
    if runner is not None and block.resolved_tracking_uri().startswith("sqlite:"):
        logger.warning(
            "Trials on Dask write to the SQLite store %s from several processes; under "
            "load SQLite may answer 'database is locked'. Use an MLflow server "
            "(MLflowTracking(tracking_uri='http://...')) for parallel searches.",
            block.safe_uri(),
        )
    logger.info("Planned %d %s-search trials (seed %d).", len(points), strategy, seed)

    name = search_name or f"tuning-{metric}"
    with tracked_run(block, run_name=name, tags={ROLE_TAG: "search"}) as search:
        parent_id = search.info.run_id
        mlflow.log_params({
            "strategy": strategy, "trials": len(points), "metric": metric, "mode": mode,
            "seed": seed, "train_fn": _describe(train_fn),
        })
        mlflow.log_dict(_plain(search_space), "search_space.json")
        records = _run_trials(function, points, metric, block, parent_id, runner,
                              dask_workers, trial_retries, trial_resources)
        _record_failures(block, search.info.experiment_id, parent_id, records)
        ranked = rank(records, metric, mode)
        finished = [r for r in ranked if r.status == "FINISHED"]
        failed = [r for r in ranked if r.status != "FINISHED"]
        mlflow.log_dict({"trials": records_json(ranked)}, "trials.json")
        mlflow.log_metrics({"trials_finished": len(finished), "trials_failed": len(failed)})
        _publish_table(ranked, metric)
        if not finished:
            errors = "; ".join(f"trial {r.index}: {_first_line(r.error)}" for r in failed[:3])
            raise TuningFailedError(
                f"All {len(failed)} trials of the search failed, so there is no best "
                f"trial. First errors: {errors}. See the failed runs under MLflow run "
                f"{parent_id} (tag knot.tuning.error, artifact error.txt)."
            )
        best = finished[0]
        mlflow.log_metric(f"best_{metric}", best.metrics[metric])
        mlflow.log_params({f"best.{k}": str(v)[:6000] for k, v in best.params.items()})
        mlflow.set_tags({"knot.tuning.best_run_id": best.run_id or "",
                         "knot.tuning.best_trial": str(best.index)})
    logger.info("Best trial %d: %s=%.6g with %s (%d finished, %d failed).", best.index,
                metric, best.metrics[metric], best.params, len(finished), len(failed))

    registered = _register_best(best, model_name, alias, block, parent_id, metric, logger)
    summary: dict[str, Any] = {
        "search_run_id": parent_id,
        "strategy": strategy,
        "seed": seed,
        "metric": metric,
        "mode": mode,
        "trials_finished": len(finished),
        "trials_failed": len(failed),
        "best_trial": best.index,
        "best_params": best.params,
        "best_metrics": best.metrics,
        "best_run_id": best.run_id,
        "model_name": model_name,
        "model_version": registered,
        "alias": alias if registered is not None else None,
        "trials": records_json(ranked),
    }
    publish_summary(
        "tuning-summary",
        "Tuning run summary",
        [
            ("strategy / seed", f"{strategy} / {seed}"),
            ("trials finished / failed", f"{len(finished)} / {len(failed)}"),
            (f"best {metric} ({mode})", f"{best.metrics[metric]:.6g} (trial {best.index})"),
            ("best params", best.params),
            ("model", f"{model_name} v{registered} @{alias}" if registered else "-"),
            ("MLflow", f"{block.safe_uri()} (search run {parent_id})"),
        ],
        notes="Every trial, ranked: the `tuning-trials` table artifact.",
    )
    return summary


def _check_options(metric: str, mode: str, alias: str, runner: str | None,
                   dask_workers: int, trial_retries: int,
                   trial_resources: dict[str, Any] | None = None) -> None:
    from knot_prefect.flows.ray_runner import is_ray_runner, task_resources

    if not metric:
        raise ConfigurationError("metric is empty: name the metric train_fn returns.")
    if mode not in ("max", "min"):
        raise ConfigurationError(f"mode must be 'max' or 'min', not {mode!r}.")
    if alias == "champion":
        raise ConfigurationError(
            "alias='champion' is refused: a search proposes a challenger; the champion "
            "moves only through promote, which compares both on the same data."
        )
    if runner is not None and runner not in TEMPORARY_CLUSTERS and "://" not in runner \
            and not is_ray_runner(runner):
        raise ConfigurationError(
            f"runner {runner!r} is not a scheduler address: pass None (the flow's task "
            "runner), 'dask' for a temporary local cluster, 'tcp://HOST:PORT', 'ray' "
            "for a temporary local Ray or 'ray://HOST:PORT'."
        )
    if trial_resources and not is_ray_runner(runner):
        raise ConfigurationError(
            "trial_resources are asked of Ray: pass runner='ray' or 'ray://HOST:PORT' "
            "with them (Dask workers and threads take every trial as it comes).")
    task_resources(trial_resources)
    if dask_workers < 1:
        raise ConfigurationError(f"dask_workers must be at least 1, not {dask_workers}.")
    if trial_retries < 0:
        raise ConfigurationError(f"trial_retries must be 0 or more, not {trial_retries}.")


def _portable(block: MLflowTracking) -> MLflowTracking:
    """The block with its store spelled out: workers may have another KNOT_HOME."""
    if block.tracking_uri:
        return block
    return block.model_copy(update={
        "tracking_uri": block.resolved_tracking_uri(),
        "artifact_location": block.resolved_artifact_location(),
    })


def _run_trials(function: Callable[..., Any], points: list[dict[str, Any]], metric: str,
                block: MLflowTracking, parent_id: str, runner: str | None, workers: int,
                retries: int, resources: dict[str, Any] | None = None) -> list[TrialRecord]:
    """Map the trials over the chosen task runner and wait for every one of them."""
    from knot_prefect.flows.dask_runner import LOCAL_CLUSTER, started_dask_runner
    from knot_prefect.flows.ray_runner import is_ray_runner, started_ray_runner
    from knot_prefect.tuning.trial import LOCK_RETRIES, RetryTrial, run_trial

    trial = run_trial.with_options(retries=retries + LOCK_RETRIES, retry_delay_seconds=1,
                                   retry_condition_fn=RetryTrial(retries))
    parameters: dict[str, Any] = {
        "train_fn": unmapped(function),
        "params": points,
        "index": list(range(len(points))),
        "metric": unmapped(metric),
        "tracking": unmapped(block),
        "parent_run_id": unmapped(parent_id),
    }
    if runner is None:
        futures = trial.map(**parameters)
        return [_record(future, point, i) for i, (future, point)
                in enumerate(zip(futures, points, strict=True))]
    if is_ray_runner(runner):
        with started_ray_runner(runner, workers, resources) as ray_runner:
            futures = ray_runner.map(trial, parameters)  # type: ignore[arg-type]
            return [_record(future, point, i) for i, (future, point)
                    in enumerate(zip(futures, points, strict=True))]
    address = LOCAL_CLUSTER if runner in TEMPORARY_CLUSTERS else runner
    with started_dask_runner(address, workers) as dask_runner:
        futures = dask_runner.map(trial, parameters)  # type: ignore[arg-type]
        return [_record(future, point, i) for i, (future, point)
                in enumerate(zip(futures, points, strict=True))]


def _record(future: Any, params: dict[str, Any], index: int) -> TrialRecord:
    """The trial's record from its final state; a failure becomes a FAILED record."""
    from knot_prefect.tuning.trial import TrialFailedError, TrialRecord

    future.wait()
    state = future.state
    if state.is_completed():
        return state.result()  # type: ignore[no-any-return]
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, TrialFailedError):
        return TrialRecord(index, dict(params), "FAILED", run_id=outcome.run_id,
                           error=outcome.error)
    if isinstance(outcome, BaseException):
        error = f"{type(outcome).__name__}: {outcome}"
    else:
        error = f"{state.name}: {state.message or 'no message'}"
    return TrialRecord(index, dict(params), "FAILED", error=error)


def _record_failures(block: MLflowTracking, experiment_id: str, parent_id: str,
                     records: list[TrialRecord]) -> None:
    """Give every failed trial a FAILED MLflow run with its error.

    A trial whose process died (or that never started) left a RUNNING run or none:
    the run is closed as FAILED, or created, so the search's children list every trial.
    """
    from mlflow.entities import Param, RunTag

    from knot_prefect.tuning.trial import (
        ERROR_TAG,
        PARENT_TAG,
        ROLE_TAG,
        TRIAL_TAG,
        trial_run_name,
    )

    missing = [r for r in records if r.status != "FINISHED" and r.run_id is None]
    if not missing:
        return
    client = block.get_client()
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'"
    )
    by_trial = {run.data.tags.get(TRIAL_TAG): run for run in children}
    for record in missing:
        error = (record.error or "the trial did not finish")[:4000]
        existing = by_trial.get(str(record.index))
        if existing is not None:
            run_id = existing.info.run_id
        else:
            run_id = client.create_run(
                experiment_id,
                run_name=trial_run_name(record.index),
                tags={PARENT_TAG: parent_id, TRIAL_TAG: str(record.index), ROLE_TAG: "trial"},
            ).info.run_id
            client.log_batch(run_id, params=[
                Param(k, str(v)[:6000]) for k, v in record.params.items()])
        client.log_batch(run_id, tags=[RunTag(ERROR_TAG, error)])
        client.set_terminated(run_id, status="FAILED")
        record.run_id = run_id


def _publish_table(ranked: list[TrialRecord], metric: str) -> None:
    from prefect.artifacts import create_table_artifact

    from knot_prefect.tuning.report import table_rows

    create_table_artifact(
        table=table_rows(ranked, metric),
        key="tuning-trials",
        description=f"Trials of the search ranked by {metric}; failed trials last.",
    )


def _register_best(best: TrialRecord, model_name: str | None, alias: str,
                   block: MLflowTracking, parent_id: str, metric: str,
                   logger: Any) -> int | None:
    from knot_prefect.tasks import register_model
    from knot_prefect.tuning.registry import assign_alias

    if model_name is None:
        return None
    if best.model_uri is None:
        raise ConfigurationError(
            f"model_name={model_name!r} was given but the best trial ({best.index}, run "
            f"{best.run_id}) returned no model: return (metrics, model) or a TrialOutput "
            "with a model from train_fn, or pass model_name=None."
        )
    version = register_model(
        best.model_uri,
        model_name,
        block,
        tags={"knot.tuning.search_run_id": parent_id, "knot.tuning.trial": str(best.index),
              f"knot.tuning.{metric}": f"{best.metrics[metric]:.6g}"},
    )
    assign_alias(model_name, version.version, alias, block)
    logger.info("Registered trial %d as %s v%d @%s.", best.index, model_name,
                version.version, alias)
    return version.version


def _first_line(error: str | None, limit: int = 300) -> str:
    """The start of an error message, short enough for a one-line summary."""
    line = (error or "").strip().splitlines()[0] if (error or "").strip() else "no message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _describe(train_fn: Any) -> str:
    if isinstance(train_fn, str):
        return train_fn
    return f"{getattr(train_fn, '__module__', '?')}:{getattr(train_fn, '__qualname__', '?')}"


def _plain(space: dict[str, Any]) -> dict[str, Any]:
    """The search space as JSON-ready data (models become their dicts)."""
    from pydantic import BaseModel

    return {name: spec.model_dump() if isinstance(spec, BaseModel) else spec
            for name, spec in space.items()}
