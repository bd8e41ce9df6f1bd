"""Lazy attribute access for packages whose names live in other modules."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_module_attributes(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build ``__getattr__`` and ``__dir__`` for a package with lazily imported names.

    Args:
        package: The package's ``__name__`` (for error messages).
        exports: Public name -> module path that defines it.
        namespace: The package's ``globals()``, where resolved names are cached.

    Returns:
        The package's ``__getattr__`` and ``__dir__``.
    """

    def __getattr__(name: str) -> Any:
        module_path = exports.get(name)
        if module_path is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_path), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
