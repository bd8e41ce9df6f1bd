"""Search spaces: grids, seeded random draws, and errors that name the parameter."""

from __future__ import annotations

import math

import pytest

from knot_prefect.tuning.space import (
    Choice,
    IntRange,
    LogUniform,
    SearchSpaceError,
    parse_search_space,
    plan_trials,
)

SPACE = {
    "lr": {"kind": "log_uniform", "low": 1e-3, "high": 1.0},
    "frac": {"kind": "uniform", "low": 0.2, "high": 0.4},
    "depth": {"kind": "int", "low": 2, "high": 10, "step": 4},
    "loss": {"kind": "choice", "values": ["log", "hinge"]},
    "penalty": ["l1", "l2"],
    "max_iter": 50,
}


def test_grid_is_every_combination_in_order() -> None:
    points = plan_trials({"a": [1, 2], "b": IntRange(low=0, high=2), "c": "fixed"},
                         None, "grid", seed=0)
    assert len(points) == 2 * 3
    assert points[0] == {"a": 1, "b": 0, "c": "fixed"}
    assert points[-1] == {"a": 2, "b": 2, "c": "fixed"}
    assert len({tuple(p.values()) for p in points}) == 6


def test_random_draws_stay_in_bounds_and_repeat_with_the_seed() -> None:
    points = plan_trials(SPACE, 200, "random", seed=11)
    assert points == plan_trials(SPACE, 200, "random", seed=11)
    assert points != plan_trials(SPACE, 200, "random", seed=12)
    assert all(1e-3 <= p["lr"] <= 1.0 for p in points)
    assert all(0.2 <= p["frac"] <= 0.4 for p in points)
    assert {p["depth"] for p in points} == {2, 6, 10}
    assert {p["loss"] for p in points} == {"log", "hinge"}
    assert {p["penalty"] for p in points} == {"l1", "l2"}
    assert {p["max_iter"] for p in points} == {50}
    # Log-uniform: about as many draws below the geometric middle as above it.
    below = sum(p["lr"] < math.sqrt(1e-3 * 1.0) for p in points)
    assert 60 < below < 140


def test_models_and_dicts_mean_the_same_space() -> None:
    as_models = parse_search_space({"lr": LogUniform(low=0.1, high=1.0),
                                    "loss": Choice(values=["a", "b"])})
    as_dicts = parse_search_space({"lr": {"kind": "log_uniform", "low": 0.1, "high": 1.0},
                                   "loss": ["a", "b"]})
    assert as_models == as_dicts


@pytest.mark.parametrize(
    ("space", "strategy", "fragments"),
    [
        ({"lr": {"kind": "log_uniform", "low": 0, "high": 1}}, "random",
         ["'lr'", "greater than 0"]),
        ({"lr": {"kind": "uniform", "low": 2, "high": 1}}, "random", ["'lr'", "smaller"]),
        ({"depth": {"kind": "int", "low": 2}}, "random", ["'depth'", "high"]),
        ({"depth": {"kind": "normal", "mu": 0}}, "random", ["'depth'", "log_uniform"]),
        ({"loss": []}, "random", ["'loss'", "empty"]),
        ({"lr": {"kind": "uniform", "low": 0, "high": 1}}, "grid",
         ["'lr'", "no finite grid", "strategy='random'"]),
        ({}, "random", ["empty"]),
        ({"a": [1]}, "bayesian", ["'grid' or 'random'"]),
    ],
)
def test_bad_space_is_refused_naming_the_parameter(
    space: dict, strategy: str, fragments: list[str]
) -> None:
    with pytest.raises(SearchSpaceError) as caught:
        plan_trials(space, 4, strategy, seed=0)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_grid_larger_than_trials_is_refused_not_cut() -> None:
    with pytest.raises(SearchSpaceError, match="6 combinations but trials=4"):
        plan_trials({"a": [1, 2, 3], "b": [1, 2]}, 4, "grid", seed=0)
    with pytest.raises(SearchSpaceError, match="trials >= 1"):
        plan_trials({"a": [1, 2]}, None, "random", seed=0)
