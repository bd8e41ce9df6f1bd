"""Driving the Prefect UI's block forms with Playwright, the way a person would."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
BLOCK_PAGE = re.compile(r".*/blocks/block/[0-9a-f-]{36}$")


def open_create_form(page: Page, ui_url: str, search: str, block_type: str) -> None:
    """Blocks -> + (or Add Block) -> search the catalog -> Create on the type's card."""
    page.goto(f"{ui_url}/blocks")
    # "+" beside the page title, or "Add Block" while the server holds no block yet.
    page.locator('a[href="/blocks/catalog"]').or_(
        page.get_by_role("link", name="Add Block")
    ).first.click()
    page.wait_for_url("**/blocks/catalog")
    page.get_by_placeholder("Search blocks").fill(search)
    card = page.locator("div.p-card", has=page.get_by_text(block_type, exact=True)).last
    card.get_by_role("link", name="Create").or_(
        card.get_by_role("button", name="Create")
    ).first.click()
    page.wait_for_url("**/blocks/catalog/*/create")
    page.get_by_text("Block Name", exact=True).wait_for()


def field_after(page: Page, description: str) -> Locator:
    """The input that follows a field's description (labels of optional fields repeat)."""
    return page.locator(
        f"xpath=//*[contains(text(), {_xpath_text(description)})]"
        "/following::*[self::textarea or self::input][1]"
    )


def fill_block_name(page: Page, name: str) -> None:
    page.locator(
        "xpath=//label[normalize-space()='Block Name']/following::input[1]"
    ).fill(name)


def submit(page: Page) -> None:
    """Press Create and wait for the new block document's page."""
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url(BLOCK_PAGE)
    page.wait_for_load_state("networkidle")


def screenshot_dir() -> Path:
    """docs/images with ``KNOT_UPDATE_SCREENSHOTS=1``, else a scratch folder.

    Every run names its blocks afresh, so the docs' pictures change only when asked to.
    """
    if os.environ.get("KNOT_UPDATE_SCREENSHOTS") == "1":
        return DOC_IMAGES
    folder = Path(tempfile.gettempdir()) / "knot-ui-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def screenshot_form(page: Page, file_name: str) -> Path:
    """Keep a picture of the filled form for the docs."""
    path = screenshot_dir() / file_name
    # One-row text areas would show only the last line of a multi-line value.
    page.eval_on_selector_all(
        "form textarea.p-textarea__control",
        "els => els.forEach(e => e.style.height = (e.scrollHeight + 4) + 'px')",
    )
    # A form taller than the window scrolls inside the page: grow the window to fit it.
    form = page.locator("form").first
    size = page.viewport_size or {"width": 1280, "height": 1000}
    height = int(form.evaluate("e => e.scrollHeight")) + 200
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    try:
        form.screenshot(path=str(path), animations="disabled")
    finally:
        page.set_viewport_size(size)
    return path


def screenshot_page(page: Page, file_name: str) -> Path:
    """Keep a picture of the window (a saved block's page) for the docs."""
    path = screenshot_dir() / file_name
    page.screenshot(path=str(path), animations="disabled")
    return path


def _xpath_text(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"
