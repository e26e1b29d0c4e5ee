"""Policy-optimization algorithms, each a short composition of :mod:`rl` and :mod:`trustregion`."""
