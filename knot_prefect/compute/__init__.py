"""Compute requests and the work pool types that can satisfy them.

Pure rules, with no Prefect client: GPU kinds (:mod:`~knot_prefect.compute.gpus`),
memory quantities, Fargate sizes, Vertex AI machine types, and
:func:`~knot_prefect.compute.job_variables.render_job_variables`, which turns a
:class:`~knot_prefect.ComputeProfile` into one work pool type's job variables. The
``ComputeProfile`` block validates with these rules; ``knot_prefect.deploy`` deploys
with them.

At run time: :func:`run_step_on` runs one step of a flow on another work pool
(:mod:`~knot_prefect.compute.remote_step`), and :func:`gpu_lease` gives concurrent runs
on a shared host distinct GPUs (:mod:`~knot_prefect.compute.gpu_slots`). Names are
imported on first access.
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes

_EXPORTS: dict[str, str] = {
    "run_step_on": "knot_prefect.compute.remote_step",
    "step_flow": "knot_prefect.compute.remote_step",
    "RemoteStepError": "knot_prefect.compute.remote_step",
    "gpu_lease": "knot_prefect.compute.gpu_slots",
    "declare_gpu_host": "knot_prefect.compute.gpu_slots",
    "GpuRequestError": "knot_prefect.compute.gpu_slots",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, _EXPORTS, globals())
