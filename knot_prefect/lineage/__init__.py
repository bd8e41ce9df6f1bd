"""Row-level lineage: which data, features and model produced a published prediction."""
