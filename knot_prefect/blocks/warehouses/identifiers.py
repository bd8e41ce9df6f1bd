"""Validation and quoting of SQL identifiers (schema, table and column names).

Values are always bound parameters; identifiers cannot be, so every identifier that
reaches SQL text passes through :func:`quote_identifier` or :class:`TableName`.

Examples:
    >>> TableName.parse("analytics.predictions").quoted()
    '"analytics"."predictions"'
    >>> quote_identifier("churn score")
    '"churn score"'
    >>> quote_identifier('x"; DROP TABLE t; --')  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InvalidIdentifierError: Invalid identifier 'x"; DROP TABLE t; --': ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from knot_prefect.errors import ConfigurationError

# Letters, digits, underscore, space, dash and dollar; no quotes, semicolons or dots.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_ $\-]{0,127}$")


class InvalidIdentifierError(ConfigurationError, ValueError):
    """A schema, table or column name is not a safe SQL identifier."""


def validate_identifier(name: str, kind: str = "identifier") -> str:
    """Check that ``name`` is a safe SQL identifier.

    Args:
        name: The identifier to check.
        kind: What the identifier names, used in the error message (e.g. ``"column"``).

    Returns:
        ``name`` unchanged.

    Raises:
        InvalidIdentifierError: When ``name`` holds quotes, semicolons, dots or other
            characters outside letters, digits, ``_``, ``$``, ``-`` and spaces.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or name != name.strip():
        raise InvalidIdentifierError(
            f"Invalid {kind} {name!r}: use 1-128 letters, digits, '_', '$', '-' or spaces, "
            "starting with a letter or '_' (no quotes, dots or semicolons)."
        )
    return name


def quote_identifier(name: str, kind: str = "identifier", quote: str = '"') -> str:
    """Validate ``name`` and quote it for SQL.

    Args:
        name: The identifier.
        kind: What it names, for the error message.
        quote: The quote character of the SQL dialect (``"`` or a backtick).

    Returns:
        The quoted identifier.
    """
    return f"{quote}{validate_identifier(name, kind)}{quote}"


@dataclass(frozen=True)
class TableName:
    """A table name with an optional schema (``schema.table``), validated.

    Attributes:
        table: The table name.
        schema: The schema (or dataset) name, if any.
    """

    table: str
    schema: str | None = None

    def __post_init__(self) -> None:
        validate_identifier(self.table, "table name")
        if self.schema is not None:
            validate_identifier(self.schema, "schema name")

    @classmethod
    def parse(cls, name: str) -> TableName:
        """Parse ``"table"`` or ``"schema.table"``.

        Args:
            name: The dotted name.

        Returns:
            The validated table name.

        Raises:
            InvalidIdentifierError: When a part is not a safe identifier or there are
                more than two parts.
        """
        if not isinstance(name, str):
            raise InvalidIdentifierError(f"Invalid table name {name!r}: expected a string.")
        parts = name.split(".")
        if len(parts) == 1:
            return cls(table=parts[0])
        if len(parts) == 2:
            return cls(table=parts[1], schema=parts[0])
        raise InvalidIdentifierError(
            f"Invalid table name {name!r}: use 'table' or 'schema.table'."
        )

    def quoted(self, quote: str = '"') -> str:
        """The name quoted for SQL, schema first when present."""
        table = f"{quote}{self.table}{quote}"
        return f"{quote}{self.schema}{quote}.{table}" if self.schema else table

    def with_table(self, table: str) -> TableName:
        """The same schema with another table name (e.g. a staging table)."""
        return TableName(table=table, schema=self.schema)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


@dataclass(frozen=True)
class IdentifierLimit:
    """The longest name a backend keeps whole (longer names it would cut or refuse).

    Attributes:
        max_bytes: The most UTF-8 bytes a name may have.
        backend: The backend's name, for the error message.

    Examples:
        >>> IdentifierLimit(63, "PostgreSQL").check("scores", "table name")
        'scores'
        >>> IdentifierLimit(63, "PostgreSQL").check("x" * 64)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        InvalidIdentifierError: ... is 64 bytes long: PostgreSQL keeps at most 63 bytes ...
    """

    max_bytes: int
    backend: str

    def check(self, name: str, kind: str = "identifier") -> str:
        """Refuse ``name`` when it is longer than the limit; return it unchanged otherwise.

        Raises:
            InvalidIdentifierError: Naming the limit and the backend.
        """
        size = len(name.encode())
        if size > self.max_bytes:
            raise InvalidIdentifierError(
                f"The {kind} {name!r} is {size} bytes long: {self.backend} keeps at most "
                f"{self.max_bytes} bytes of a name (it would cut the rest off, so two long "
                "names could become one). Use a shorter name."
            )
        return name

    def check_table(self, table: TableName) -> TableName:
        """Check both parts of a table name."""
        self.check(table.table, "table name")
        if table.schema is not None:
            self.check(table.schema, "schema name")
        return table
