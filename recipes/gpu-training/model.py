"""The model and its training function: a PyTorch MLP on CUDA when present, else the CPU.

``fit(data, params)`` is the ``train_fn`` of knot's ``train`` task: it runs inside the
tracked MLflow run that ``train`` opens, logs the device and the training throughput
(samples per second), logs the model with MLflow's ``pytorch`` flavor and returns its URI.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import torch

TARGET = "label"
FEATURE_PREFIX = "f_"

# Hyperparameters and their defaults; ``fit`` accepts any subset.
DEFAULTS: dict[str, Any] = {
    "hidden": 1024,
    "layers": 3,
    "epochs": 3,
    "batch_size": 4096,
    "learning_rate": 1e-3,
    "device": "auto",
    "seed": 0,
}


def build_mlp(features: int, hidden: int = 1024, layers: int = 3) -> torch.nn.Sequential:
    """A ReLU MLP: ``layers`` hidden layers of ``hidden`` units and one logit out."""
    from torch import nn

    modules: list[nn.Module] = [nn.Linear(features, hidden), nn.ReLU()]
    for _ in range(layers - 1):
        modules += [nn.Linear(hidden, hidden), nn.ReLU()]
    modules.append(nn.Linear(hidden, 1))
    return nn.Sequential(*modules)


def pick_device(requested: str = "auto") -> torch.device:
    """``cuda`` when a GPU is visible (``CUDA_VISIBLE_DEVICES``), else ``cpu``.

    Raises:
        ValueError: ``cuda`` was asked for and no GPU is visible.
    """
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={requested!r} but PyTorch sees no GPU (torch {torch.__version__}, "
            f"CUDA_VISIBLE_DEVICES={_visible_devices()!r}). Use device='auto' to fall back "
            "to the CPU, or run on a worker of a GPU pool with a CUDA build of PyTorch."
        )
    return device


def device_name(device: torch.device) -> str:
    """A readable name of the device, e.g. ``NVIDIA H100 80GB HBM3`` or ``cpu``."""
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return "cpu"


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs: every ``f_*`` column of the training table."""
    return [str(c) for c in frame.columns if str(c).startswith(FEATURE_PREFIX)]


def to_tensors(
    frame: pd.DataFrame, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels as float32 tensors on ``device``, copied there once.

    The whole table goes to the device before training, so no step waits on the host.

    Raises:
        ValueError: The table has no ``label`` column or no ``f_*`` feature columns.
    """
    import numpy as np
    import torch

    features = feature_columns(frame)
    if TARGET not in frame.columns or not features:
        raise ValueError(
            f"The training table needs a {TARGET!r} column and feature columns named "
            f"'{FEATURE_PREFIX}*'; it has {list(frame.columns)}. Write it with "
            "generate_data.py or rename your columns."
        )
    x = torch.from_numpy(np.ascontiguousarray(frame[features].to_numpy(np.float32)))
    y = torch.from_numpy(np.ascontiguousarray(frame[TARGET].to_numpy(np.float32)))
    if device.type == "cuda":
        x, y = x.pin_memory(), y.pin_memory()
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


@dataclass(frozen=True)
class TrainingResult:
    """What one training loop did."""

    samples: int
    seconds: float
    epoch_losses: list[float]

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def train_loop(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
) -> TrainingResult:
    """Adam on binary cross-entropy over shuffled full batches (the last partial one dropped).

    One untimed warm-up step comes first (kernel selection, allocator); the clock covers
    every epoch after it, with the device synchronized at both ends. Each epoch's last
    loss stays on the device until the end, so the host never stalls the device.

    Raises:
        ValueError: Fewer rows than one batch.
    """
    import torch

    rows = int(x.shape[0])
    if rows < batch_size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the training table ({rows} rows); "
            "lower batch_size or generate more rows."
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step(batch: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[batch]).squeeze(1), y[batch])
        loss.backward()
        optimizer.step()
        return loss

    model.train()
    step(torch.arange(batch_size, device=x.device))  # warm-up, not timed
    _synchronize(x.device)
    started = time.perf_counter()
    losses = []
    samples = 0
    for _ in range(epochs):
        order = torch.randperm(rows, device=x.device)
        for start in range(0, rows - batch_size + 1, batch_size):
            loss = step(order[start : start + batch_size])
            samples += batch_size
        losses.append(loss.detach())
    _synchronize(x.device)
    seconds = time.perf_counter() - started
    return TrainingResult(samples, seconds, [float(value) for value in losses])


def fit(data: pd.DataFrame, params: Mapping[str, Any]) -> str:
    """Train the MLP on ``data`` inside the active MLflow run; return the model's URI.

    Logged to MLflow: tags ``device`` and ``device_name``; metrics ``samples_per_second``,
    ``train_seconds``, ``train_accuracy`` and ``loss`` per epoch; the model
    (``pytorch`` flavor, with an input example and its signature).
    """
    import mlflow
    import torch

    settings = {**DEFAULTS, **params}
    device = pick_device(str(settings["device"]))
    torch.manual_seed(int(settings["seed"]))
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere and newer GPUs
    x, y = to_tensors(data, device)
    model = build_mlp(int(x.shape[1]), int(settings["hidden"]), int(settings["layers"]))
    model = model.to(device)
    result = train_loop(
        model, x, y,
        epochs=int(settings["epochs"]),
        batch_size=int(settings["batch_size"]),
        learning_rate=float(settings["learning_rate"]),
    )
    model.eval()
    with torch.no_grad():
        accuracy = float(((model(x).squeeze(1) > 0).float() == y).float().mean())

    mlflow.set_tags({"device": str(device), "device_name": device_name(device)})
    for epoch, loss in enumerate(result.epoch_losses):
        mlflow.log_metric("loss", loss, step=epoch)
    mlflow.log_metrics({
        "samples_per_second": result.samples_per_second,
        "train_seconds": result.seconds,
        "train_samples": result.samples,
        "train_accuracy": accuracy,
    })

    # A pickled nn.Sequential of torch layers loads anywhere torch is installed; MLflow's
    # default "pt2" format traces the graph with torch.export, which costs seconds.
    model = model.cpu()
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        serialization_format="pickle",
        input_example=x[:16].cpu().numpy(),
        # Known requirements instead of inferring them in a subprocess (seconds).
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    )
    return str(info.model_uri)


def _synchronize(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _visible_devices() -> str | None:
    import os

    return os.environ.get("CUDA_VISIBLE_DEVICES")
