"""Data contracts: Pandera schemas held in blocks, validated with a failure policy.

One concept per module: :mod:`.engine` validates a frame, :mod:`.frames` adapts polars
and Dask frames, :mod:`.quarantine` stores failing rows, :mod:`.publishing` publishes
artifacts and events, :mod:`.inference` writes a contract from data, and :mod:`.tasks`
holds the ``validate`` task. The block reads its YAML with errors that name the
offending line (:mod:`knot_prefect.blocks.contract_yaml`).
"""
