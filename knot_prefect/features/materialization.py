"""Materialize feature views into the online store, one view at a time, counting rows."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from knot_prefect.features.errors import FeatureStoreError

if TYPE_CHECKING:
    from feast import FeatureStore

_COUNTER_LOCK = threading.Lock()


@dataclass(frozen=True)
class ViewMaterialization:
    """What one materialization of one feature view did.

    Attributes:
        view: The feature view.
        start: Start of the window (``None`` when nothing was due).
        end: End of the window.
        rows: Entity rows written to the online store.
        seconds: Wall time.
        skipped: Why nothing ran, when nothing did (e.g. already up to date).
    """

    view: str
    start: datetime | None
    end: datetime
    rows: int
    seconds: float
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (for artifacts and logs)."""
        data = asdict(self)
        data["start"] = self.start.isoformat() if self.start else None
        data["end"] = self.end.isoformat()
        return data


def utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@contextlib.contextmanager
def count_online_writes(store: FeatureStore) -> Iterator[Counter[str]]:
    """Count rows written to the online store per feature view while the block runs.

    Feast does not report how many rows a materialization wrote; every engine hands
    them to the online store's ``online_write_batch``, so the count is taken there,
    on this store's online store object only, at no extra cost.
    """
    online_store = store._get_provider().online_store
    counts: Counter[str] = Counter()
    with _COUNTER_LOCK:
        original = online_store.online_write_batch

        def counting(config: Any, table: Any, data: Any, progress: Any) -> Any:
            counts[table.name] += len(data)
            return original(config, table, data, progress)

        online_store.online_write_batch = counting  # type: ignore[method-assign]
        try:
            yield counts
        finally:
            del online_store.online_write_batch


def materialize_views(
    store: FeatureStore,
    views: Sequence[str] | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    start: datetime | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ViewMaterialization]:
    """Load feature values from the offline store into the online store.

    Incremental runs start where the last materialization of each view ended (or at
    ``end - ttl`` for a view never materialized) and skip a view already materialized
    up to ``end``, so a second run for the same window writes nothing. Full runs
    (``incremental=False``) rewrite ``[start, end)``; writing the same values again
    leaves the online store as it was.

    Args:
        store: The open store.
        views: Feature view names; all views with ``online=True`` when ``None``.
        end: End of the window; now (UTC) when ``None``.
        incremental: Continue from each view's last materialization.
        start: Start of the window for full runs; ``end - ttl`` when ``None``.
        log: Receives one progress line per view.

    Returns:
        One record per view, in order.

    Raises:
        FeatureReferenceError: For unknown view names, listing the closest ones.
        FeatureStoreError: When a full run has neither ``start`` nor a view ttl.
    """
    log = log or logging.getLogger(__name__).info
    end = utc(end or datetime.now(UTC))
    selected = select_views(store, views)
    results = []
    for index, view in enumerate(selected, start=1):
        # A view never materialized starts a full run at end - ttl; Feast's own
        # incremental default (now - ttl) would skip windows that end in the past.
        full = not incremental or view.most_recent_end_time is None
        if incremental:
            window_start = _incremental_start(view, end)
        else:
            window_start = utc(start) if start else _ttl_start(view, end)
        if window_start >= end:
            log(
                f"[{index}/{len(selected)}] {view.name}: already materialized up to "
                f"{window_start.isoformat()}; nothing to do."
            )
            results.append(ViewMaterialization(view.name, None, end, 0, 0.0, skipped="up to date"))
            continue
        log(
            f"[{index}/{len(selected)}] {view.name}: materializing "
            f"{window_start.isoformat()} -> {end.isoformat()}"
        )
        started = time.perf_counter()
        with count_online_writes(store) as counts, contextlib.redirect_stdout(_Discard()):
            # Feast prints coloured progress to stdout; knot logs its own lines instead.
            if not full:
                store.materialize_incremental(end_date=end, feature_views=[view.name])
            else:
                store.materialize(start_date=window_start, end_date=end, feature_views=[view.name])
        seconds = time.perf_counter() - started
        rows = counts[view.name]
        log(f"[{index}/{len(selected)}] {view.name}: wrote {rows} row(s) in {seconds:.2f} s")
        results.append(ViewMaterialization(view.name, window_start, end, rows, seconds))
    return results


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def select_views(store: FeatureStore, views: Sequence[str] | None) -> list[Any]:
    """The feature views named in ``views`` (all of the store's when None).

    Raises:
        FeatureReferenceError: A name is not a feature view; the message lists the
            closest names.
    """
    from knot_prefect.features.errors import FeatureReferenceError
    from knot_prefect.features.references import describe_closest

    available = {view.name: view for view in store.list_feature_views(allow_cache=False)}
    if isinstance(views, str):
        views = [views]  # one view name, not a sequence of one-letter names
    if views is None:
        return [view for view in available.values() if view.online]
    unknown = [name for name in views if name not in available]
    if unknown:
        raise FeatureReferenceError(
            "Unknown feature view(s): "
            + "; ".join(f"{name!r} ({describe_closest(name, list(available))})" for name in unknown)
        )
    return [available[name] for name in views]


def _ttl_start(view: Any, end: datetime) -> datetime:
    if view.ttl and view.ttl > timedelta(0):
        return end - view.ttl
    raise FeatureStoreError(
        f"Feature view {view.name!r} has no ttl, so a full materialization needs start=."
    )


def _incremental_start(view: Any, end: datetime) -> datetime:
    if view.most_recent_end_time is not None:
        return utc(view.most_recent_end_time)
    if view.ttl and view.ttl > timedelta(0):
        return end - view.ttl
    # Feast's own default for views without a ttl.
    return end - timedelta(weeks=52)
