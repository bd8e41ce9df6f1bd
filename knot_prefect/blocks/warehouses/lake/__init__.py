"""The parts of ``ParquetLake``, one concept per module.

- ``storage``: where the lake lives (local folder, S3, GCS) and its filesystem.
- ``manifest``: the ``_manifest.json`` that lists a table's live files, and its
  compare-and-swap switch that makes a write visible in one step.
- ``schemas``: Arrow schemas of lake tables (conforming frames to a table).
- ``files``: writing and removing Parquet data files.
- ``query``: DuckDB over the live files (queries, upsert anti-joins, key checks).
- ``writes``: ``append``, ``replace`` and ``upsert`` as data files plus a switch.
- ``staging``: staged writes, published together by one switch.

The block itself, with its fields and public methods, is
:class:`knot_prefect.blocks.warehouses.parquet.ParquetLake`.
"""
