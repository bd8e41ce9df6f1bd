"""drift_trigger: what it counts, which severities it matches, and the settings it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prefect.events.schemas.events import Resource

from knot_prefect.deploy.triggers import drift_trigger
from knot_prefect.durations import parse_duration
from knot_prefect.errors import ConfigurationError
from knot_prefect.monitoring.drift import ColumnDrift
from knot_prefect.monitoring.events import drift_event


def resource_of(severity_psi: float, alias: str = "champion") -> Resource:
    event = drift_event("churn", alias, 3, [ColumnDrift("x1", severity_psi, 0.5, 0.0, 10)],
                        psi_warning=0.1, psi_error=0.25)
    assert event is not None
    return Resource.model_validate(event["resource"])


def test_warning_counts_every_drifted_run_and_error_only_error_drift() -> None:
    warning, error = resource_of(0.15), resource_of(0.6)
    every = drift_trigger("churn@champion", consecutive=2, within="6h")
    only_errors = drift_trigger("churn@champion", severity="error")
    assert every.threshold == 2 and every.within == timedelta(hours=6)
    assert every.match.matches(warning) and every.match.matches(error)
    assert not only_errors.match.matches(warning) and only_errors.match.matches(error)
    assert not every.match.matches(resource_of(0.6, alias="challenger"))


@pytest.mark.parametrize(("settings", "says"), [
    ({"consecutive": 0}, "1 or more"),
    ({"consecutive": True}, "1 or more"),
    ({"severity": "critical"}, "use 'warning'"),
    ({"within": "a day"}, "e.g. '30m', '6h' or '1d'"),
    ({"within": "0s"}, "longer than zero"),
])
def test_bad_settings_are_refused_with_the_fix(settings: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        drift_trigger("churn@champion", **settings)  # type: ignore[arg-type]


def test_durations_read_the_way_people_write_them() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration(" 1.5h ") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
