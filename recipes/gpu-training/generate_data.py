"""Sample data: a binary classification table with ``f_*`` features and a ``label``.

The label follows a fixed nonlinear rule of the features plus noise, so a model can learn
it and its accuracy says whether training worked:

    knot blocks apply blocks.yaml
    python generate_data.py --rows 200000 --features 32
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.warehouses.base import Warehouse

WAREHOUSE = "gpu-warehouse"
TABLE = "training_samples"
RULE_SEED = 20240601  # fixes the rule that labels the samples


def sample_frame(rows: int = 200_000, features: int = 32, seed: int = 7) -> pd.DataFrame:
    """``rows`` samples of ``features`` standard-normal float32 features and a 0/1 label.

    The rule behind the label is the same for every ``seed`` (only the samples change),
    so a table of another seed is a fair hold-out set.
    """
    import numpy as np
    import pandas as pd

    weights = np.random.default_rng(RULE_SEED).standard_normal(features).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    score = x @ weights / np.sqrt(features) + 0.5 * np.sin(2 * x[:, 0]) * x[:, -1]
    noise = 0.1 * rng.standard_normal(rows).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"f_{i:03d}" for i in range(features)])
    frame["label"] = (score + noise > 0).astype(np.int8)
    return frame


def generate(
    rows: int = 200_000,
    features: int = 32,
    seed: int = 7,
    warehouse: Warehouse | str = WAREHOUSE,
    table: str = TABLE,
) -> int:
    """Write the sample table to the warehouse block, replacing it; return its row count."""
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    target = resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]
    return target.write(sample_frame(rows, features, seed), table, mode="replace").rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    print(f"{generate(arguments.rows, arguments.features, arguments.seed)} rows written")
