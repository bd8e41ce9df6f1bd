"""``knot init DIR --table T --target Y --key K``: a ready project for a team's own table.

The project holds a model spec (``model.yaml``), a data contract inferred from the
table (``contract.yaml``), the block documents it needs (``blocks.yaml``), a
``prefect.yaml`` deploying the three flow templates, ``run.py`` and a README whose
commands train, score, monitor and serve unedited. With ``--feast`` it also holds a
Feast repo (``feature_repo/``) over the table, and the spec reads its features.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

SAMPLE_ROWS = 10_000

RUN_PY = '''"""Run this project's flows: python run.py train | score | monitor.

Every run first applies blocks.yaml (idempotent), then calls knot's flow template with
the model spec in model.yaml; edit the spec, not this file.
"""

import sys
from pathlib import Path

from knot_prefect.documents import apply_file
from knot_prefect.flows import batch_inference_flow, monitoring_flow, training_flow

HERE = Path(__file__).resolve().parent
FLOWS = {"train": training_flow, "score": batch_inference_flow, "monitor": monitoring_flow}


def main(command: str) -> None:
    if command not in FLOWS:
        raise SystemExit(f"usage: python run.py {{{'|'.join(FLOWS)}}}")
    apply_file(HERE / "blocks.yaml")
    result = FLOWS[command](spec=str(HERE / "model.yaml"))
    print(result.result() if hasattr(result, "result") else result)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
'''

FLOWS_PY = '''"""Deployable entrypoints of knot's flow templates (see prefect.yaml)."""

from knot_prefect.flows import batch_inference_flow, monitoring_flow, training_flow

