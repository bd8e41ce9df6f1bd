"""Training functions for ``training_flow`` and the contract a team's own one follows.

- :mod:`knot_prefect.trainers.contract`: how knot calls a trainer and what it may return.
- :mod:`knot_prefect.trainers.builtin`: gradient boosting for binary, multiclass and
  regression tasks on numeric and string columns (scikit-learn; XGBoost or LightGBM
  when installed).
"""
