"""Nested blocks from optional integrations (prefect-aws, prefect-gcp, ...).

A knot block may nest a block of an integration that only some extras install, such as
``FeastFeatureStore.s3_bucket`` (prefect-aws). Without that integration the knot block
still loads and works; only a document that fills the field fails, naming the extra
that provides it.

Examples:
    >>> from pydantic import BaseModel
    >>> Bucket = optional_block("no_such_integration.s3", "S3Bucket", "aws")
    >>> class Store(BaseModel):
    ...     bucket: Bucket | None = None
    >>> Store().bucket is None
    True
    >>> try:
    ...     Store(bucket={"bucket_name": "x"})
    ... except ValueError as error:
    ...     print("pip install 'knot-prefect[aws]'" in str(error))
    True
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

from pydantic import BeforeValidator


def optional_block(module: str, name: str, extra: str) -> Any:
    """The block class ``module.name``, or a type that accepts only ``None`` without it.

    Args:
        module: The module defining the block class, e.g. ``prefect_aws.s3``.
        name: The class name, e.g. ``S3Bucket``.
        extra: The knot-prefect extra that installs the module, e.g. ``aws``.

    Returns:
        The class when its package is installed; otherwise an annotated type whose
        validator refuses any value with the install command.
    """
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as error:
        if not error.name or not module.startswith(error.name.split(".")[0]):
            raise  # the integration is installed but broken: show the real error

    def refuse(value: Any) -> Any:
        raise ValueError(
            f"This field holds a {name} block from {module.split('.')[0]}, which is not "
            f"installed: pip install 'knot-prefect[{extra}]'."
        )

    return Annotated[Any, BeforeValidator(refuse)]
