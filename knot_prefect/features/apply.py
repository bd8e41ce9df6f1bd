"""Plan and apply a repo's definitions, like ``feast plan`` / ``feast apply``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_contents import RepoContents


@dataclass(frozen=True)
class PlanChange:
    """One object the plan creates, updates or deletes.

    Attributes:
        kind: ``registry`` (an entity, view, service...) or ``infra`` (a table).
        object_type: E.g. ``FeatureView`` or ``sqlite table``.
        name: The object's name.
        change: ``CREATE``, ``UPDATE`` or ``DELETE``.
        properties: The properties an update changes.
    """

    kind: str
    object_type: str
    name: str
    change: str
    properties: tuple[str, ...] = ()

    def to_row(self) -> dict[str, str]:
        """A row for a table artifact."""
        return {
            "kind": self.kind,
            "object type": self.object_type,
            "name": self.name,
            "change": self.change,
            "properties": ", ".join(self.properties),
        }


@dataclass
class ApplyResult:
    """What ``apply_repo`` found and did.

    Attributes:
        project: The Feast project.
        changes: Every change in the plan (empty when the registry is up to date).
        applied: Whether anything was written.
    """

    project: str
    changes: list[PlanChange] = field(default_factory=list)
    applied: bool = False

    def to_markdown(self) -> str:
        """The plan as a markdown document."""
        if not self.changes:
            return f"# Feast plan for `{self.project}`\n\nNo changes: the registry is up to date."
        lines = [
            f"# Feast plan for `{self.project}`",
            "",
            "| kind | object type | name | change | properties |",
            "|---|---|---|---|---|",
        ]
        for change in self.changes:
            row = change.to_row()
            lines.append("| " + " | ".join(row.values()) + " |")
        lines += ["", "Applied." if self.applied else "Not applied."]
        return "\n".join(lines)


def _object_type(value: Any) -> str:
    name = getattr(value, "name", None) or str(value)
    return str(name).replace("_", " ").title().replace(" ", "")


def _same_apart_from_meta(existing: Any, declared: Any) -> bool:
    """Whether two protos differ only in their ``meta`` (created/updated timestamps).

    Feast stamps a data source's ``meta`` each time it is loaded, so after a
    materialization every view's ``batch_source`` looks changed though it is not.
    """
    if type(existing) is not type(declared) or not hasattr(existing, "ClearField"):
        return False
    fields = {field.name for field in existing.DESCRIPTOR.fields}
    if "meta" not in fields:
        return False
    left, right = type(existing)(), type(declared)()
    left.CopyFrom(existing)
    right.CopyFrom(declared)
    left.ClearField("meta")
    right.ClearField("meta")
    return bool(left == right)


def plan_repo(store: FeatureStore, contents: RepoContents) -> tuple[list[PlanChange], Any]:
    """Compute the changes applying ``contents`` would make.

    Returns:
        The changes and Feast's ``(registry_diff, infra_diff, new_infra)`` plan.
    """
    from feast.diff.property_diff import TransitionType

    plan = store.plan(contents)
    registry_diff, infra_diff, _ = plan
    if not _plans_infra(store):
        # Feast tracks infrastructure in the registry only where it plans it (local
        # provider with SQLite); elsewhere its infra diff always shows every table.
        infra_diff = type(infra_diff)()
    changes = []
    for diff in registry_diff.feast_object_diffs:
        if diff.transition_type == TransitionType.UNCHANGED:
            continue
        properties = [
            p.property_name
            for p in diff.feast_object_property_diffs
            if not _same_apart_from_meta(p.val_existing, p.val_declared)
        ]
        if diff.transition_type == TransitionType.UPDATE and not properties:
            continue
        changes.append(
            PlanChange(
                "registry",
                _object_type(diff.feast_object_type),
                diff.name,
                diff.transition_type.name,
                tuple(properties),
            )
        )
    changes += [
        PlanChange(
            "infra",
            str(diff.infra_object_type).rsplit(".", 1)[-1],
            diff.name,
            diff.transition_type.name,
            tuple(p.property_name for p in diff.infra_object_property_diffs),
        )
        for diff in infra_diff.infra_object_diffs
        if diff.transition_type != TransitionType.UNCHANGED
    ]
    return changes, plan


def _plans_infra(store: FeatureStore) -> bool:
    should_use_plan = getattr(store, "_should_use_plan", None)
    return bool(should_use_plan and should_use_plan() and hasattr(store, "_apply_diffs"))


def apply_repo(store: FeatureStore, contents: RepoContents) -> ApplyResult:
    """Apply the repo's definitions; write nothing when the plan has no changes.

    Objects in the registry that the repo no longer defines are deleted, as
    ``feast apply`` does.
    """
    from feast.repo_operations import extract_objects_for_apply_delete

    changes, (registry_diff, infra_diff, new_infra) = plan_repo(store, contents)
    result = ApplyResult(project=store.project, changes=changes)
    if not changes:
        return result
    if _plans_infra(store):
        # What `feast apply` does here: apply exactly the plan shown, and record the
        # new infrastructure so the next plan is empty.
        store._apply_diffs(registry_diff, infra_diff, new_infra)
        result.applied = True
        return result
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(
        store.project, store.registry, contents
    )
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    result.applied = True
    return result
