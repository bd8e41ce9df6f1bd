"""A script importing knot_prefect starts Prefect's temporary server as `knot` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json
import prefect  # before knot: Prefect's settings are already read
import knot_prefect
from prefect.settings import get_current_settings
server = get_current_settings().server
print(json.dumps([server.ephemeral.startup_timeout_seconds, server.analytics_enabled]))
"""


def probe(**variables: str) -> list[object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(variables)
    completed = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                               text=True, timeout=120, check=True)
    return list(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_scripts_wait_like_the_cli_and_without_telemetry() -> None:
    from knot_prefect._embedded import EMBEDDED_PREFECT_DEFAULTS

    timeout = int(EMBEDDED_PREFECT_DEFAULTS["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"])
    assert probe() == [timeout, False]


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "45", [45, False]),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "true", [180, True]),
])
def test_a_value_the_user_set_wins(variable: str, value: str, expected: list[object]) -> None:
    assert probe(**{variable: value}) == expected


def test_the_cli_applies_the_same_defaults() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    code = (
        "import os, sys\n"
        "from typer.testing import CliRunner\n"
        "from knot_prefect.cli.main import app\n"
        "CliRunner().invoke(app, ['recipe', 'list'])\n"
        "print(os.environ['PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS'])\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, timeout=120, check=True)
    assert completed.stdout.strip().splitlines()[-1] == "180"
