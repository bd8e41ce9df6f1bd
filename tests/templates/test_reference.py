"""The flow parameter reference: every parameter documented, the page up to date."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

from knot_prefect.flows.reference import flow_objects, parameter_reference, undocumented

PAGE = Path(__file__).parents[2] / "docs" / "flow-parameters.md"


@pytest.mark.parametrize("name", list(flow_objects()))
def test_every_parameter_of_every_flow_template_is_documented(name: str) -> None:
    assert undocumented(flow_objects()[name]) == []


def test_the_checker_finds_an_undocumented_parameter() -> None:
    @flow
    def half_documented(table: str, forgotten: int = 1) -> None:
        """Do something.

        Args:
            table: The table.
        """

    assert undocumented(half_documented) == ["forgotten"]


def test_the_reference_page_is_generated_from_the_flows() -> None:
    assert PAGE.read_text() == parameter_reference(), (
        "docs/flow-parameters.md is out of date: run "
        "`python -m knot_prefect.flows.reference docs/flow-parameters.md`."
    )
    for name, template in flow_objects().items():
        for parameter in template.parameters.properties:
            assert f"| `{parameter}` |" in PAGE.read_text().split(f"## `{name}`")[1], (
                name, parameter)


def test_the_generator_answers_help_instead_of_writing_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from knot_prefect.flows.reference import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "PATH" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
