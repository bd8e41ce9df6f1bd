"""Fixtures of the deploy tests: offline Google credentials and a flow run to prepare for."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def google_adc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Application default credentials that load offline, as prefect-gcp's workers need.

    The Cloud Run and Vertex AI job configurations hold a ``GcpCredentials`` block that
    resolves Google's application default credentials when it is built; nothing here
    contacts Google (there is no emulator for Cloud Run or Vertex AI jobs).
    """
    path = tmp_path_factory.mktemp("gcp") / "adc.json"
    path.write_text(json.dumps({
        "type": "authorized_user",
        "client_id": "knot-tests.apps.googleusercontent.com",
        "client_secret": "unused",
        "refresh_token": "unused",
    }))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        patch.setenv("GOOGLE_CLOUD_PROJECT", "knot-tests")
        yield path


@pytest.fixture
def flow_run():  # type: ignore[no-untyped-def]
    """A flow run as the worker receives it from the API, to prepare a job for."""
    from prefect.client.schemas.objects import FlowRun

    return FlowRun(flow_id=uuid.uuid4(), deployment_id=uuid.uuid4(), name="knot-test-run")
