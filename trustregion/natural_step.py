"""The KL-constrained natural-gradient step of NPG and TRPO.

    max_s  g^T s   subject to   1/2 s^T F s <= delta

has the solution ``s = sqrt(2 delta / (d^T F d)) d`` with ``d = F^{-1} g``; the
direction is found by conjugate gradient using only products with ``F``.
"""

from __future__ import annotations

import math

import numpy as np

from trustregion._checks import as_vector, checked_maxiter, positive_scalar
from trustregion.conjugate_gradient import preconditioned_cg
from trustregion.result import CGStatus, NaturalStepResult, StepStatus

_TINY = float(np.finfo(np.float64).tiny)

__all__ = ["natural_step"]


def natural_step(
    g, F, max_kl, *, x0=None, M=None, rtol=1e-10, atol=0.0, maxiter=10, callback=None,
    normalization="curvature",
) -> NaturalStepResult:
    r"""Step of largest ``g^T s`` on the quadratic KL boundary ``1/2 s^T F s = max_kl``.

    Parameters
    ----------
    g : array_like, shape (n,)
        Gradient of the objective to increase (for TRPO, of the surrogate).
    F : ndarray, sparse matrix, LinearOperator or callable
        Symmetric positive (semi)definite ``n x n`` Fisher information matrix
        or a callable ``v -> F v`` (e.g. :func:`trustregion.fisher_operator`,
        usually :func:`trustregion.damped`).
    max_kl : float
        The KL radius ``delta > 0``.
    x0 : array_like, shape (n,), optional
        Starting guess for the direction (default zeros); not modified. A warm start can
        leave CG at a direction with ``g^T d <= 0``, which would decrease the linear model:
        then no step is taken (``StepStatus.NOT_ASCENT``).
    M : optional
        Preconditioner approximating ``F^{-1}``, passed to :func:`trustregion.cg`.
    rtol, atol : float, optional
        CG stopping test ``||g - F d|| <= max(rtol ||g||, atol)``. The default
        ``rtol=1e-10`` is the residual tolerance of the original TRPO code, so
        in practice the ``maxiter`` iterations decide.
    maxiter : int, optional
        CG iterations, ``>= 1``; default 10, as in Schulman et al. (2015,
        App. C) and Spinning Up. ``None`` means :func:`trustregion.cg`'s
        default ``10 n``.
    callback : callable, optional
        Passed to :func:`trustregion.cg`: ``callback(dk)`` after each iteration.
    normalization : {"curvature", "gradient"}, optional
        What ``beta`` divides by: ``"curvature"`` (default) the direction's curvature
        ``d^T F d``, so the step lies on the quadratic boundary exactly; ``"gradient"``
        ``g^T d``, the estimate of ``g^T F^{-1} g`` natural policy gradient uses
        (:math:`\eta = \sqrt{2\delta / g^T F^{-1} g}`). For CG started from zero the two
        are equal in exact arithmetic (``g^T d_k = d_k^T F d_k``) and differ by rounding;
        from a warm start ``x0`` they differ.

    Returns
    -------
    NaturalStepResult
        ``direction`` (``d ~= F^{-1} g``), ``step`` (``beta d``), ``beta``,
        ``expected_improvement`` (``g^T step``), ``quadratic_kl``
        (``1/2 step^T F step``, equal to ``max_kl``), ``curvature``
        (``d^T F d``), ``cg`` (the :class:`~trustregion.CGResult`), ``status``.

    Raises
    ------
    ValueError
        Before any work, for ``max_kl <= 0``, ``maxiter < 1`` and for the
        invalid inputs :func:`trustregion.cg` rejects (named ``g`` and ``F``
        here; a dense ``F`` must be symmetric).

    Notes
    -----
    The Lagrangian of ``max g^T s`` subject to ``1/2 s^T F s <= delta`` gives
    ``s = d / lambda`` with ``F d = g``, and the active constraint fixes
    ``lambda``:

    .. math::

        \beta = \sqrt{\frac{2\delta}{d^T F d}}, \qquad
        s = \beta d, \qquad
        \tfrac12 s^T F s = \tfrac12 \beta^2 d^T F d = \delta

    (Schulman et al. 2015, App. C; Kakade 2001). ``d`` is ``maxiter``
    iterations of CG on ``F d = g`` (:func:`trustregion.cg`). Stopping on the
    iteration limit is the normal case (truncated CG): the direction is used
    as it is. The step is taken whenever the direction has positive curvature
    ``d^T F d > 0``, which holds for every CG iterate on a positive definite
    ``F``, also when CG stops later on ``p^T F p <= 0`` (it returns the last
    iterate, a combination of directions of positive curvature). Otherwise
    there is no step, and the status says why:

    * ``NONPOSITIVE_CURVATURE``: ``d^T F d <= 0``, or CG met ``p^T F p <= 0``
      on its first iteration (so it has no direction);
    * ``ZERO_GRADIENT``: ``g = 0``;
    * ``NON_FINITE``: NaN or inf from ``F``, or ``beta`` overflows.

    No ``eps`` is added to ``d^T F d``. ``d^T F d`` is computed from the true
    residual CG already recomputes, ``F d = g - (g - F d)``, so the step costs
    ``nit + 1`` products with ``F`` (``cg.nmatvec``), as in the reference
    implementations. The step ``beta d`` does not change when ``g`` is scaled;
    if ``d^T F d`` under- or overflows (``g`` near the ends of the
    floating-point range), the step is formed from ``d`` and ``F d`` scaled by
    powers of two, and ``curvature`` reports the rounded value. The
    natural-gradient direction ``F^{-1} g`` is invariant under linear
    reparameterisations ``theta = A phi`` (``A d_phi = d_theta``).

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan and P. Abbeel, "Trust
       region policy optimization", ICML 2015, Appendix C.
    .. [2] S. Kakade, "A natural policy gradient", NIPS 2001.
    .. [3] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, Chapter 5.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> F = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> g = np.array([1.0, -1.0])
    >>> res = tr.natural_step(g, F, 0.01)
    >>> res.status.name, round(res.quadratic_kl, 12)
    ('OK', 0.01)
    >>> bool(np.allclose(F @ res.direction, g))
    True
    >>> bool(np.isclose(0.5 * res.step @ F @ res.step, 0.01))
    True
    """
    delta = positive_scalar(max_kl, "max_kl")
    if normalization not in ("curvature", "gradient"):
        raise ValueError(f"normalization must be 'curvature' or 'gradient'; got "
                         f"{normalization!r}")
    if maxiter is not None:
        maxiter = checked_maxiter(maxiter, 0)  # an integer >= 0, as cg checks it
        if maxiter < 1:
            raise ValueError(
                f"maxiter must be an integer >= 1 or None; got {maxiter} (the direction "
                "d ~= F^{-1} g needs at least one CG iteration)"
            )
    cg_result, r_true = preconditioned_cg(
        F,
        g,
        x0=x0,
        M=M,
        rtol=rtol,
        atol=atol,
        maxiter=maxiter,
        callback=callback,
        a_name="F",
        b_name="g",
    )
    g = as_vector(g, "g", copy=False)
    d = cg_result.x

    def no_step(status: StepStatus, curvature: float) -> NaturalStepResult:
        return _no_step(d, cg_result, status, curvature)

    if not g.any():
        return no_step(StepStatus.ZERO_GRADIENT, 0.0)
    if cg_result.status is CGStatus.NON_FINITE:
        return no_step(StepStatus.NON_FINITE, math.nan)
    Fd = g - r_true  # F d from the true residual
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        curvature = float(d @ Fd)  # d^T F d
    if (normalization == "curvature" and not _TINY <= abs(curvature) < math.inf
            and _rescalable(d, Fd)):
        # d^T F d under- or overflowed (the step itself is scale-invariant): rescale
        return _scaled_step(g, d, Fd, delta, cg_result)
    if not math.isfinite(curvature):
        return no_step(StepStatus.NON_FINITE, curvature)
    if curvature <= 0.0 or _first_direction_failed(cg_result):
        return no_step(StepStatus.NONPOSITIVE_CURVATURE, curvature)
    if not _ascends(g, d):
        return no_step(StepStatus.NOT_ASCENT, curvature)
    if normalization == "gradient":  # Kakade (2001): g^T d estimates g^T F^{-1} g
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            scale = float(g @ d)
        if not (math.isfinite(scale) and scale > 0.0):
            return no_step(StepStatus.NON_FINITE if not math.isfinite(scale)
                           else StepStatus.NOT_ASCENT, curvature)
    else:
        scale = curvature
    beta = math.sqrt(2.0 * delta / scale)  # Schulman et al. (2015), App. C
    if not math.isfinite(beta):
        return no_step(StepStatus.NON_FINITE, curvature)
    step = beta * d
    return NaturalStepResult(
        direction=d,
        step=step,
        beta=beta,
        expected_improvement=float(g @ step),
        quadratic_kl=0.5 * beta * beta * curvature,
        curvature=curvature,
        cg=cg_result,
        status=StepStatus.OK,
    )


