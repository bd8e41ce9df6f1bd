"""The GPU training flow end to end on a tiny model: CUDA when present, else the CPU."""

from __future__ import annotations

from pathlib import Path

from generate_data import generate, sample_frame
from pipeline import gpu_training


def test_flow_trains_logs_device_and_throughput(blocks: Path) -> None:
    import mlflow
    import torch

    from knot_prefect import MLflowTracking

    assert generate(rows=2_000, features=8) == 2_000
    summary = gpu_training(hidden=32, layers=2, epochs=4, batch_size=100, learning_rate=1e-2)

    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert summary["train_samples"] == 4 * 2_000
    assert summary["samples_per_second"] > 0
    tracking = MLflowTracking.load("gpu-mlflow")
    run = tracking.get_client().get_run(summary["run_id"])
    assert run.data.tags["device"] == summary["device"]
    assert run.data.params["hidden"] == "32"

    with tracking.session():
        mlflow.set_tracking_uri(tracking.resolved_tracking_uri())
        model = mlflow.pytorch.load_model(summary["model_uri"])
    holdout = sample_frame(rows=1_000, features=8, seed=99)
    with torch.no_grad():
        logits = model(torch.tensor(holdout.filter(like="f_").to_numpy()))
    accuracy = ((logits.squeeze(1) > 0).numpy() == holdout["label"].to_numpy()).mean()
    assert accuracy > 0.8
