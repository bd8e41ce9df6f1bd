"""Metric checks: compute a number, compare it with bounds, act on its severity.

:mod:`.metrics` computes metrics of frames, :mod:`.result` holds a check's result,
:mod:`.tasks` holds the ``check`` task and :mod:`.completion` turns failed warning
checks into a flow's "completed with warnings" final state.
"""
