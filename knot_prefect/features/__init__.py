"""Feast feature lifecycle: repo loading, references, materialization, freshness.

These modules hold the logic behind the tasks in :mod:`knot_prefect.tasks.features`
and import Feast only inside the functions that need it.
"""
