"""A cool-down for an automation that runs a deployment, with Prefect's own actions.

When the automation fires it also pauses itself (``PauseAutomation``); a second,
proactive automation resumes it (``ResumeAutomation``) once ``cooldown`` has passed
since a run of the deployment ended (unless that run started running again).
Both belong to the deployment, so deploying it again replaces them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uuid import UUID

# The end of a flow run, whatever its outcome, starts the cool-down.
RUN_ENDED_EVENTS = frozenset({
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Cancelled",
})
RUN_STARTED_EVENT = "prefect.flow-run.Running"


def cooldown_automation(
    deployment_id: UUID, automation_id: UUID, name: str, cooldown: timedelta
) -> Any:
    """The proactive automation that resumes ``automation_id`` after the cool-down.

    Returns:
        A ``prefect.events.schemas.automations.AutomationCore``.
    """
    from prefect.events.actions import ResumeAutomation
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    deployment = f"prefect.deployment.{deployment_id}"
    return AutomationCore(
        name=f"{name}: cool-down",
        description=f"Resume {name!r} {cooldown} after a run of its deployment ended.",
        trigger=EventTrigger(
            after=set(RUN_ENDED_EVENTS),
            expect={RUN_STARTED_EVENT},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": deployment},
            # One window per run, opened by its end: without it Prefect would open
            # windows of its own and resume the automation every `cooldown`.
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=cooldown,
        ),
        actions=[ResumeAutomation(source="selected", automation_id=automation_id)],
        owner_resource=deployment,
    )


async def add_cooldown(deployment_id: UUID, automation_name: str, cooldown: timedelta
                       ) -> UUID:
    """Make the deployment's automation ``automation_name`` pause itself when it fires
    and resume ``cooldown`` after the run it started ended.

    Returns:
        The id of the automation that resumes it.

    Raises:
        LookupError: The deployment has no automation of that name.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.actions import PauseAutomation
    from prefect.events.schemas.automations import AutomationCore

    async with get_client() as client:
        related = await client.read_resource_related_automations(
            f"prefect.deployment.{deployment_id}")
        owned = [a for a in related if a.name == automation_name]
        if not owned:
            raise LookupError(
                f"Deployment {deployment_id} has no automation named {automation_name!r}.")
        automation = owned[0]
        # The owner is kept by the server; an update may not name it.
        fields = automation.model_dump(include=set(AutomationCore.model_fields) -
                                       {"owner_resource"})
        fields["actions"] = [*automation.actions,
                             PauseAutomation(source="selected", automation_id=automation.id)]
        await client.update_automation(automation.id, AutomationCore.model_validate(fields))
        return await client.create_automation(
            cooldown_automation(deployment_id, automation.id, automation_name, cooldown))


__all__ = ["RUN_ENDED_EVENTS", "add_cooldown", "cooldown_automation"]
