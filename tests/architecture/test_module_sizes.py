"""Large modules are explained: each one over the size limit is named in the architecture page."""

from __future__ import annotations

from pathlib import Path

import knot_prefect

PACKAGE_DIR = Path(knot_prefect.__file__).parent
ARCHITECTURE_PAGE = PACKAGE_DIR.parent / "docs" / "architecture.md"
# The architecture page's rule: modules stay under about 500 lines.
MAX_LINES = 500


def _large_modules_section() -> str:
    text = ARCHITECTURE_PAGE.read_text()
    start = text.index("## Large modules")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_every_module_over_the_limit_is_explained_in_the_architecture_page() -> None:
    section = _large_modules_section()
    unexplained = [
        relative
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if len(path.read_text().splitlines()) > MAX_LINES
        and f"`{(relative := path.relative_to(PACKAGE_DIR).as_posix())}`" not in section
    ]
    assert not unexplained, (
        f"Modules over {MAX_LINES} lines without a sentence under 'Large modules' in "
        f"docs/architecture.md: {unexplained}. Split them, or say there why they are whole."
    )
