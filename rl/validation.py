"""The checks :mod:`rl` applies at its public boundaries, written once.

Every public constructor and function of the package validates its arguments with these
(a ``ValueError`` naming the argument, what it must be and what it got); the functions it
then calls trust what was checked.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

__all__ = ["check_range", "positive_int", "finite_real", "probability", "as_generator",
           "checked_hidden_sizes", "index_in_range"]


def check_range(name, value, low=None, high=None, *, low_open=False, high_open=False,
                integer=False):
    """Raise ``ValueError`` naming ``name`` unless ``value`` lies in the stated interval.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int or float
        A real number (numpy scalars included; bools are refused).
    low, high : float, optional
        The bounds (None: unbounded).
    low_open, high_open : bool
        Exclude the bound itself.
    integer : bool
        Also require an integral value.

    Examples
    --------
    >>> check_range("max_kl", 0.01, 0.0, None, low_open=True)
    >>> check_range("max_kl", 0.0, 0.0, None, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: max_kl must lie in (0.0, inf]; got 0.0
    """
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(
            value, (bool, np.bool_)):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind}; got {value!r}")
    if not (isinstance(value, (int, np.integer)) or np.isfinite(value)):  # ints are finite
        raise ValueError(f"{name} must be finite; got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer; got {value!r}")
    lo_bad = low is not None and (value <= low if low_open else value < low)
    hi_bad = high is not None and (value >= high if high_open else value > high)
    if lo_bad or hi_bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must lie in {lb}{lo}, {hi}{hb}; got {value!r}")


def positive_int(value, name: str) -> int:
    """``value`` as an ``int`` >= 1 (numpy integers included), or ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or \
            value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def index_in_range(value, name: str, n: int, what: str) -> int:
    """``value`` as an ``int`` index in ``[0, n)`` (anything ``operator.index`` accepts), or
    ``ValueError`` naming ``name`` and saying what it indexes (``what``: "state", "action")."""
    try:
        i = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer {what} in [0, {n}); got {value!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"{name} must be an integer {what} in [0, {n}); got {i}")
    return int(i)


def finite_real(value, name: str) -> float:
    """``value`` (a real number or 0-d array) as a finite ``float``, or ``ValueError``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or \
            not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return float(value)


def probability(value, name: str) -> float:
    """``value`` as a ``float`` in ``[0, 1]``, or ``ValueError``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or \
            not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}")
    return float(value)


def as_generator(seed, name: str = "seed") -> np.random.Generator:
    """``numpy.random.default_rng(seed)`` for a seed that is a non-negative integer, None, a
    ``Generator`` (returned as is), a ``BitGenerator`` or a ``SeedSequence``; anything else
    is a ``ValueError`` naming ``name``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (np.random.BitGenerator, np.random.SeedSequence)) or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) and seed >= 0
    ):
        return np.random.default_rng(seed)
    raise ValueError(
        f"{name} must be a non-negative integer, a numpy.random.Generator or None; got {seed!r}"
    )


def checked_hidden_sizes(value) -> tuple[int, ...]:
    """Hidden-layer sizes as a tuple of positive ints, or ``ValueError``."""
    try:
        sizes = tuple(value)
    except TypeError:
        raise ValueError(
            f"hidden_sizes must be a sequence of positive ints, e.g. (64, 64); got {value!r}"
        ) from None
    return tuple(positive_int(h, "each entry of hidden_sizes") for h in sizes)
