"""``knot blocks``: register knot block types, apply and export block documents."""

from __future__ import annotations

from pathlib import Path

import typer

from knot_prefect.cli._output import fail, prefect_api

app = typer.Typer(help="Register block types; apply and export block documents.",
                  no_args_is_help=True)


@app.command("register")
def register() -> None:
    """Register every knot block type with the current Prefect API."""
    from rich.console import Console

    from knot_prefect.blocks.registry import load_block_classes

    console = Console(stderr=True)
    classes = load_block_classes()
    with prefect_api(), console.status("Registering knot block types..."):
        for cls in classes.values():
            cls.register_type_and_schema()
    for cls in classes.values():
        typer.echo(f"registered {cls.get_block_type_slug()}")
    typer.echo(f"{len(classes)} knot block types registered.")


@app.command("apply")
def apply(
    file: Path = typer.Argument(..., help="A block document YAML file (see blocks/local.yaml)."),
) -> None:
    """Create or update the block documents of FILE, idempotently.

    Every document is validated first; if any is invalid, nothing is applied.
    """
    from knot_prefect.documents import apply_file
    from knot_prefect.errors import BlockDocumentError

    try:
        with prefect_api():
            outcomes = apply_file(file)
    except BlockDocumentError as exc:
        fail(str(exc))
    for outcome in outcomes:
        typer.echo(f"{outcome.action:9} {outcome.block_type}/{outcome.name}")


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Document name, or TYPE/NAME when names clash."),
) -> None:
    """Print block document NAME as YAML, with secrets replaced by ${VAR} references."""
    from knot_prefect.blocks.base import InvalidBlockDocumentError
    from knot_prefect.blocks.resolve import BlockNotFoundError
    from knot_prefect.documents import export_document
    from knot_prefect.documents.inventory import load_any_document

    try:
        with prefect_api():
            block, document_name = load_any_document(name)
    except (BlockNotFoundError, InvalidBlockDocumentError) as exc:
        fail(str(exc))
    typer.echo(export_document(block, document_name), nl=False)


@app.command("ls")
def list_documents() -> None:
    """List the knot block documents of the current Prefect API."""
    from knot_prefect.documents.inventory import knot_documents

    with prefect_api():
        documents = knot_documents()
    for slug, name in documents:
        typer.echo(f"{slug}/{name}")
