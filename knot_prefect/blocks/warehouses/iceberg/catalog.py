"""Where an Iceberg lake lives: its catalog, its tables' locations, and its errors.

An Iceberg table is data files plus metadata files in the table's folder; the
catalog holds one pointer per table to its current metadata file, and a commit is
one compare-and-swap of that pointer. knot's default catalog is a SQLite file in the
lake's folder; teams share a PostgreSQL database (pyiceberg's SQL catalog) or a REST
catalog. Data files are read and written with the lake's filesystem, so an S3 lake
takes its credentials from the nested prefect-aws block, as the other lakes do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import redact
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    TableNotFoundError,
    WarehouseError,
    table_not_found_error,
)
from knot_prefect.blocks.warehouses.identifiers import TableName

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage

#: The namespace of tables named without a schema (``scores`` is ``default.scores``).
DEFAULT_NAMESPACE = "default"
#: The file of the default SQL catalog, in the lake's folder.
CATALOG_FILE = "catalog.sqlite"


@dataclasses.dataclass(frozen=True)
class IcebergLocation:
    """An Iceberg lake: its storage, its catalog and the secrets to reach them.

    Attributes:
        storage: The lake's root and fsspec filesystem (tables' folders, staged files).
        catalog_uri: A SQLAlchemy URL (SQL catalog) or an ``http(s)://`` URL (REST).
        catalog_name: The catalog's name (several lakes may share one database).
        properties: pyiceberg catalog properties: FileIO settings, a REST credential
            (secrets included: never log them).
        secrets: Values to remove from any message (passwords, keys).
    """

    storage: LakeStorage
    catalog_uri: str = dataclasses.field(repr=False)
    catalog_name: str = "knot"
    properties: tuple[tuple[str, str], ...] = dataclasses.field(repr=False, default=())
    secrets: tuple[str, ...] = dataclasses.field(repr=False, default=())

    @property
    def location(self) -> str:
        """The lake's root as a URL (``s3://...`` or a local path)."""
        return self.storage.location

    @property
    def is_rest(self) -> bool:
        """Whether the catalog is a REST catalog (otherwise a SQL database)."""
        return self.catalog_uri.startswith(("http://", "https://"))

    def catalog(self) -> Catalog:
        """The pyiceberg catalog (one per process and configuration)."""
        return _catalog(self.catalog_name, self.catalog_uri, self.is_rest,
                        self.uri_of(self.storage.root), self.properties)

    def identifier(self, table: TableName) -> tuple[str, str]:
        """The table's Iceberg identifier: ``(namespace, table)``."""
        return (table.schema or DEFAULT_NAMESPACE, table.table)

    def table_uri(self, table: TableName) -> str:
        """The folder of the table's data and metadata files, as a URI."""
        return self.uri_of(self.storage.table_dir(table))

    def uri_of(self, path: str) -> str:
        """A path of the lake's filesystem as pyiceberg's FileIO names it."""
        return {"s3": "s3://", "gcs": "gs://"}.get(self.storage.kind, "") + path

    def path_of(self, uri: str) -> str:
        """A data file's URI as a path of the lake's filesystem."""
        for scheme in ("s3://", "s3a://", "gs://", "file://"):
            if uri.startswith(scheme):
                return uri[len(scheme):]
        return uri

    def clean(self, text: str) -> str:
        """``text`` without the secrets of this location."""
        return redact(text, self.secrets)


def catalog_uri_parts(uri: str) -> list[str]:
    """What of a catalog URI no message may show: all of it, and each part naming where.

    The password, the host, the database (or a REST catalog's path) and the whole
    URI: a message about the catalog says that the catalog failed, not where it is.
    """
    from urllib.parse import urlsplit

    parts = [uri]
    with contextlib.suppress(ValueError):
        split = urlsplit(uri)
        parts += [split.netloc, split.hostname or "", split.password or "",
                  split.path.strip("/")]
    if not uri.startswith(("http://", "https://")):
        from sqlalchemy.engine import make_url

        with contextlib.suppress(Exception):
            url = make_url(uri)
            parts += [url.password or "", url.host or "", url.database or ""]
    return sorted({part for part in parts if part}, key=len, reverse=True)


@functools.lru_cache(maxsize=32)
def _catalog(name: str, uri: str, rest: bool, warehouse: str,
             properties: tuple[tuple[str, str], ...]) -> Catalog:
    if rest:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(name, uri=uri, warehouse=warehouse, **dict(properties))
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(name, uri=uri, warehouse=warehouse, **dict(properties))


