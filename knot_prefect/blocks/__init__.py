"""knot's Prefect blocks, one module per concept.

Import a block from the package root (``from knot_prefect import DuckDBWarehouse``)
or from its module; this package imports nothing on its own so that using one block
never pulls in another block's libraries.
"""
