"""Three tables that are not the demo's: keys, labels and timestamps named their own way.

- diabetes (scikit-learn's bundled table): regression of ``progression`` per ``patient_no``;
- wine (scikit-learn's bundled table): multiclass ``cultivar`` (text) per ``bottle``;
- loans (generated here): binary ``defaulted`` ("yes"/"no") per ``loan_ref`` with
  string categorical columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """A table and what a model spec says about it."""

    name: str
    frame: pd.DataFrame
    target: str
    key: str
    timestamp: str
    task: str
    metric: str


def _stamped(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    return frame.assign(**{column: start + pd.to_timedelta(np.arange(len(frame)), unit="h")})


def diabetes() -> Dataset:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    frame.insert(0, "patient_no", np.arange(1001, 1001 + len(frame)))
    return Dataset("diabetes", _stamped(frame, "measured_at"), "progression", "patient_no",
                   "measured_at", "regression", "r2")


def wine() -> Dataset:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    frame.columns = [c.replace("/", "_") for c in frame.columns]
    frame["cultivar"] = np.asarray(data.target_names)[data.target]
    frame.insert(0, "bottle", np.arange(1, len(frame) + 1))
    return Dataset("wine", _stamped(frame, "bottled_at"), "cultivar", "bottle", "bottled_at",
                   "multiclass", "f1")


def loans(rows: int = 1200, seed: int = 3) -> Dataset:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], rows)
    product = rng.choice(["mortgage", "auto", "card"], rows)
    income = rng.normal(50_000, 15_000, rows).round(2)
    amount = rng.normal(15_000, 6_000, rows).round(2)
    risk = (amount / income) * 3 + (region == "east") * 1.2 + (product == "card") * 0.8
    defaulted = np.where(risk + rng.normal(0, 0.4, rows) > 1.9, "yes", "no")
    frame = pd.DataFrame({
        "loan_ref": np.arange(50_001, 50_001 + rows),
        "region": pd.array(region, dtype="string"),
        "product": product.astype(object),
        "income": income,
        "amount": amount,
        "defaulted": defaulted.astype(object),
    })
    return Dataset("loans", _stamped(frame, "opened_at"), "defaulted", "loan_ref",
                   "opened_at", "binary", "roc_auc")


DATASETS = {"diabetes": diabetes, "wine": wine, "loans": loans}
