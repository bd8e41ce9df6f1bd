"""Drift monitoring against a model's reference profile."""
