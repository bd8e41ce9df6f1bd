"""Warehouse blocks: one read/write interface, one module per backend."""
