"""The ``knot`` command line. Commands import their libraries when they run."""