def _no_step(d, cg_result, status: StepStatus, curvature: float) -> NaturalStepResult:
    """The result that takes no step: CG's direction ``d`` is kept for inspection."""
    return NaturalStepResult(
        direction=d,
        step=np.zeros_like(d),
        beta=0.0,
        expected_improvement=0.0,
        quadratic_kl=0.0,
        curvature=curvature,
        cg=cg_result,
        status=status,
    )


def _first_direction_failed(cg_result) -> bool:
    """CG stopped on nonpositive curvature before its first step: ``d`` is no direction."""
    return cg_result.status is CGStatus.NONPOSITIVE_CURVATURE and cg_result.nit == 0


def _rescalable(d: np.ndarray, Fd: np.ndarray) -> bool:
    """Whether ``d`` and ``F d`` are finite and nonzero, so ``d^T F d`` can be rescaled."""
    return bool(d.any() and Fd.any() and np.isfinite(d).all() and np.isfinite(Fd).all())


def _ascends(g, d) -> bool:
    """Whether ``g^T d > 0``, decided on power-of-two scaled copies (no over- or underflow).

    CG started from zero always gives such a ``d`` (every iterate is a positive
    combination of directions with ``g^T p_i = r_i^T r_i > 0``); a warm start need not.
    """
    d_max, g_max = float(np.max(np.abs(d))), float(np.max(np.abs(g)))
    if d_max == 0.0:
        return False
    return float(np.ldexp(g, -math.frexp(g_max)[1]) @ np.ldexp(d, -math.frexp(d_max)[1])) > 0.0


