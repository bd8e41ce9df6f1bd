"""Deploying flows to any work pool with a compute profile.

- :func:`deploy_flow`: deploy a flow file or a knot flow template to a work pool, with
  the job variables of a :class:`~knot_prefect.ComputeProfile`.
- :func:`base_job_template`: knot's base job templates, which add GPU, node selector and
  toleration variables where the worker's default template has none.
- :func:`render_job_configuration`: the job configuration a worker would build.
- :func:`promotion_trigger`: a deployment trigger that fires when a model alias moves.

Names are imported on first access so ``import knot_prefect.deploy`` stays cheap.
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes, names_by_module

_EXPORTS = names_by_module({
    "knot_prefect.deploy.deployment": ("deploy_flow", "adeploy_flow", "DriftRetraining"),
    "knot_prefect.deploy.templates": ("base_job_template",),
    "knot_prefect.deploy.render": ("render_job_configuration", "arender_job_configuration"),
    "knot_prefect.compute.job_variables": ("render_job_variables", "POOL_TYPES"),
    "knot_prefect.compute.gpus": ("GPU_KINDS",),
    "knot_prefect.deploy.triggers": ("promotion_trigger", "PromotionTarget", "drift_trigger"),
    "knot_prefect.compute.errors": ("ProfileNotSatisfiableError",),
    "knot_prefect.deploy.errors": ("WorkPoolTemplateError",),
})

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, _EXPORTS, globals())