__all__ = ["batch_inference_flow", "monitoring_flow", "training_flow"]
'''


def init(
    directory: Path = typer.Argument(..., help="Folder to create (must be new or empty)."),
    table: str = typer.Option(..., "--table", help="Source table: 'table' or 'schema.table'."),
    target: str = typer.Option(..., "--target", help="The label column."),
    key: list[str] = typer.Option(..., "--key", help="An entity key column (repeatable)."),
    timestamp: str = typer.Option(None, "--timestamp", help="The event-time column."),
    warehouse: str = typer.Option(
        "local-warehouse", "--warehouse", help="Warehouse block document holding the table."
    ),
    model_name: str = typer.Option(None, "--model-name", help="Registered model name."),
    feast: bool = typer.Option(
        False, "--feast", help="Also write a Feast repo over the table; the spec reads it."
    ),
) -> None:
    """Write a ready project (spec, contract, blocks, prefect.yaml, README) for TABLE."""
    from knot_prefect.cli._output import fail
    from knot_prefect.errors import KnotError

    try:
        written = init_project(directory, table, target, key, timestamp, warehouse, model_name,
                               feast=feast)
    except KnotError as exc:
        fail(str(exc))
    typer.echo(f"Wrote {len(written)} files to {directory}; next: see {directory}/README.md")


def init_project(
    directory: Path,
    table: str,
    target: str,
    keys: list[str],
    timestamp: str | None = None,
    warehouse: str = "local-warehouse",
    model_name: str | None = None,
    feast: bool = False,
) -> list[Path]:
    """Write the project files; return their paths.

    Args:
        directory: The new project folder.
        table: The source table.
        target: The label column.
        keys: The entity key columns.
        timestamp: The event-time column (required with ``feast``).
        warehouse: The warehouse block document holding the table.
        model_name: The registered model name (from the table's name when None).
        feast: Also write a Feast repo over the table's other columns: a file source
            exported from the table, one entity per key, a feature view and a feature
            service that the spec reads.

    Raises:
        ConfigurationError: The folder is not empty, the table is missing or lacks a
            named column, or ``feast`` is asked without ``timestamp``.
    """
    import yaml

    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier
    from knot_prefect.contracts.inference import infer_contract_yaml
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.trainers.contract import infer_task

    if directory.exists() and any(directory.iterdir()):
        raise ConfigurationError(f"{directory} is not empty: choose a new folder.")
    if feast and not timestamp:
        raise ConfigurationError(
            "--feast needs --timestamp COLUMN: Feast joins each training row's features "
            "as of its event time."
        )
    block = resolve_block(warehouse, Warehouse)
    name = TableName.parse(table)
    if not block.table_exists(table):
        raise ConfigurationError(f"Table {table!r} does not exist in warehouse {warehouse!r}.")
    sample = block.read(f"SELECT * FROM {name.quoted()} LIMIT {SAMPLE_ROWS}")
    named = [("--target", target), *[("--key", k) for k in keys], ("--timestamp", timestamp)]
    for option, column in named:
        if column is not None and column not in sample.columns:
            raise ConfigurationError(
                f"{option} {column!r} is not a column of {table}; its columns are "
                f"{list(sample.columns)}."
            )
    model = model_name or _slug(name.table)
    task = infer_task(sample[target])
    contract_name = f"{model}-rows"
    spec: dict[str, Any] = {
        "source": table,
        "target": target,
        "key_columns": list(keys),
        "timestamp_column": timestamp,
        "task": task,
        "model_name": model,
        "output_table": f"{table}_predictions",
        "trainer": "gradient_boosting",
        "contract": contract_name,
        "warehouse": warehouse,
        "tracking": f"{model}-mlflow",
    }
    # With Feast the training rows are the keys, the event time and the label only.
    checked = sample[list(dict.fromkeys([*keys, timestamp or "", target]))] if feast else sample
    contract_yaml = infer_contract_yaml(
        checked, name=name.table, bounds=False,
        header=f"Inferred by `knot init` from {table} ({len(sample)} sample rows).",
    )
    files: dict[str, str] = {}
    if feast:
        repo = directory.resolve() / "feature_repo"
        service, repo_files = _feast_repo(block, name, sample, keys, timestamp or "", target,
                                          repo)
        files.update(repo_files)
        selected = ", ".join(quote_identifier(c, "column name")
                             for c in dict.fromkeys([*keys, timestamp or "", target]))
        spec.update(source=f"SELECT {selected} FROM {name.quoted()}", features=service,
                    feature_store=f"{model}-features")
    documents = {"blocks": [
        {"type": "data-contract", "name": contract_name,
         "data": {"schema_yaml": contract_yaml}},
        {"type": "mlflow-tracking", "name": f"{model}-mlflow",
         "data": {"experiment_name": model}},
        *([{"type": "knot-feast-feature-store", "name": f"{model}-features",
             "data": {"repo_path": str(directory.resolve() / "feature_repo")}}]
          if feast else []),
        {"type": "knot-model-spec", "name": model,
         "data": {k: v for k, v in spec.items() if v is not None}},
    ]}
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        **files,
        "model.yaml": "# The model spec every flow reads (docs/bring-your-own-table.md).\n"
                      + yaml.safe_dump({k: v for k, v in spec.items() if v is not None},
                                       sort_keys=False),
        "contract.yaml": contract_yaml,
        "blocks.yaml": "# Apply with: knot blocks apply blocks.yaml\n"
                       + yaml.safe_dump(documents, sort_keys=False),
        "run.py": RUN_PY,
        "flows.py": FLOWS_PY,
        "prefect.yaml": _prefect_yaml(model),
        "README.md": _readme(model, table, target, keys, task, feast),
    }
    written = []
    for file_name, text in files.items():
        path = directory / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if feast:
        written.append(_export_source(block, name, [*keys, timestamp or ""], target,
                                      directory / "feature_repo"))
    return written


FEAST_TYPES = {"i": "Int64", "u": "Int64", "f": "Float64", "b": "Bool"}

FEATURES_PY = '''"""Feast definitions over {table}, written by `knot init --feast`.

A plain Feast repo file: `feast apply` works on it without knot. The file source is an
export of the table into data/ (`knot init` wrote it; export it again to refresh).
"""

from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Bool, Float64, Int64, String

DATA = Path(__file__).resolve().parent / "data"

{entities}

source = FileSource(
    name="{view}_source",
    path=str(DATA / "{view}.parquet"),
    timestamp_field="{timestamp}",
)

{view} = FeatureView(
    name="{view}",
    entities=[{entity_names}],
    schema=[
{fields}
    ],
    source=source,
    online=True,
    description="The columns of {table}, one row per {keys} and {timestamp}.",
)

