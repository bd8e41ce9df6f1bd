"""What a trial accepts from ``train_fn`` and when a failed trial is tried again."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.states import Failed

from knot_prefect.tuning.trial import LOCK_RETRIES, RetryTrial, TrialFailedError, _unpack


class Attempt:
    def __init__(self, run_count: int) -> None:
        self.run_count = run_count


LOCKED = RuntimeError("(sqlite3.OperationalError) database is locked")


@pytest.mark.parametrize(
    ("output", "metrics", "model"),
    [
        ({"auc": 0.9, "loss": 1}, {"auc": 0.9, "loss": 1.0}, None),
        (({"auc": 0.5}, "runs:/abc/model"), {"auc": 0.5}, "runs:/abc/model"),
    ],
)
def test_metrics_and_model_come_back_normalised(output: Any, metrics: dict, model: Any) -> None:
    assert _unpack(output, "auc") == (metrics, model)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ({"loss": 1.0}, "no metric 'auc'; it returned ['loss']"),
        ({"auc": float("nan")}, "'auc' is nan, not a finite number"),
        ({"auc": "high"}, "metric 'auc' is 'high', not a number"),
        (0.9, "return a dict of metrics"),
    ],
)
def test_unusable_outputs_say_what_to_return(output: Any, message: str) -> None:
    with pytest.raises((KeyError, ValueError, TypeError)) as caught:
        _unpack(output, "auc")
    assert message in str(caught.value)


def test_lock_errors_are_retried_and_training_errors_only_when_asked() -> None:
    diverged = Failed(data=TrialFailedError("Trial 1 failed", 1, "run", "ValueError: x"))
    locked_trial = Failed(data=TrialFailedError("Trial 1 failed", 1, "run",
                                                f"OperationalError: {LOCKED}"))
    assert RetryTrial(0)(None, Attempt(1), Failed(data=LOCKED))
    assert RetryTrial(0)(None, Attempt(LOCK_RETRIES), locked_trial)
    assert not RetryTrial(0)(None, Attempt(1), diverged)
    assert RetryTrial(2)(None, Attempt(2), diverged)
    assert not RetryTrial(2)(None, Attempt(3), diverged)


def test_trial_errors_survive_pickling_with_their_run() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(TrialFailedError("Trial 4 failed", 4, "r1", "KeyError")))
    assert (str(error), error.index, error.run_id, error.error) == (
        "Trial 4 failed", 4, "r1", "KeyError")
