"""The manifest: one object per table listing its live data files.

Readers read only the files ``_manifest.json`` lists, so a write becomes visible in
one step: its data files are written first, then the manifest is switched with a
single object write. The switch is a compare-and-swap: it happens only when the
manifest is still the one the write started from, so two writers never overwrite
each other's rows. The loser gets :class:`ConcurrentWriteError`, its files are
removed and the table is exactly as the winner left it; retrying is safe.

How each storage makes the switch atomic:

- local folder: a lock file serialises the check and an atomic rename;
- S3: a conditional PUT (``If-Match`` on the ETag read before the check, or
  ``If-None-Match: *`` for a new table);
- GCS: an upload with ``ifGenerationMatch`` on the object generation read before
  the check (0 for a new table).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    TableNotFoundError,
    WarehouseError,
    encode_schema,
)
from knot_prefect.blocks.warehouses.identifiers import TableName

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage

MANIFEST_NAME = "_manifest.json"
LOCK_NAME = "_manifest.lock"
MANIFEST_FORMAT = "knot-parquet-lake/1"

Manifest = dict[str, Any]


def new_write_id(suffix: str = "") -> str:
    """A fresh write id: milliseconds first, so that files sort (and vacuum) by age."""
    return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}{suffix}"


def read_manifest(storage: LakeStorage, table: TableName) -> Manifest | None:
    """The table's live manifest, or None when the table does not exist."""
    try:
        raw = storage.fs.cat_file(storage.table_path(table, MANIFEST_NAME))
    except FileNotFoundError:
        return None
    manifest: Manifest = json.loads(raw)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise WarehouseError(
            f"{storage.location}/{table}: {MANIFEST_NAME} is not a knot Parquet lake "
            f"manifest (format {manifest.get('format')!r}); point the block at another path."
        )
    return manifest


def manifest_or_raise(storage: LakeStorage, table: TableName) -> Manifest:
    """The table's live manifest; :class:`TableNotFoundError` when it has none."""
    manifest = read_manifest(storage, table)
    if manifest is None:
        names = table_names(storage)
        listing = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") or "none"
        raise TableNotFoundError(
            f"Table {table} does not exist in the Parquet lake at {storage.location} "
            f"(tables: {listing}): check the name, or create it with write()."
        )
    return manifest


def table_names(storage: LakeStorage) -> list[str]:
    """The lake's tables (folders holding a manifest), as ``table`` or ``schema.table``."""
    root = storage.root.rstrip("/")
    storage.fs.invalidate_cache()
    names: list[str] = []
    for depth in (1, 2):
        pattern = "/".join([root, *["*"] * depth, MANIFEST_NAME])
        for path in storage.fs.glob(pattern):
            relative = str(path).rstrip("/")[len(root) + 1 :]
            names.append(".".join(relative.split("/")[:-1]))
    return sorted(set(names))


def new_manifest(
    table: TableName,
    current: Manifest | None,
    write_id: str,
    mode: str,
    schema: pa.Schema,
    files: list[dict[str, Any]],
) -> Manifest:
    """The manifest that follows ``current`` and lists ``files``."""
    return {
        "format": MANIFEST_FORMAT,
        "table": str(table),
        "generation": (current["generation"] + 1) if current else 1,
        "write_id": write_id,
        "mode": mode,
        "updated_at": datetime.now(UTC).isoformat(),
        "rows": sum(entry["rows"] for entry in files),
        "schema": encode_schema(schema),
        "files": files,
    }


def switch_manifest(
    storage: LakeStorage,
    table: TableName,
    manifest: Manifest,
    expected: Manifest | None,
    check: bool = True,
) -> None:
    """Make ``manifest`` the table's live manifest, if it is still ``expected``.

    Args:
        storage: The lake.
        table: The table.
        manifest: The new manifest.
        expected: The manifest the write started from (None: the table was missing).
        check: Compare against ``expected``; ``False`` switches unconditionally
            (a ``replace`` keeps nothing of the table, so it cannot lose rows).

    Raises:
        ConcurrentWriteError: When another writer switched the manifest since
            ``expected`` was read; nothing is switched.
    """
    body = json.dumps(manifest, indent=1).encode()
    target = storage.table_path(table, MANIFEST_NAME)
    if storage.is_local:
        with _table_lock(storage, table):
            if check:
                _check_unchanged(storage, table, expected)
            _replace_file(target, body)
        return
    if not check:
        storage.fs.pipe_file(target, body)  # one PUT: readers see old or new, never a mix
        return
    if not _conditional_put(storage, table, target, body, expected):
        raise _conflict(storage, table)