{service} = FeatureService(name="{service}", features=[{view}])
'''


def _python_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or "table"
    return f"t_{name}" if name[0].isdigit() else name


def _feast_type(series: Any) -> str:
    return FEAST_TYPES.get(series.dtype.kind, "String")


def _feast_repo(
    block: Any, name: Any, sample: Any, keys: list[str], timestamp: str, target: str,
    repo: Path,
) -> tuple[str, dict[str, str]]:
    """The feature service name and the repo's text files (relative paths -> text)."""
    from knot_prefect.features.local_repo import LOCAL_FEATURE_STORE_YAML

    view = _python_name(name.table)
    service = f"{view}_features"
    features = [c for c in sample.columns if c not in (*keys, timestamp, target)]
    entities = "\n".join(
        f'{_python_name(key)}_entity = Entity(name="{key}", join_keys=["{key}"])'
        for key in keys
    )
    fields = "\n".join(
        f'        Field(name="{column}", dtype={_feast_type(sample[column])}),'
        for column in [*keys, *features]
    )
    text = FEATURES_PY.format(
        table=str(name), entities=entities, view=view, timestamp=timestamp,
        entity_names=", ".join(f"{_python_name(key)}_entity" for key in keys),
        fields=fields, keys=", ".join(keys), service=service,
    )
    return service, {
        "feature_repo/feature_store.yaml": LOCAL_FEATURE_STORE_YAML.format(project=view),
        f"feature_repo/{view}_features.py": text,
    }


def _export_source(block: Any, name: Any, keys: list[str], target: str, repo: Path) -> Path:
    """Export the table (less its label) as the repo's Parquet file source."""
    frame = block.read_table(str(name))
    path = repo / "data" / f"{_python_name(name.table)}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.drop(columns=[target]).to_parquet(path, index=False)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def _prefect_yaml(model: str) -> str:
    deployments = "".join(
        f"""  - name: {model}-{step}
    entrypoint: flows.py:{flow}
    parameters:
      spec: model.yaml
    work_pool:
      name: process-pool
"""
        for step, flow in (("training", "training_flow"), ("scoring", "batch_inference_flow"),
                           ("monitoring", "monitoring_flow"))
    )
    return ("# prefect deploy --all  (a process work pool named process-pool runs them)\n"
            f"name: {model}\nprefect-version: 3.0.0\n\ndeployments:\n{deployments}")


def _readme(model: str, table: str, target: str, keys: list[str], task: str,
            feast: bool = False) -> str:
    features = (
        "the features of the Feast repo in `feature_repo/` (a view over the columns of "
        f"`{table}`)" if feast else f"the columns of `{table}`"
    )
    feast_notes = """- `feature_repo/`: a plain Feast repo over the table (`feast apply` works in
  it); its file source `feature_repo/data/` is an export of the table: export it again, and
  materialize (`feast materialize-incremental`), to serve fresh features.
""" if feast else ""
    serving = ("the online store of `feature_repo/` (materialize it first)" if feast
               else f"the latest row of `{table}` per key")
    return f"""# {model}

A {task} model of `{target}` per `{", ".join(keys)}`, trained on {features},
made by `knot init`.

```bash
python run.py train     # train, check, register and promote {model}@champion
python run.py score     # score {table} into {table}_predictions, with lineage
python run.py monitor   # drift of inputs and predictions against training
knot serve --spec model.yaml   # POST /predict on port 8000 (--port or KNOT_SERVE_PORT)
```

`knot serve` answers `{{"entity": {{{", ".join(f'"{k}": ...' for k in keys)}}}}}` with the
prediction of {model}@champion, reading the features from {serving}; it
follows the alias, so a newly promoted version serves without a restart.

- `model.yaml`: the model spec (table, keys, label, task, trainer, output table).
- `contract.yaml`: the data contract inferred from the table (in `blocks.yaml` as the
  `{model}-rows` document); review it.
- `blocks.yaml`: block documents (contract, MLflow tracking, the model spec), applied by
  `run.py` and by `knot blocks apply blocks.yaml`.
- `prefect.yaml`: the three flows as deployments (`prefect deploy --all`).
{feast_notes}"""
