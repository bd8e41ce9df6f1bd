"""Features for a request: the interface every feature source implements.

A source works out a plan once per model version (off the request path): which
features feed the model and which entity keys a request carries. A request then costs
one read of the source for the whole micro-batch. Two sources exist: a Feast online
store (:mod:`knot_prefect.serving.feast_source`) and the latest row per key of a
warehouse table (:mod:`knot_prefect.serving.warehouse_source`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class JoinKey:
    """An entity join key the request must carry.

    Attributes:
        name: The column name (e.g. ``customer_id``).
        kind: ``int``, ``float``, ``str``, ``bool`` or ``bytes``: the JSON type asked for.
        bits: For ``int`` keys, the integer width the store keeps (32 or 64).
    """

    name: str
    kind: str
    bits: int = 64


@dataclass(frozen=True)
class FeaturePlan:
    """What to read from the online store for one model version.

    Attributes:
        references: What the source reads (Feast's ``view:feature`` references, or
            the table's column names).
        view_of: Feature name -> the view (or table) it is read from.
        join_keys: The entity keys a request carries, in a stable order.
        view_versions: View name -> the first 12 hex digits of the SHA-256 of its
            spec (what batch lineage records as ``view@version``); empty for a table.
        lineage_label: What batch lineage records for a source without versioned
            views (``warehouse columns``).
    """

    references: tuple[str, ...]
    view_of: Mapping[str, str]
    join_keys: tuple[JoinKey, ...]
    view_versions: Mapping[str, str]
    lineage_label: str | None = None

    @property
    def views(self) -> list[str]:
        """The feature view names read, sorted."""
        return sorted(self.view_versions)

    @property
    def lineage(self) -> str:
        """``view@version`` of every view, comma separated, as the batch lineage column."""
        if self.lineage_label is not None:
            return self.lineage_label
        return ",".join(f"{view}@{self.view_versions[view]}" for view in self.views)


@dataclass
class OnlineRows:
    """Feature values of a batch of entities, column by column.

    Attributes:
        columns: Feature name -> one value per entity (None when missing).
        event_times: View name -> the event time of each entity's row (None when
            the store holds no row).
        missing: View name -> positions of entities the view holds no value for.
    """

    columns: dict[str, list[Any]]
    event_times: dict[str, list[datetime | None]]
    missing: dict[str, list[int]] = field(default_factory=dict)

    def slice(self, start: int, stop: int) -> OnlineRows:
        """The rows of entities ``start`` to ``stop`` (positions renumbered from 0)."""
        return OnlineRows(
            columns={name: values[start:stop] for name, values in self.columns.items()},
            event_times={view: times[start:stop] for view, times in self.event_times.items()},
            missing={
                view: shifted
                for view, positions in self.missing.items()
                if (shifted := [p - start for p in positions if start <= p < stop])
            },
        )



class FeatureSource(Protocol):
    """Where a service reads the features of entity keys: one small interface.

    Attributes:
        description: What is read, for messages and the API description
            (``Feast project 'credit'``, ``warehouse table analytics.loans``).
        absent_hint: What to do about a key the source holds nothing for.
    """

    description: str
    absent_hint: str

    def plan(self, inputs: Sequence[str]) -> FeaturePlan:
        """Work out, once per model version, what to read for the model's inputs.

        Raises:
            ConfigurationError: Naming an input (or key) the source cannot provide.
        """
        ...

    def read(self, plan: FeaturePlan, keys: Mapping[str, Sequence[Any]]) -> OnlineRows:
        """Read the plan's features of a batch of entities (join key -> one value each)."""
        ...


def with_supplied(
    looked_up: OnlineRows, supplied: Sequence[Mapping[str, Any] | None], plan: FeaturePlan
) -> OnlineRows:
    """Rows in request order: values sent with the request, the rest as read.

    Args:
        looked_up: The rows read for the entities that sent no values, in order.
        supplied: Per entity, the feature values it sent, or None to use the next
            row read.
        plan: The plan whose features the rows hold.

    Returns:
        One row per entity; a sent row has no event time and is never missing.
    """
    views = sorted(set(plan.view_of.values()))
    columns: dict[str, list[Any]] = {name: [] for name in plan.view_of}
    event_times: dict[str, list[datetime | None]] = {view: [] for view in views}
    missing: dict[str, list[int]] = {}
    absent = {view: set(positions) for view, positions in looked_up.missing.items()}
    read = 0
    for position, values in enumerate(supplied):
        if values is not None:
            for name in columns:
                columns[name].append(values[name])
            for view in views:
                event_times[view].append(None)
            continue
        for name in columns:
            columns[name].append(looked_up.columns[name][read])
        for view in views:
            times = looked_up.event_times.get(view)
            event_times[view].append(times[read] if times else None)
            if read in absent.get(view, ()):
                missing.setdefault(view, []).append(position)
        read += 1
    return OnlineRows(columns=columns, event_times=event_times, missing=missing)
