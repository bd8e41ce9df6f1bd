"""Lazy attribute access for packages whose names live in other modules."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


def names_by_module(modules: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Turn ``module path -> the public names it defines`` into ``name -> module path``.

    A package lists each module once with its names, and passes the result to
    :func:`lazy_module_attributes`.

    Examples:
        >>> names_by_module({"json": ("dumps", "loads"), "csv": ("reader",)})
        {'dumps': 'json', 'loads': 'json', 'reader': 'csv'}
    """
    return {name: module for module, names in modules.items() for name in names}


def lazy_module_attributes(
    package: str,
    exports: dict[str, str],
    namespace: dict[str, Any],
    requires: dict[str, tuple[str, str]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build ``__getattr__`` and ``__dir__`` for a package with lazily imported names.

    Args:
        package: The package's ``__name__`` (for error messages).
        exports: Public name -> module path that defines it.
        namespace: The package's ``globals()``, where resolved names are cached.
        requires: Public name -> (top-level package it needs, extra that installs it).
            Without that package the name is left out of ``dir()`` (so
            ``prefect block register -m PACKAGE`` registers what is installed) and
            accessing it names the extra.

    Returns:
        The package's ``__getattr__`` and ``__dir__``.
    """
    needs = requires or {}

    def __getattr__(name: str) -> Any:
        module_path = exports.get(name)
        if module_path is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as error:
            if name in needs and error.name == needs[name][0]:
                raise ModuleNotFoundError(
                    f"{name} needs {needs[name][0]}, which is not installed: "
                    f"pip install 'knot-prefect[{needs[name][1]}]'.", name=error.name
                ) from error
            raise
        value = getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        missing = {name for name, (module, _) in needs.items()
                   if importlib.util.find_spec(module) is None}
        return sorted((set(namespace) | set(exports)) - missing)

    return __getattr__, __dir__
