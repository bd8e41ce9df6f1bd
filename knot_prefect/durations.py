"""Durations written the way people say them: ``90s``, ``30m``, ``6h``, ``1d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

from knot_prefect.errors import ConfigurationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str | timedelta, option: str = "duration") -> timedelta:
    """A positive duration written ``90s``, ``30m``, ``6h``, ``1d`` or ``2w``.

    Raises:
        ConfigurationError: ``value`` is not such a duration (names ``option``).

    Examples:
        >>> parse_duration("6h")
        datetime.timedelta(seconds=21600)
        >>> parse_duration(timedelta(minutes=5))
        datetime.timedelta(seconds=300)
    """
    if isinstance(value, timedelta):
        duration = value
    else:
        found = _DURATION.match(str(value))
        if not found:
            raise ConfigurationError(
                f"{option} {value!r} is not a duration: write a number and a unit, "
                "s, m, h, d or w, e.g. '30m', '6h' or '1d'."
            )
        duration = timedelta(**{_UNITS[found[2]]: float(found[1])})
    if duration <= timedelta(0):
        raise ConfigurationError(f"{option} must be longer than zero, not {value!r}.")
    return duration


__all__ = ["parse_duration"]
