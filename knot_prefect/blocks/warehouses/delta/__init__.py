"""The parts of ``DeltaLake``, one concept per module.

- ``location``: where the tables live (local folder, S3, GCS): their URIs, the
  delta-rs storage options taken from the nested prefect-aws/prefect-gcp block, and
  the filesystem that staged parts are written with.
- ``types``: frames in the column types a Delta table holds.
- ``tables``: opening tables, their Arrow schemas, and delta-rs errors as knot's.
- ``writes``: ``append``, ``replace``, ``upsert`` (a Delta MERGE) and ``fail``, each
  one Delta transaction.
- ``staging``: staged parts as data files, committed in one Delta transaction.
- ``query``: DuckDB over tables as Arrow datasets (at their latest or a pinned version).

The block itself is :class:`knot_prefect.blocks.warehouses.delta_lake.DeltaLake`.
"""
