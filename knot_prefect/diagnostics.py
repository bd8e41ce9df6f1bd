"""Connection checks behind ``knot doctor``."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one block's connection check."""

    reference: str
    ok: bool
    detail: str
    seconds: float


def check_all_documents() -> list[CheckResult]:
    """Load every knot block document and run its ``check_connection()``.

    A failure is reported with the exception's type and message; block messages never
    contain secrets, so they are safe to print.
    """
    from knot_prefect.inventory import knot_documents, load_document

    results: list[CheckResult] = []
    for slug, name in knot_documents():
        reference = f"{slug}/{name}"
        started = time.perf_counter()
        try:
            block, _ = load_document(reference)
            detail = block.check_connection()  # type: ignore[attr-defined]
            ok = True
        except Exception as exc:  # Every failure is a row in the report.
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results.append(CheckResult(reference, ok, detail, time.perf_counter() - started))
    return results