def open_table(location: IcebergLocation, table: TableName) -> Table | None:
    """The table at its current snapshot; None when the catalog has no such table."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    with iceberg_errors(location, str(table)):
        try:
            return location.catalog().load_table(location.identifier(table))
        except (NoSuchTableError, NoSuchNamespaceError):
            return None


def table_or_raise(location: IcebergLocation, table: TableName) -> Table:
    """The table (see :func:`open_table`).

    Raises:
        TableNotFoundError: When the catalog has no table of that name.
    """
    found = open_table(location, table)
    if found is None:
        raise table_not_found_error(table, f"the Iceberg lake at {location.location}",
                                    table_names(location))
    return found


def table_names(location: IcebergLocation) -> list[str]:
    """The catalog's tables under this lake, as ``[schema.]table``, sorted."""
    found = []
    with iceberg_errors(location, "the catalog"):
        catalog = location.catalog()
        for namespace in catalog.list_namespaces():
            for identifier in catalog.list_tables(namespace):
                schema, name = ".".join(identifier[:-1]), identifier[-1]
                found.append(name if schema == DEFAULT_NAMESPACE else f"{schema}.{name}")
    return sorted(found)


def create_transaction(location: IcebergLocation, table: TableName, schema: pa.Schema) -> Any:
    """A transaction creating ``table`` in its folder: nothing exists until it commits."""
    namespace, _ = location.identifier(table)
    with iceberg_errors(location, str(table)):
        catalog = location.catalog()
        catalog.create_namespace_if_not_exists(namespace)
        return catalog.create_table_transaction(location.identifier(table), schema,
                                                location=location.table_uri(table))


def arrow_schema(iceberg_table: Table, schema_id: int | None = None) -> pa.Schema:
    """The table's columns (at a schema id, or current) as a plain Arrow schema.

    pyiceberg hands strings as ``large_string``; knot's frames and DuckDB's results
    use ``string``, so the schema names the common types.
    """
    import pyarrow as pa

    schema = iceberg_table.schemas()[schema_id] if schema_id is not None else iceberg_table.schema()
    fields = []
    for field in schema.as_arrow():
        data_type = field.type
        if pa.types.is_large_string(data_type):
            data_type = pa.string()
        elif pa.types.is_large_binary(data_type):
            data_type = pa.binary()
        fields.append(pa.field(field.name, data_type, field.nullable))
    return pa.schema(fields)


@contextlib.contextmanager
def iceberg_errors(location: IcebergLocation, table: str) -> Iterator[None]:
    """Raise pyiceberg and catalog errors met in the block as knot's warehouse errors.

    A commit whose base snapshot another writer replaced first (pyiceberg retries
    what it can reconcile; a conflicting overwrite or delete it refuses) becomes the
    retryable :class:`ConcurrentWriteError`; every message is cleaned of the
    catalog's secrets.
    """
    from pyiceberg.exceptions import (
        CommitFailedException,
        CommitStateUnknownException,
        NoSuchTableError,
        TableAlreadyExistsError,
        ValidationException,
    )

    where = f"the Iceberg lake at {location.location}"
    try:
        yield
    except (CommitFailedException, ValidationException, TableAlreadyExistsError) as exc:
        raise ConcurrentWriteError(
            f"Another writer committed to {table} in {where} first "
            f"({location.clean(str(exc))}); nothing of this write was committed, and "
            "retrying the write is safe."
        ) from None
    except CommitStateUnknownException as exc:
        raise WarehouseError(
            f"The catalog did not confirm the commit to {table} in {where} "
            f"({location.clean(str(exc))}): read the table to see whether it landed."
        ) from None
    except NoSuchTableError as exc:
        raise TableNotFoundError(
            f"Table {table} does not exist in {where}: {location.clean(str(exc))}"
        ) from None
    except WarehouseError:
        raise
    except Exception as exc:
        if _is_catalog_error(exc):
            message = location.clean(str(exc))
            if "database is locked" in message:
                raise ConcurrentWriteError(
                    f"Another writer held the catalog of {where} while committing to "
                    f"{table}; nothing of this write was committed, and retrying the "
                    "write is safe."
                ) from None
            raise WarehouseError(
                f"Cannot reach the catalog of {where} ({table}): {message}. Check the "
                "block's catalog_uri and credentials."
            ) from None
        if isinstance(exc, OSError):
            raise WarehouseError(
                f"Cannot reach {where} ({table}): {location.clean(str(exc))}"
            ) from None
        raise


def _is_catalog_error(exc: Exception) -> bool:
    """Whether ``exc`` came from the catalog's database or its REST server."""
    module = type(exc).__module__
    return module.startswith(("sqlalchemy", "requests", "urllib3", "pyiceberg.exceptions"))