def _scaled_step(g, d, Fd, delta, cg_result) -> NaturalStepResult:
    """The natural step from ``d`` and ``F d`` scaled by powers of two.

    With ``d = 2^e_d d_hat`` and ``F d = 2^e_f f_hat`` (both of order one),
    ``d^T F d = 2^k c_hat`` for ``c_hat = d_hat^T f_hat`` (doubled to make ``k``
    even), so ``beta = sqrt(2 delta / c_hat) 2^(-k/2)``, ``step = beta d`` and
    ``1/2 beta^2 d^T F d = 1/2 beta_hat^2 c_hat`` are formed without leaving the
    floating-point range unless they do so themselves.
    """
    e_d = math.frexp(float(np.max(np.abs(d))))[1]
    e_f = math.frexp(float(np.max(np.abs(Fd))))[1]
    d_hat = np.ldexp(d, -e_d)
    c_hat = float(d_hat @ np.ldexp(Fd, -e_f))
    k = e_d + e_f
    if k % 2:
        c_hat, k = 2.0 * c_hat, k - 1
    with np.errstate(over="ignore", under="ignore"):
        curvature = float(np.ldexp(c_hat, k))

    def no_step(status: StepStatus) -> NaturalStepResult:
        return _no_step(d, cg_result, status, curvature)

    if c_hat <= 0.0 or _first_direction_failed(cg_result):
        return no_step(StepStatus.NONPOSITIVE_CURVATURE)
    if not _ascends(g, d):
        return no_step(StepStatus.NOT_ASCENT)
    beta_hat = math.sqrt(2.0 * delta / c_hat)  # Schulman et al. (2015), App. C, scaled
    with np.errstate(over="ignore", under="ignore"):
        beta = float(np.ldexp(beta_hat, -k // 2))
        step = np.ldexp(beta_hat * d_hat, e_d - k // 2)
    if not (math.isfinite(beta) and np.isfinite(step).all()):
        return no_step(StepStatus.NON_FINITE)
    return NaturalStepResult(
        direction=d,
        step=step,
        beta=beta,
        expected_improvement=float(g @ step),
        quadratic_kl=0.5 * beta_hat * beta_hat * c_hat,
        curvature=curvature,
        cg=cg_result,
        status=StepStatus.OK,
    )
