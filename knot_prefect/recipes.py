"""Recipes: copyable projects shipped with knot-prefect.

A recipe is a folder with a ``README.md`` whose first ``# `` heading names it and whose
first paragraph says what it shows, plus flow code, ``prefect.yaml``, block documents,
a data generator, tests, a Dockerfile and a CI workflow. In a wheel the recipes live in
``knot_prefect/_recipes``; in a source checkout (editable install) they are read from
the repository's ``recipes/`` folder.

Examples:
    >>> names = [recipe.name for recipe in list_recipes()]
    >>> "churn-duckdb" in names
    True
"""

from __future__ import annotations

import difflib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from knot_prefect.errors import ConfigurationError

# Never copied into a new project: caches and local state of a recipe's test runs.
_IGNORED = ("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".knot",
            "mlruns", "*.duckdb", "*.db")
_RUN_IT = re.compile(r"^##\s+Run it\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Recipe:
    """One recipe folder.

    Attributes:
        name: The folder name, e.g. ``churn-duckdb``.
        path: Where the recipe lives.
        title: The README's first heading.
        summary: The README's first paragraph, on one line.
    """

    name: str
    path: Path
    title: str
    summary: str

    def next_steps(self) -> list[str]:
        """The commands of the README's ``## Run it`` section (its first code block)."""
        return run_it_commands(_read_readme(self.path))


def recipes_root() -> Path:
    """The folder holding the recipes: packaged ones first, else the source checkout's.

    Raises:
        ConfigurationError: When neither exists (a broken installation).
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "_recipes", package.parent / "recipes"):
        if candidate.is_dir():
            return candidate
    raise ConfigurationError(
        f"No recipes found: neither {package / '_recipes'} nor {package.parent / 'recipes'} "
        "exists. Reinstall knot-prefect (pip install --force-reinstall knot-prefect)."
    )


def _read_readme(folder: Path) -> str:
    readme = folder / "README.md"
    return readme.read_text(encoding="utf-8") if readme.is_file() else ""


def parse_readme(text: str, fallback_title: str) -> tuple[str, str]:
    """The first ``# `` heading and the first paragraph after it, as one line each.

    Examples:
        >>> parse_readme("# churn\\n\\nTrains a model\\non DuckDB.\\n\\n## Run it\\n", "x")
        ('churn', 'Trains a model on DuckDB.')
    """
    title, seen_title = fallback_title, False
    summary_lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not seen_title:
            if stripped.startswith("# "):
                title, seen_title = stripped[2:].strip(), True
            continue
        if not stripped:
            if summary_lines:
                break
            continue
        if stripped.startswith(("#", "```", "|", "<!--")):
            if summary_lines:
                break
            continue
        summary_lines.append(stripped)
    return title, " ".join(summary_lines)


def run_it_commands(text: str) -> list[str]:
    """The lines of the first code block under a ``## Run it`` heading.

    Examples:
        >>> run_it_commands("# x\\n## Run it\\n```bash\\nknot blocks apply blocks.yaml\\n```\\n")
        ['knot blocks apply blocks.yaml']
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _RUN_IT.match(line.strip())]
    if not starts:
        return []
    index = starts[0]
    commands: list[str] = []
    inside = False
    for line in lines[index + 1:]:
        if line.strip().startswith("```"):
            if inside:
                return commands
            inside = True
            continue
        if line.startswith("## ") and not inside:
            return commands
        if inside and line.strip():
            commands.append(line.rstrip())
    return commands


def list_recipes() -> list[Recipe]:
    """Every recipe, sorted by name."""
    root = recipes_root()
    recipes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith((".", "_")) or not (folder / "README.md").is_file():
            continue
        title, summary = parse_readme(_read_readme(folder), folder.name)
        recipes.append(Recipe(folder.name, folder, title, summary))
    return recipes


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ConfigurationError: For an unknown name; the message lists the recipes and the
            closest match.
    """
    recipes = {recipe.name: recipe for recipe in list_recipes()}
    if name in recipes:
        return recipes[name]
    close = difflib.get_close_matches(name, list(recipes), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(
        f"No recipe called {name!r}.{hint} Recipes: {', '.join(recipes) or 'none'} "
        "(see `knot recipe list`)."
    )


def copy_recipe(name: str, destination: str | Path) -> Path:
    """Copy a recipe into a new project folder.

    Args:
        name: The recipe's name.
        destination: A folder that does not exist yet, or an empty one.

    Returns:
        The project folder.

    Raises:
        ConfigurationError: For an unknown recipe, a destination that is a file or a
            folder with content (nothing is overwritten), or one that cannot be written.
    """
    recipe = get_recipe(name)
    target = Path(destination).expanduser()
    if target.exists():
        if not target.is_dir():
            raise ConfigurationError(f"{str(target)!r} is a file; give a folder for the project.")
        if any(target.iterdir()):
            raise ConfigurationError(
                f"{str(target)!r} is not empty; give a new or empty folder so nothing is "
                "overwritten."
            )
        target.rmdir()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(recipe.path, target, ignore=shutil.ignore_patterns(*_IGNORED))
    except (OSError, shutil.Error) as exc:
        # Leave nothing half-copied behind; a partial project would look complete.
        shutil.rmtree(target, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(
            f"Cannot create the project folder {str(target)!r}: {reason}. Give a folder "
            "you can write to, e.g. `knot recipe new NAME ./my-project`."
        ) from exc
    return target
