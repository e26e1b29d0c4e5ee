"""The algorithms by name: what the runner, the command line and ``--help`` look up.

An algorithm registers itself where it is defined, with :func:`register_algorithm` on its
class; the runner knows nothing else about it. The modules of :mod:`rl.algorithms` are
imported when the package is, so a new file in it registers its algorithm without touching
any other file; an algorithm defined outside the package registers the same way when its
module is imported (see the docs page "Adding an algorithm").
"""

from __future__ import annotations

__all__ = ["ALGORITHMS", "RENAMED_METRICS", "register_algorithm"]

#: The registered algorithms, ``{name: class}``, in the order they were registered.
ALGORITHMS: dict = {}

#: Diagnostics keys of earlier versions and their current names, ``{old: new}``, gathered
#: from every registered algorithm's ``renamed_metrics``; readers of run folders map old
#: columns by it.
RENAMED_METRICS: dict = {}


def register_algorithm(cls):
    """Class decorator: make a :class:`~rl.algorithms.base.PolicyOptimizer` subclass
    available under its ``name`` to :func:`rl.train`, the command line and its help.

    Raises
    ------
    ValueError
        If ``cls`` is not such a subclass, its ``config_class`` is not an
        :class:`~rl.algorithms.base.AlgorithmConfig` subclass, its ``name`` is not a
        non-empty string, or another class holds the name already.
    """
    from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer

    if not (isinstance(cls, type) and issubclass(cls, PolicyOptimizer)):
        raise ValueError(f"register_algorithm takes a PolicyOptimizer subclass; got {cls!r}")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"{cls.__name__} must set a class attribute name = '<algorithm>' "
                         "(the name the command line takes)")
    config = cls.config_class
    if not (isinstance(config, type) and issubclass(config, AlgorithmConfig)) or \
            config is AlgorithmConfig:
        raise ValueError(f"{cls.__name__}.config_class must be its own AlgorithmConfig "
                         "subclass (a dataclass of its settings)")
    held = ALGORITHMS.get(name)
    if held is not None and held is not cls and (held.__module__, held.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise ValueError(f"the algorithm name {name!r} is taken by {held.__module__}."
                         f"{held.__qualname__}; choose another name")
    ALGORITHMS[name] = cls
    RENAMED_METRICS.update(cls.renamed_metrics)
    return cls
