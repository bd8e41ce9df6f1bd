"""``knot recipe``: list the recipes and copy one into a new project."""

from __future__ import annotations

import typer

from knot_prefect.cli._output import fail

app = typer.Typer(help="Copyable projects: list them, copy one.", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """List the recipes with what each one shows."""
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.recipes import list_recipes

    try:
        recipes = list_recipes()
    except ConfigurationError as exc:
        fail(str(exc))
    width = max((len(r.name) for r in recipes), default=0)
    for recipe in recipes:
        typer.echo(f"{recipe.name.ljust(width)}  {recipe.summary or recipe.title}")
    typer.echo("\nCopy one: knot recipe new NAME DIR")


@app.command("new")
def new_command(
    name: str = typer.Argument(..., help="Recipe name, as `knot recipe list` shows it."),
    directory: str = typer.Argument(..., help="New (or empty) folder for the project."),
) -> None:
    """Copy recipe NAME into DIR and print the next steps."""
    import shlex

    from knot_prefect.errors import ConfigurationError
    from knot_prefect.recipes import copy_recipe, get_recipe

    try:
        target = copy_recipe(name, directory)
        steps = get_recipe(name).next_steps()
    except ConfigurationError as exc:
        fail(str(exc))
    typer.echo(f"Copied recipe {name!r} to {target}.")
    typer.echo("\nNext steps:")
    typer.echo(f"  cd {shlex.quote(str(target))}")
    for step in steps or ["less README.md"]:
        typer.echo(f"  {step}")
