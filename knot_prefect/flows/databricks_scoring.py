"""Spark scoring submitted as a Databricks job (prefect-databricks), committed by the flow.

With a :class:`~knot_prefect.blocks.spark_engine.SparkEngine` whose master is
``databricks``, ``batch_inference_flow`` does not start Spark itself: it submits a
one-time run (``jobs/runs/submit``, prefect-databricks' ``jobs_runs_submit`` with the
engine's ``DatabricksCredentials`` block) of :func:`main`, the same Spark scoring as
``spark=`` on any other master (rows read by Spark, MLflow's ``spark_udf``, each Spark
task staging its predictions with the lineage columns). The flow waits for the run's
terminal state (``jobs/runs/get``): on success it reads the staged parts the job printed
(``jobs/runs/get-output``), runs the prediction checks and publishes them with one
``commit_staged``; on any other end it publishes nothing and fails with the run's state
message and page.

The job reaches the same blocks as the flow (its cluster needs ``PREFECT_API_URL`` and
``PREFECT_API_KEY``, set by the engine's ``databricks_cluster`` ``spark_env_vars``) and
the same MLflow server.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError, KnotError

if TYPE_CHECKING:
    from knot_prefect.blocks.spark_engine import SparkEngine
    from knot_prefect.blocks.warehouses.base import StagedPart
    from knot_prefect.flows.scoring import PredictionStats
    from knot_prefect.lineage.columns import Lineage

# The job's last line of output: the parts it staged and their statistics, as JSON.
RESULT_MARKER = "knot-staged-parts: "
TERMINAL_STATES = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


class DatabricksRunFailed(KnotError):
    """The Databricks run ended without success; nothing was published."""


@dataclass(frozen=True)
class ScoringRequest:
    """What the Databricks job scores: block documents by name, the pinned model, lineage."""

    warehouse: str
    tracking: str
    model_name: str
    model_version: int
    model_alias: str
    entity_sql: str
    query: str
    params: dict[str, Any] | None
    keys: list[str]
    output_table: str
    partition_rows: int | None
    lineage: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=_iso)

    @classmethod
    def from_json(cls, text: str) -> ScoringRequest:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class DatabricksScoring:
    """What the job staged: parts for the flow to commit, statistics for its checks."""

    run_id: int
    rows_read: int
    stats: PredictionStats
    parts: list[StagedPart]


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def lineage_of(values: dict[str, Any]) -> Lineage:
    """The :class:`Lineage` a request carries (times back from ISO text)."""
    from knot_prefect.lineage.columns import Lineage

    times = {name: datetime.fromisoformat(values[name])
             for name in ("features_as_of", "scored_at")}
    return Lineage(**{**values, **times})


def score_on_databricks(engine: SparkEngine, warehouse: Any, tracking: Any, model: Any,
                        lineage: Lineage, entity_sql: str, query: str,
                        params: dict[str, Any] | None, keys: list[str], output_table: str,
                        partition_rows: int | None) -> DatabricksScoring:
    """Submit the scoring of ``model`` as a Databricks run; the parts it staged, checked."""
    names = {"warehouse": _document_name(warehouse), "tracking": _document_name(tracking)}
    request = ScoringRequest(
        **names, model_name=model.name, model_version=model.version,
        model_alias=lineage.model_alias, entity_sql=entity_sql, query=query, params=params,
        keys=keys, output_table=output_table, partition_rows=partition_rows,
        lineage=dataclasses.asdict(lineage))
    return run_job(engine, request, engine.databricks_poll_seconds)


def _document_name(block: Any) -> str:
    name = getattr(block, "_block_document_name", None)
    if not name:
        raise ConfigurationError(
            f"A Databricks job loads the {type(block).__name__} by its block document "
            "name: save it first (block.save('NAME')) and pass the name to the flow.")
    return str(name)


def submit_payload(engine: SparkEngine, request: ScoringRequest) -> dict[str, Any]:
    """The ``jobs/runs/submit`` body: one ``spark_python_task`` running :func:`main`.

    The task runs the engine's ``databricks_python_file`` (a copy of this module in the
    workspace or DBFS) with the request as its one parameter, on the engine's
    ``databricks_cluster`` (``{"existing_cluster_id": ...}`` or ``{"new_cluster":
    {...}}``); knot itself is installed on the cluster as a PyPI library.
    """
    if not engine.databricks_python_file:
        raise ConfigurationError(
            "SparkEngine(master='databricks') needs databricks_python_file: the workspace "
            "or DBFS path of knot_prefect/flows/databricks_scoring.py, e.g. "
            "'dbfs:/knot/databricks_scoring.py'.")
    cluster = dict(engine.databricks_cluster)
    if not ({"existing_cluster_id", "new_cluster"} & set(cluster)):
        raise ConfigurationError(
            "SparkEngine(master='databricks') needs databricks_cluster with "
            "'existing_cluster_id' or 'new_cluster', e.g. {'existing_cluster_id': "
            "'0101-123456-abcd'}.")
    task = {
        "task_key": "knot-score",
        "spark_python_task": {"python_file": engine.databricks_python_file,
                              "parameters": [request.to_json()]},
        "libraries": [{"pypi": {"package": engine.databricks_package}}],
        **cluster,
    }
    # One token per submission: a retried flow or task run must get a new Databricks run,
    # since the parts an earlier attempt staged may have been discarded since.
    token = f"{request.lineage['flow_run_id'] or 'knot'}-{uuid.uuid4().hex[:12]}"
    return {"run_name": f"{engine.app_name}: score {request.output_table}",
            "tasks": [task], "idempotency_token": token}


def run_job(engine: SparkEngine, request: ScoringRequest,
            poll_seconds: float = 10.0) -> DatabricksScoring:
    """Submit the scoring run and wait for its terminal state.

    Raises:
        DatabricksRunFailed: The run ended without success (its state message and page
            in the error), or succeeded without reporting what it staged.
    """
    from knot_prefect.blocks.databricks_jobs import get_run, get_run_output, submit_run

    credentials = engine.databricks_credentials_block()
    payload = submit_payload(engine, request)
    run_id = submit_run(credentials, payload)
    while True:
        run = get_run(credentials, run_id)
        state = run.get("state", {})
        if state.get("life_cycle_state") in TERMINAL_STATES:
            break
        time.sleep(poll_seconds)
    page = run.get("run_page_url", f"run {run_id}")
    if state.get("result_state") != "SUCCESS":
        raise DatabricksRunFailed(
            f"The Databricks scoring run {run_id} ended {state.get('life_cycle_state')}/"
            f"{state.get('result_state')}: {state.get('state_message') or 'no message'} "
            f"({page}). Nothing was published; see the run's driver logs.")
    # A multi-task run's output is its task's run.
    task_run_id = next((t["run_id"] for t in run.get("tasks", []) if "run_id" in t), run_id)
    output = get_run_output(credentials, task_run_id)
    return parse_result(run_id, output.get("logs") or "", page)


def parse_result(run_id: int, logs: str, page: str = "") -> DatabricksScoring:
    """The parts and statistics of the job's :data:`RESULT_MARKER` line."""
    from knot_prefect.blocks.warehouses.base import StagedPart
    from knot_prefect.flows.scoring import PredictionStats

    lines = [line for line in logs.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        raise DatabricksRunFailed(
            f"The Databricks scoring run {run_id} succeeded but printed no "
            f"'{RESULT_MARKER.strip()}' line ({page}): is its python file knot's "
            "databricks_scoring.py? Nothing was published.")
    result = json.loads(lines[-1][len(RESULT_MARKER):])
    stats = PredictionStats()
    vars(stats).update(result["stats"])
    return DatabricksScoring(run_id=run_id, rows_read=int(result["rows_read"]), stats=stats,
                             parts=[StagedPart(**part) for part in result["parts"]])


def result_line(rows_read: int, stats: PredictionStats, parts: Sequence[StagedPart]) -> str:
    """The line the job prints for the flow (see :func:`parse_result`)."""
    return RESULT_MARKER + json.dumps({
        "rows_read": rows_read, "stats": vars(stats),
        "parts": [dataclasses.asdict(part) for part in parts]})


def main(argv: Sequence[str] | None = None) -> None:
    """The Databricks job: score the request on the cluster's Spark, print what was staged."""
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.flows.spark_scoring import rows_frame, score_and_stage
    from knot_prefect.tasks.mlflow_predict import load_model_by_alias

    arguments = list(argv if argv is not None else sys.argv[1:])
    if len(arguments) != 1:
        raise ConfigurationError("databricks_scoring.py takes one argument: the request JSON.")
    request = ScoringRequest.from_json(arguments[0])
    warehouse = resolve_block(request.warehouse, Warehouse, parameter="warehouse")
    tracking = resolve_block(request.tracking, MLflowTracking, parameter="tracking")
    model = load_model_by_alias(request.model_name, request.model_alias, tracking)
    if model.version != request.model_version:
        raise ConfigurationError(
            f"{request.model_name}@{request.model_alias} moved to version {model.version} "
            f"after the flow pinned version {request.model_version}: run the flow again.")
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    rows = rows_frame(spark, warehouse, request.entity_sql, request.query, request.params,
                      request.keys, request.partition_rows)
    scoring = score_and_stage(spark, rows, warehouse, model, request.keys,
                              lineage_of(request.lineage), request.output_table, tracking)
    print(result_line(scoring.rows_read, scoring.stats, scoring.parts), flush=True)


if __name__ == "__main__":
    main()
