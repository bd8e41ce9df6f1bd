"""The gpu-training recipe's training throughput against a bare PyTorch loop.

Run: ``.venv/bin/python benchmarks/gpu_training.py [--device auto] [--batch-sizes 4096 ...]``

Both sides train the same model (the recipe's ``build_mlp``: a 1024-wide ReLU MLP, 3
hidden layers, on 32 float32 features) with Adam and binary cross-entropy, at the same
batch size, for the same number of steps, on the same device, in this process:

- bare: tensors made on the device with ``torch.randn``, then a plain loop (shuffle with
  ``randperm``, gather the batch, step); no Prefect, no MLflow, no warehouse.
- recipe: the ``gpu_training`` flow of ``recipes/gpu-training`` on a temporary Prefect
  API: ``extract`` reads the table from a DuckDB warehouse block, knot's ``train`` task
  opens a tracked MLflow run (SQLite store), the recipe's ``fit`` copies the table to the
  device once, trains, and logs the device, the throughput and the model.

Reported per batch size, medians over ``--repeats`` alternating runs:

- training throughput (samples/s): samples over the seconds of the training loop, device
  synchronized at both ends, one warm-up step excluded, as the recipe logs it to MLflow.
  Target on a GPU: recipe >= 0.8 x bare.
- end to end (samples/s): the flow's trained samples over the whole flow call (Prefect
  run, warehouse read, copy to the device, MLflow run and model logging included), for
  scale; it approaches the training figure as runs grow longer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "gpu-training"


def bare_loop(
    rows: int, features: int, hidden: int, layers: int, batch_size: int, epochs: int,
    device: str,
) -> float:
    """Samples per second of a plain PyTorch loop over tensors already on the device."""
    import torch
    from model import build_mlp

    torch.manual_seed(0)
    x = torch.randn(rows, features, device=device)
    y = (torch.rand(rows, device=device) > 0.5).float()
    model = build_mlp(features, hidden, layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step(batch: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[batch]).squeeze(1), y[batch]).backward()
        optimizer.step()

    step(torch.arange(batch_size, device=device))  # warm-up, as the recipe does
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    started = time.perf_counter()
    samples = 0
    for _ in range(epochs):
        order = torch.randperm(rows, device=device)
        for start in range(0, rows - batch_size + 1, batch_size):
            step(order[start : start + batch_size])
            samples += batch_size
    sync()
    return samples / (time.perf_counter() - started)


def recipe_run(
    warehouse: Any, tracking: Any, hidden: int, layers: int, batch_size: int, epochs: int,
    device: str,
) -> tuple[float, float]:
    """The flow's logged training throughput and its end-to-end samples per second."""
    from pipeline import gpu_training

    started = time.perf_counter()
    summary = gpu_training(
        warehouse, tracking, hidden=hidden, layers=layers, epochs=epochs,
        batch_size=batch_size, learning_rate=1e-3, device=device,
    )
    seconds = time.perf_counter() - started
    return summary["samples_per_second"], summary["train_samples"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--rows", type=int, help="training rows (GPU 1048576, CPU 16384)")
    parser.add_argument("--epochs", type=int, help="passes over the rows (GPU 3, CPU 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+",
                        help="batch sizes to measure (GPU 4096 16384 65536, CPU 4096)")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    sys.path.insert(0, str(RECIPE))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import torch
    from generate_data import generate
    from model import device_name, pick_device
    from prefect.testing.utilities import prefect_test_harness

    from knot_prefect import DuckDBWarehouse, MLflowTracking

    device = pick_device(args.device)
    gpu = device.type == "cuda"
    rows = args.rows or (1_048_576 if gpu else 16_384)
    epochs = args.epochs or (3 if gpu else 2)
    batch_sizes = args.batch_sizes or ([4096, 16384, 65536] if gpu else [4096])
    torch.set_float32_matmul_precision("high")  # as the recipe's fit does

    print(f"device: {device} ({device_name(device)}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"model: MLP {args.features} -> {args.layers} x {args.hidden} -> 1; {rows:,} rows, "
          f"{epochs} epochs, {args.repeats} alternating repeats; medians")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch, prefect_test_harness(
        server_startup_timeout=180
    ):
        warehouse = DuckDBWarehouse(path=f"{scratch}/warehouse.duckdb")
        tracking = MLflowTracking(
            tracking_uri=f"sqlite:///{scratch}/mlflow.db", experiment_name="benchmark"
        )
        generate(rows=rows, features=args.features, warehouse=warehouse)
        # One untimed flow run: imports, MLflow's database, CUDA context and kernels.
        recipe_run(warehouse, tracking, args.hidden, args.layers, batch_sizes[0], 1,
                   str(device))
        for batch_size in batch_sizes:
            bare, loop, end_to_end = [], [], []
            for _ in range(args.repeats):
                bare.append(bare_loop(rows, args.features, args.hidden, args.layers,
                                      batch_size, epochs, str(device)))
                trained, whole = recipe_run(warehouse, tracking, args.hidden, args.layers,
                                            batch_size, epochs, str(device))
                loop.append(trained)
                end_to_end.append(whole)
            result = {
                "device": str(device), "device_name": device_name(device),
                "batch_size": batch_size, "rows": rows, "epochs": epochs,
                "bare_samples_per_s": statistics.median(bare),
                "recipe_samples_per_s": statistics.median(loop),
                "recipe_end_to_end_samples_per_s": statistics.median(end_to_end),
            }
            result["ratio"] = result["recipe_samples_per_s"] / result["bare_samples_per_s"]
            result["end_to_end_ratio"] = (
                result["recipe_end_to_end_samples_per_s"] / result["bare_samples_per_s"]
            )
            results.append(result)

    print()
    print(f"{'batch':>7} {'bare samples/s':>15} {'recipe samples/s':>17} {'ratio':>6} "
          f"{'end-to-end samples/s':>21} {'ratio':>6}")
    for r in results:
        print(f"{r['batch_size']:>7} {r['bare_samples_per_s']:>15,.0f} "
              f"{r['recipe_samples_per_s']:>17,.0f} {r['ratio']:>6.2f} "
              f"{r['recipe_end_to_end_samples_per_s']:>21,.0f} {r['end_to_end_ratio']:>6.2f}")
    target = "target >= 0.80 on a GPU" if gpu else "the 0.8x target applies on a GPU"
    worst = min(r["ratio"] for r in results)
    print(f"\nrecipe / bare training throughput: worst {worst:.2f} ({target})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
