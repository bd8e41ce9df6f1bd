"""``knot doctor``: can every configured knot block reach its system?"""

from __future__ import annotations

import typer


def doctor() -> None:
    """Check every knot block document of the current Prefect API: can it connect?

    Prints a table of ok/failed with the reason, and exits with 1 if any failed. The
    checks change nothing: DuckDB files are opened read-only, and a missing local file
    or folder is a failure that names its path.
    """
    from rich.console import Console
    from rich.table import Table

    from knot_prefect.cli._output import prefect_api
    from knot_prefect.documents.diagnostics import check_all_documents

    console = Console()
    with prefect_api(), console.status("Checking knot block documents..."):
        results = check_all_documents()
    if not results:
        typer.echo("No knot block documents found. Apply some with: knot blocks apply FILE")
        return
    table = Table("block", "status", "detail")
    for result in results:
        status = "[green]ok[/green]" if result.ok else "[red]failed[/red]"
        table.add_row(result.reference, status, result.detail)
    console.print(table)
    if not all(result.ok for result in results):
        raise typer.Exit(1)
