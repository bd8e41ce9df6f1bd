"""The GPU training flow: warehouse table -> PyTorch MLP on CUDA (or CPU) -> MLflow.

Every system is a block document of blocks.yaml; the code is the same on a laptop, on a
process worker with a GPU and on a Kubernetes GPU node. Run it locally with
``python pipeline.py`` or deploy it with prefect.yaml.
"""

from __future__ import annotations

from typing import Any

from generate_data import TABLE, WAREHOUSE, generate
from model import fit
from prefect import flow
from prefect.cache_policies import NO_CACHE

from knot_prefect import MLflowTracking, Warehouse
from knot_prefect.tasks import extract, train

TRACKING = "gpu-mlflow"


@flow(name="gpu-training", log_prints=True)
def gpu_training(
    warehouse: Warehouse | str = WAREHOUSE,
    tracking: MLflowTracking | str = TRACKING,
    table: str = TABLE,
    hidden: int = 1024,
    layers: int = 3,
    epochs: int = 3,
    batch_size: int = 4096,
    learning_rate: float = 1e-3,
    device: str = "auto",
    sample_rows: int = 0,
) -> dict[str, Any]:
    """Read the training table, train the MLP under a tracked MLflow run, report throughput.

    Args:
        warehouse: Warehouse block (or document name) holding the training table.
        tracking: MLflowTracking block (or document name) the run is logged to.
        table: The training table: ``f_*`` feature columns and a 0/1 ``label``.
        hidden: Width of each hidden layer.
        layers: Number of hidden layers.
        epochs: Passes over the table.
        batch_size: Rows per optimizer step.
        learning_rate: Adam's learning rate.
        device: ``auto`` (CUDA when visible, else CPU), ``cuda``, ``cuda:1`` or ``cpu``.
        sample_rows: When above 0, first (re)generate that many sample rows.

    Returns:
        The model URI, MLflow run id, device and training throughput.
    """
    if sample_rows > 0:
        print(f"sample data: {generate(rows=sample_rows, warehouse=warehouse, table=table)} rows")
    frame = extract(warehouse, table)
    params = {
        "hidden": hidden, "layers": layers, "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "device": device,
    }
    # The frame is the input: hashing it for a cache key would cost a pass over the data.
    model_uri = train.with_options(cache_policy=NO_CACHE)(
        fit, frame, params, tracking, target="label", run_name="gpu-train"
    )
    summary = _summary(tracking, model_uri)
    print(f"trained on {summary['device_name']} ({summary['device']}): "
          f"{summary['samples_per_second']:,.0f} samples/s, "
          f"train accuracy {summary['train_accuracy']:.3f}; model {model_uri}")
    return summary


def _summary(tracking: MLflowTracking | str, model_uri: str) -> dict[str, Any]:
    """Device and throughput, read back from the run that logged the model."""
    from knot_prefect.tracking.resolve import resolve_tracking

    block = resolve_tracking(tracking)
    with block.session():
        client = block.get_client()
        run_id = client.get_logged_model(model_uri.removeprefix("models:/")).source_run_id
        run = client.get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    return {
        "model_uri": model_uri,
        "run_id": run_id,
        "device": tags["device"],
        "device_name": tags["device_name"],
        "samples_per_second": metrics["samples_per_second"],
        "train_seconds": metrics["train_seconds"],
        "train_samples": int(metrics["train_samples"]),
        "train_accuracy": metrics["train_accuracy"],
    }


if __name__ == "__main__":
    gpu_training()
