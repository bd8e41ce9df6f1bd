"""Every knot block meets Prefect's block standards and is exported and registered."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

import knot_prefect
from knot_prefect._registry import BLOCK_MODULES
from knot_prefect.blocks.base import DOCS_BASE_URL
from knot_prefect.blocks.registry import load_block_classes

BLOCKS = load_block_classes()


class TestKnotBlockStandards(BlockStandardTestSuite):
    @pytest.fixture(params=sorted(BLOCKS))
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return BLOCKS[request.param]


def test_every_registered_block_loads_with_all_extras_installed() -> None:
    # The test environment installs every extra, so no block may be hidden.
    assert sorted(BLOCKS) == sorted(BLOCK_MODULES)


@pytest.mark.parametrize("name", sorted(BLOCK_MODULES))
def test_block_is_exported_from_the_package_root(name: str) -> None:
    assert getattr(knot_prefect, name) is BLOCKS[name]
    assert name in dir(knot_prefect)


def test_collection_entry_point_loads_every_block() -> None:
    (entry_point,) = [
        ep
        for ep in importlib.metadata.entry_points(group="prefect.collections")
        if ep.name == "knot_prefect"
    ]
    module = entry_point.load()
    for name, cls in BLOCKS.items():
        assert getattr(module, name) is cls


@pytest.mark.parametrize("name", sorted(BLOCK_MODULES))
def test_block_type_is_found_by_slug(name: str) -> None:
    cls = BLOCKS[name]
    assert Block.get_block_class_from_key(cls.get_block_type_slug()) is cls


@pytest.mark.parametrize("name", sorted(BLOCK_MODULES))
def test_block_documentation_url_is_its_page_in_the_block_reference(name: str) -> None:
    url = str(BLOCKS[name]._documentation_url)
    page = url.removeprefix(f"{DOCS_BASE_URL}/")
    assert page != url, url
    assert (Path(__file__).parents[1] / "docs" / "blocks" / page).is_file(), url


def test_a_block_subclassed_outside_knot_keeps_its_parents_documentation_url() -> None:
    parent = BLOCKS["DuckDBWarehouse"]

    class TeamWarehouse(parent):  # type: ignore[misc,valid-type]
        _block_type_name = "Team Warehouse"

    assert TeamWarehouse._documentation_url == parent._documentation_url


@pytest.mark.parametrize("name", sorted(BLOCK_MODULES))
def test_the_ui_shows_each_field_docstring_as_one_paragraph(name: str) -> None:
    schema = BLOCKS[name].model_json_schema()
    for field, info in BLOCKS[name].model_fields.items():
        shown = schema["properties"][field]["description"]
        assert shown == " ".join(str(info.description).split()), field
        assert "\n" not in shown, field


def test_a_wrapped_field_docstring_reaches_the_ui_as_its_sentence() -> None:
    schema = BLOCKS["ModelSpec"].model_json_schema()
    assert schema["properties"]["source"]["description"] == (
        "Table name or SQL query returning the training rows: the entity keys, the label "
        "and, without a feature store, the model's input columns."
    )
