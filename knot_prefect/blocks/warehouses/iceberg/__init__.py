"""The parts of ``IcebergTable``, one concept per module.

- ``catalog``: where the tables live (the lake's folder or bucket) and the catalog
  that holds their current metadata (a SQLite file, PostgreSQL or a REST catalog);
  pyiceberg errors as knot's.
- ``types``: frames in the column types an Iceberg table holds.
- ``writes``: ``append``, ``replace``, ``upsert`` and ``fail``, each one Iceberg
  snapshot committed through the catalog.
- ``staging``: staged parts as data files, committed in one snapshot.
- ``query``: DuckDB over tables as Arrow datasets (at their current or a pinned snapshot).

The block itself is :class:`knot_prefect.blocks.warehouses.iceberg_table.IcebergTable`.
"""
