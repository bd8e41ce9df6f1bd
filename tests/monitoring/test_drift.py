"""Reference profiles and drift metrics on generated data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from knot_prefect.demo.data import generate_churn_dataset
from knot_prefect.monitoring.drift import column_drift, population_stability_index
from knot_prefect.monitoring.profile import build_profile


def test_profile_is_json_and_bins_sum_to_one() -> None:
    frame = pd.DataFrame({"a": np.random.default_rng(0).normal(size=10_000), "s": ["x"] * 10_000})
    profile = json.loads(json.dumps(build_profile(frame)))
    assert list(profile["columns"]) == ["a"]  # text columns are not profiled
    assert sum(profile["columns"]["a"]["fractions"]) == pytest.approx(1.0)


def test_same_distribution_is_stable_and_shift_is_detected() -> None:
    rng = np.random.default_rng(1)
    reference = build_profile(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    (stable,) = column_drift(reference, pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    (shifted,) = column_drift(reference, pd.DataFrame({"x": rng.normal(0.5, 1, 20_000)}))
    assert stable.psi < 0.02 and stable.ks_pvalue > 0.01
    assert shifted.psi > 0.1 and shifted.ks_pvalue < 1e-6
    assert shifted.ks_statistic > stable.ks_statistic


def test_psi_matches_its_definition() -> None:
    expected, actual = [0.5, 0.5], [0.25, 0.75]
    by_hand = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert population_stability_index(expected, actual) == pytest.approx(by_hand)


def test_missing_columns_are_named() -> None:
    reference = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with pytest.raises(ValueError, match=r"\['x'\].*\['y'\]"):
        column_drift(reference, pd.DataFrame({"y": [1.0]}))


def test_generated_dataset_is_seeded_and_has_signal() -> None:
    first = generate_churn_dataset(customers=400, days=10, seed=3)
    again = generate_churn_dataset(customers=400, days=10, seed=3)
    other = generate_churn_dataset(customers=400, days=10, seed=4)
    pd.testing.assert_frame_equal(first["customer_activity"], again["customer_activity"])
    assert not first["churn_labels"]["churned"].equals(other["churn_labels"]["churned"])
    labels = first["churn_labels"].merge(
        first["customer_activity"].groupby("customer_id").tail(1), on="customer_id"
    )
    # Churners had fewer sessions in their last week: the label carries a real signal.
    by_label = labels.groupby("churned")["sessions_7d"].mean()
    assert by_label[1] < by_label[0]
