"""A trivial flow deployed by the tests (as a file entrypoint and as a module path)."""

from __future__ import annotations

from prefect import flow


@flow(name="knot-tiny")
def tiny(rows: int = 3) -> int:
    return rows * 2