def _generation(manifest: Manifest | None) -> tuple[int, str] | None:
    return None if manifest is None else (manifest["generation"], manifest["write_id"])


def _conflict(storage: LakeStorage, table: TableName) -> ConcurrentWriteError:
    return ConcurrentWriteError(
        f"Another writer changed {str(table)!r} in the Parquet lake at {storage.location} "
        "during this write, so nothing was written (the other write is kept whole). "
        "Retrying the write is safe."
    )


def _check_unchanged(storage: LakeStorage, table: TableName, expected: Manifest | None) -> None:
    if _generation(read_manifest(storage, table)) != _generation(expected):
        raise _conflict(storage, table)


@contextlib.contextmanager
def _table_lock(storage: LakeStorage, table: TableName) -> Iterator[None]:
    """Hold the table's lock file: one local writer at a time checks and switches."""
    import fcntl

    os.makedirs(storage.table_dir(table), exist_ok=True)
    with open(storage.table_path(table, LOCK_NAME), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _replace_file(target: str, body: bytes) -> None:
    """Write beside ``target``, then rename over it: a rename is atomic."""
    temporary = f"{target}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def _version_then_check(
    storage: LakeStorage, table: TableName, target: str, expected: Manifest | None,
    field: str,
) -> str | Literal[False] | None:
    """The stored manifest's object version (``field`` of its info), read *before* the check.

    If the check then passes, that version is the expected manifest's or an older one's,
    so a conditional write on it succeeds only while the object is still exactly that
    one. None for a new table (nothing may exist yet); False when the manifest was
    dropped meanwhile.

    Raises:
        ConcurrentWriteError: When another writer switched the manifest already.
    """
    if expected is None:
        _check_unchanged(storage, table, expected)
        return None
    try:
        version = str(storage.fs.info(target)[field])
    except FileNotFoundError:
        return False
    _check_unchanged(storage, table, expected)
    return version


def _conditional_put(
    storage: LakeStorage, table: TableName, target: str, body: bytes,
    expected: Manifest | None,
) -> bool:
    """Write the manifest only while the stored one is the version checked; False when
    another writer switched first (the bucket's own conditional write: see ``_PUTS``)."""
    fs: Any = storage.fs
    bucket, key, _ = fs.split_path(target)
    field, put = _PUTS[storage.kind]
    version = _version_then_check(storage, table, target, expected, field)
    if version is False:
        return False
    return put(fs, bucket, key, body, version)


def _put_s3(fs: Any, bucket: str, key: str, body: bytes, etag: str | None) -> bool:
    """A PUT on S3 if the object's ETag is ``etag`` (None: if it does not exist yet)."""
    condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
    try:
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, **condition)
    except OSError as exc:
        if _is_precondition_failure(exc):
            return False
        raise
    return True


def _is_precondition_failure(exc: BaseException) -> bool:
    """S3's 412 Precondition Failed or 409 ConditionalRequestConflict (as s3fs raises them)."""
    if isinstance(exc, FileExistsError):
        return True
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code", "")
    return code in {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"} or (
        "Precondition" in str(exc) or "ConditionalRequestConflict" in str(exc)
    )


def _put_gcs(fs: Any, bucket: str, key: str, body: bytes, generation: str | None) -> bool:
    """An upload on GCS if the object's generation is ``generation`` (None: if it does not
    exist yet, GCS's generation "0")."""
    from urllib.parse import quote

    try:
        fs.call(
            "POST", f"{fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
            uploadType="media", name=key,
            ifGenerationMatch="0" if generation is None else generation,
            headers={"Content-Type": "application/octet-stream"}, data=body, json_out=True,
        )
    except FileExistsError:  # gcsfs raises it for 412 Precondition Failed
        return False
    return True


#: Each bucket's conditional write: the object-info field holding the stored version,
#: and the write that succeeds only while the object is still at that version.
_PUTS: dict[str, tuple[str, Callable[[Any, str, str, bytes, str | None], bool]]] = {
    "s3": ("ETag", _put_s3),
    "gcs": ("generation", _put_gcs),
}
