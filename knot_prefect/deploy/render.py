"""The job configuration a worker builds for a compute profile.

Prefect workers turn a work pool's base job template and a deployment's job variables
into a job configuration with their job configuration class's
``from_template_and_values``. knot calls the same method on the real worker classes, so
what you see is what the worker would run (``prepare_for_flow_run`` then adds the flow
run's command, labels and Prefect environment).

Examples:
    >>> from knot_prefect.blocks.compute_profile import ComputeProfile
    >>> profile = ComputeProfile(memory="4Gi", gpu_count=2)
    >>> configuration = render_job_configuration("process", profile)
    >>> configuration.env["CUDA_VISIBLE_DEVICES"]
    '0,1'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from knot_prefect.compute.job_variables import render_job_variables
from knot_prefect.deploy.templates import base_job_template, template_defaults
from knot_prefect.deploy.workers import worker_class
from knot_prefect.synchronous import synchronous

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.workers.base import BaseJobConfiguration

    from knot_prefect.blocks.compute_profile import ComputeProfile


async def arender_job_configuration(
    pool_type: str,
    profile: ComputeProfile,
    *,
    template: dict[str, Any] | None = None,
    job_variables: dict[str, Any] | None = None,
    flow_run: FlowRun | None = None,
) -> BaseJobConfiguration:
    """Build the worker's job configuration for a profile (async).

    Args:
        pool_type: The work pool type, e.g. ``"kubernetes"``.
        profile: The compute profile.
        template: The pool's base job template; knot's template for the pool
            type when omitted.
        job_variables: The deployment's other job variables.
        flow_run: When given, the configuration is also prepared for this flow run, as
            the worker does just before it submits the job.

    Returns:
        An instance of the worker's job configuration class.
    """
    template = template or base_job_template(pool_type)
    values = render_job_variables(
        profile, pool_type, job_variables, pool_defaults=template_defaults(template)
    )
    configuration_class = worker_class(pool_type).job_configuration
    configuration = await configuration_class.from_template_and_values(template, values)
    if flow_run is not None:
        configuration.prepare_for_flow_run(flow_run)
    return configuration


render_job_configuration = synchronous(arender_job_configuration)
"""Build the worker's job configuration for a profile.

The synchronous form of :func:`arender_job_configuration`; same arguments.
"""
