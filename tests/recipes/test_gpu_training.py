"""gpu-training: a PyTorch MLP trained by knot's ``extract`` and ``train`` tasks.

CI has no GPU, so the flow runs a tiny model on the CPU (``device="auto"`` picks CUDA
wherever PyTorch sees a GPU); benchmarks/gpu_training.py measures it on a GPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from knot_prefect import ComputeProfile
from tests.conftest import services_required
from tests.recipes.conftest import RECIPES, load_recipe

RECIPE = RECIPES / "gpu-training"


@pytest.fixture(scope="module")
def recipe() -> dict[str, ModuleType]:
    if importlib.util.find_spec("torch") is None:
        message = "PyTorch is not installed: pip install torch==2.13.0 (see the recipe README)"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    return load_recipe("gpu-training", "generate_data", "model", "pipeline")


@pytest.fixture
def blocks(knot_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recipe's blocks.yaml applied, its warehouse file in a scratch folder."""
    from knot_prefect.documents import apply_file

    monkeypatch.setenv("GPU_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    apply_file(RECIPE / "blocks.yaml")
    return tmp_path


def test_flow_trains_on_the_cpu_and_logs_device_and_throughput(
    recipe: dict[str, ModuleType], blocks: Path
) -> None:
    import mlflow
    import torch

    from knot_prefect import MLflowTracking

    generate_data, pipeline = recipe["generate_data"], recipe["pipeline"]
    assert generate_data.generate(rows=2_000, features=8) == 2_000
    summary = pipeline.gpu_training(
        hidden=32, layers=2, epochs=4, batch_size=128, learning_rate=1e-2
    )

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert summary["device"] == expected
    assert summary["train_samples"] == 4 * (2_000 // 128) * 128  # partial batch dropped
    assert summary["samples_per_second"] == pytest.approx(
        summary["train_samples"] / summary["train_seconds"]
    )
    tracking = MLflowTracking.load("gpu-mlflow")
    client = tracking.get_client()
    run = client.get_run(summary["run_id"])
    assert run.data.tags["device"] == expected
    assert run.data.tags["knot.model_uri"] == summary["model_uri"]
    assert run.data.params["hidden"] == "32" and run.data.params["device"] == "auto"
    losses = [m.value for m in client.get_metric_history(summary["run_id"], "loss")]
    assert len(losses) == 4 and losses[-1] < losses[0]

    # The logged model predicts a hold-out sample labelled by the same rule.
    with tracking.session():
        mlflow.set_tracking_uri(tracking.resolved_tracking_uri())
        model = mlflow.pytorch.load_model(summary["model_uri"])
    holdout = generate_data.sample_frame(rows=1_000, features=8, seed=99)
    with torch.no_grad():
        logits = model(torch.tensor(holdout.filter(like="f_").to_numpy()))
    accuracy = ((logits.squeeze(1) > 0).numpy() == holdout["label"].to_numpy()).mean()
    assert accuracy > 0.8


def test_asking_for_cuda_without_a_gpu_says_what_to_do(
    recipe: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    model = recipe["model"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU worker
    assert str(model.pick_device("auto")) == "cpu"
    with pytest.raises(ValueError, match=r"device='cuda'.*device='auto'"):
        model.pick_device("cuda")


def test_a_table_without_label_or_features_is_named(recipe: dict[str, ModuleType]) -> None:
    import pandas as pd
    import torch

    model = recipe["model"]
    with pytest.raises(ValueError, match=r"'label' column.*\['x', 'y'\]"):
        model.to_tensors(pd.DataFrame({"x": [1.0], "y": [0]}), torch.device("cpu"))
    frame = recipe["generate_data"].sample_frame(rows=10, features=3)
    x, y = model.to_tensors(frame, torch.device("cpu"))
    assert tuple(x.shape) == (10, 3) and x.dtype == torch.float32
    assert y.tolist() == frame["label"].astype(float).tolist()
    with pytest.raises(ValueError, match="batch_size=64 is larger than the training table"):
        model.train_loop(model.build_mlp(3, 8, 1), x, y, epochs=1, batch_size=64,
                         learning_rate=0.1)


def test_deployments_carry_their_compute_profiles() -> None:
    """Each deployment's job variables are its ComputeProfile rendered for its pool."""
    documents = yaml.safe_load((RECIPE / "blocks.yaml").read_text())["blocks"]
    profiles = {d["name"]: d["data"] for d in documents if d["type"] == "compute-profile"}
    config: dict[str, Any] = yaml.safe_load((RECIPE / "prefect.yaml").read_text())
    pool_types = config["definitions"]["work_pools"]
    assert set(pool_types.values()) == {"process", "kubernetes"}
    for deployment in config["deployments"]:
        (tag,) = [t for t in deployment["tags"] if t.startswith("profile:")]
        profile = ComputeProfile(**profiles[tag.removeprefix("profile:")])
        pool = deployment["work_pool"]
        rendered = profile.job_variables(pool_types[pool["name"]])
        variables = dict(pool["job_variables"])
        if "image" in rendered:  # the image is the one the build step makes
            assert variables.pop("image") == "{{ build-image.image }}"
            rendered.pop("image")
        assert variables == rendered, deployment["name"]
    process = next(d for d in config["deployments"] if pool_types[d["work_pool"]["name"]]
                   == "process")
    assert process["work_pool"]["job_variables"]["env"]["CUDA_VISIBLE_DEVICES"] == "0"
