"""Backtracking line search with a caller-given acceptance test.

:func:`backtracking` tries ``x + t d`` for ``t = step, step*shrink, step*shrink**2, ...``
and returns the first trial point that passes ``accept(candidate_x, candidate_f)``.
The default test is plain decrease; :func:`armijo` builds the sufficient-decrease
test; TRPO passes its own ("surrogate improved and KL <= delta").
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from trustregion._checks import (
    as_vector,
    check_callable,
    positive_scalar,
    real_scalar_output,
    scalar_option,
)
from trustregion.result import LineSearchResult, LineSearchStatus

__all__ = ["backtracking", "armijo"]


def _verdict(value) -> bool:
    """The answer of ``accept`` as a bool; an array of several entries is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.ndarray, list, tuple)) and np.size(value) != 1:
        raise ValueError(
            f"accept must return a single bool; got an array of shape {np.shape(value)} "
            "(reduce it with .all() or .any())"
        )
    return bool(np.asarray(value).reshape(-1)[0]) if np.ndim(value) else bool(value)


def backtracking(
    f: Callable,
    x,
    direction,
    *,
    step: float = 1.0,
    shrink: float = 0.5,
    max_steps: int = 10,
    accept: Callable | None = None,
    f0: float | None = None,
) -> LineSearchResult:
    """Backtracking line search along ``direction`` with any acceptance test.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``, the objective.
    x : array_like, shape (n,)
        Starting point (never modified).
    direction : array_like, shape (n,)
        Search direction ``d``.
    step : float, optional
        First trial step length ``t_0 > 0``.
    shrink : float, optional
        Factor ``0 < shrink < 1`` applied to the step after each rejection.
    max_steps : int, optional
        Number of trial points to try (``>= 1``).
    accept : callable, optional
        ``accept(candidate_x, candidate_f) -> bool``, any test of the caller's.
        Defaults to decrease: ``candidate_f < f0``.
    f0 : float, optional
        ``f(x)`` if already known. With the default ``accept`` it is evaluated
        when not given (and must be finite); with a custom ``accept`` it is only
        evaluated, if not given, to report ``fun`` after a failed search.

    Returns
    -------
    LineSearchResult
        ``x`` and ``fun`` at the accepted trial point, its ``step`` length, the
        number ``nsteps`` of trial points evaluated, all ``trials`` as
        ``(step, value)`` pairs, and ``status`` ``ACCEPTED``; or, if no trial
        point passed, the original ``x``, ``fun = f0``, ``step = 0.0`` and
        ``status`` ``NO_ACCEPTABLE_STEP``.

    Raises
    ------
    ValueError
        If ``f`` or ``accept`` is not callable, ``x`` or ``direction`` is not a
        finite real vector or their lengths differ, ``step <= 0``, ``shrink`` is
        not in ``(0, 1)``, ``max_steps < 1``, or (default test) ``f(x)`` is not
        finite; during the search, if ``f`` returns anything but a real scalar or
        ``accept`` an array of several entries.

    Notes
    -----
    Trial ``k = 0, 1, ..., max_steps - 1`` is

    .. math::

        x_k = x + t_k d, \\qquad t_k = \\text{step} \\cdot \\text{shrink}^k ,

    the backtracking scheme of N&W Alg. 3.1 with a fixed contraction factor. A
    trial point whose value is NaN or infinite (or whose coordinates overflow)
    is rejected without consulting ``accept``: a non-finite value is never
    accepted. With ``accept = armijo(...)`` this is exactly N&W Alg. 3.1; in TRPO
    (Schulman et al. 2015, App. C) ``accept`` checks that the surrogate improved
    and the mean KL divergence stays within the trust region.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, §3.1, Alg. 3.1.
    .. [2] J. Schulman, S. Levine, P. Moritz, M. Jordan and P. Abbeel, "Trust
       Region Policy Optimization", ICML 2015, App. C.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> f = lambda x: float(np.sum(x**2))
    >>> x = np.array([1.0, 1.0])
    >>> res = tr.backtracking(f, x, direction=np.array([-4.0, -4.0]))
    >>> res.status.name, res.step, res.nsteps, np.round(res.x, 3)
    ('ACCEPTED', 0.25, 3, array([0., 0.]))

    A caller's test, here "decrease and stay within distance 0.1":

    >>> near = lambda xc, fc: fc < 2.0 and np.linalg.norm(xc - x) <= 0.1
    >>> tr.backtracking(f, x, np.array([-1.0, -1.0]), accept=near).step
    0.0625
    """
    check_callable(f, "f", "f(x) -> float")
    if accept is not None:
        check_callable(accept, "accept", "accept(candidate_x, candidate_f) -> bool, or None")
    x = as_vector(x, "x")
    direction = as_vector(direction, "direction", n=x.shape[0], against="x")
    step = positive_scalar(step, "step")
    shrink, max_steps = scalar_option(shrink), scalar_option(max_steps)
    if (not isinstance(shrink, numbers.Real) or isinstance(shrink, bool)
            or not 0.0 < float(shrink) < 1.0):
        raise ValueError(f"shrink must be a real number in (0, 1); got {shrink!r}")
    shrink = float(shrink)
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1; got {max_steps!r}")
    if f0 is not None:
        f0 = real_scalar_output(f0, "f0")
    if accept is None:
        if f0 is None:
            f0 = real_scalar_output(f(x.copy()), "f")
        if not np.isfinite(f0):
            raise ValueError(
                f"f(x) = {f0} is not finite, so 'decrease' is undefined; start from a point "
                "where f is finite or pass accept=..."
            )
        reference = f0

        def accept(candidate_x, candidate_f):
            return candidate_f < reference

    trials = []
    t = step
    for k in range(int(max_steps)):
        t = step * shrink**k
        with np.errstate(over="ignore", invalid="ignore"):
            candidate_x = x + t * direction
        if np.all(np.isfinite(candidate_x)):
            candidate_f = real_scalar_output(f(candidate_x.copy()), "f")
        else:
            candidate_f = float("nan")
        trials.append((t, candidate_f))
        # a non-finite trial value is rejected without consulting the caller's test
        if np.isfinite(candidate_f) and _verdict(accept(candidate_x.copy(), candidate_f)):
            return LineSearchResult(
                x=candidate_x,
                fun=candidate_f,
                step=t,
                nsteps=k + 1,
                status=LineSearchStatus.ACCEPTED,
                trials=tuple(trials),
            )
    if f0 is None:
        f0 = real_scalar_output(f(x.copy()), "f")
    return LineSearchResult(
        x=x,
        fun=f0,
        step=0.0,
        nsteps=len(trials),
        status=LineSearchStatus.NO_ACCEPTABLE_STEP,
        trials=tuple(trials),
    )


