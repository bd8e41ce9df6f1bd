"""Fixtures of the UI tests: knot's block types on a real server, and a browser page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import services_required
from tests.ui.forms import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def ui_url(prefect_server: str) -> Iterator[str]:
    """The Prefect UI's address; knot's block types are registered with its server.

    While the module runs, Python talks to the same server, so ``Block.load`` reads what
    the browser created.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from knot_prefect import ComputeProfile, DataContract, MLflowTracking, SqlWarehouse

    with temporary_settings({PREFECT_API_URL: prefect_server}):
        for block_class in (MLflowTracking, DataContract, SqlWarehouse, ComputeProfile):
            block_class.register_type_and_schema(_sync=True)  # type: ignore[call-arg]
        yield prefect_server.removesuffix("/api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} not found: apt-get install -y chromium"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(60_000)  # The UI is slow to boot on a busy 2-core machine.
    try:
        yield context.new_page()
    finally:
        context.close()
