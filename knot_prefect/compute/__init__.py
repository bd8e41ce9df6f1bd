"""Compute requests and the work pool types that can satisfy them.

Pure rules, with no Prefect client: GPU kinds (:mod:`~knot_prefect.compute.gpus`),
memory quantities, Fargate sizes, Vertex AI machine types, and
:func:`~knot_prefect.compute.job_variables.render_job_variables`, which turns a
:class:`~knot_prefect.ComputeProfile` into one work pool type's job variables. The
``ComputeProfile`` block validates with these rules; ``knot_prefect.deploy`` deploys
with them.
"""
