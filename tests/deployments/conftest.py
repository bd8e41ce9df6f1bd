"""Fixtures of the deployment tests: the real Prefect server with knot's work pools."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
PREFECT_YAML = FLOWS_DIR / "prefect.yaml"


def load_prefect_yaml() -> dict[str, Any]:
    content: dict[str, Any] = yaml.safe_load(PREFECT_YAML.read_text())
    return content


@pytest.fixture(scope="module")
def real_server(prefect_server: str) -> Iterator[Any]:
    """A sync client of the real Prefect server, which is also the current API meanwhile.

    Every work pool of flows/prefect.yaml exists, created from knot's base job templates.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from knot_prefect.deploy import base_job_template

    pools: dict[str, str] = load_prefect_yaml()["definitions"]["work_pools"]
    with (
        temporary_settings({PREFECT_API_URL: prefect_server}),
        get_client(sync_client=True) as client,
    ):
        for name, pool_type in pools.items():
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_work_pool(
                    WorkPoolCreate(
                        name=name, type=pool_type,
                        base_job_template=base_job_template(pool_type, gpu=True),
                    )
                )
        yield client
