"""User code named by import path (``"package.module:function"``).

Flow parameters must be JSON for deployments, so user code (a training function, a
trainer) is passed by import path and imported where it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from knot_prefect.errors import ConfigurationError


def import_callable(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``.

    Flow parameters must be JSON for deployments, so user code (a training function)
    is passed by import path.

    Raises:
        ConfigurationError: When the path is malformed or names nothing callable.

    Examples:
        >>> import_callable("math:sqrt")(9.0)
        3.0
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"{path!r} is not an import path: write 'package.module:function'."
        )
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"Cannot import {path!r}: {exc}.") from exc
    if not callable(value):
        raise ConfigurationError(f"{path!r} is not callable.")
    return value  # type: ignore[no-any-return]