def armijo(f0, slope, x, direction, *, c1: float = 1e-4) -> Callable:
    """The Armijo sufficient-decrease test, as an ``accept`` for :func:`backtracking`.

    Parameters
    ----------
    f0 : float
        ``f(x)``, finite.
    slope : float
        The directional derivative ``grad f(x)^T d`` along ``direction``; must be
        negative (``d`` a descent direction).
    x : array_like, shape (n,)
        The point the line search starts from.
    direction : array_like, shape (n,)
        The search direction ``d`` (non-zero), the same one given to
        :func:`backtracking`.
    c1 : float, optional
        Sufficient-decrease constant, ``0 < c1 < 1`` (default ``1e-4``, N&W §3.1).

    Returns
    -------
    callable
        ``accept(candidate_x, candidate_f) -> bool``, true when
        ``candidate_f <= f0 + c1 t slope`` for the step length ``t`` of the
        candidate.

    Raises
    ------
    ValueError
        If ``f0`` or ``slope`` is not finite, ``slope >= 0``, ``direction`` is
        zero or does not match ``x``, or ``c1`` is not in ``(0, 1)``.

    Notes
    -----
    The sufficient-decrease (first Wolfe) condition, N&W eq. (3.4):

    .. math::

        f(x + t d) \\le f(x) + c_1 t \\nabla f(x)^T d .

    The acceptance test receives only ``(candidate_x, candidate_f)``, so it
    recovers the step length from the candidate by projection onto the
    direction, ``t = (candidate_x - x)^T d / d^T d``; for
    ``candidate_x = x + t d`` this returns ``t`` to rounding. A candidate that
    does not lie on the ray is thus judged by its projection.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, §3.1, eq. (3.4).
    .. [2] L. Armijo, "Minimization of functions having Lipschitz continuous
       first partial derivatives", *Pacific J. Math.* 16(1):1-3, 1966.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> f = lambda x: float(np.sum(x**2))
    >>> x = np.array([1.0, 1.0]); g = 2 * x; d = -10 * g   # a far too long step
    >>> test = tr.armijo(f(x), g @ d, x, d)
    >>> res = tr.backtracking(f, x, d, accept=test)
    >>> res.status.name, res.step, bool(res.fun <= f(x) + 1e-4 * res.step * (g @ d))
    ('ACCEPTED', 0.0625, True)
    """
    x = as_vector(x, "x")
    direction = as_vector(direction, "direction", n=x.shape[0], against="x")
    f0 = real_scalar_output(f0, "f0")
    slope = real_scalar_output(slope, "slope")
    if not np.isfinite(f0):
        raise ValueError(f"f0 must be finite; got {f0}")
    if not np.isfinite(slope) or slope >= 0.0:
        raise ValueError(
            f"slope = grad f(x)^T d must be finite and negative (a descent direction); got {slope} "
            "(negate the direction, or the objective if maximising)"
        )
    dd = float(direction @ direction)
    if dd == 0.0:
        raise ValueError("direction must be non-zero")
    c1 = scalar_option(c1)
    if not isinstance(c1, numbers.Real) or isinstance(c1, bool) or not 0.0 < float(c1) < 1.0:
        raise ValueError(f"c1 must be a real number in (0, 1); got {c1!r}")
    c1 = float(c1)

    def accept(candidate_x, candidate_f) -> bool:
        t = float((np.asarray(candidate_x, dtype=np.float64) - x) @ direction) / dd
        return bool(candidate_f <= f0 + c1 * t * slope)  # eq. (3.4)

    return accept
