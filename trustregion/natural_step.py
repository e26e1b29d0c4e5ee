"""The KL-constrained natural-gradient step of NPG and TRPO.

    max_s  g^T s   subject to   1/2 s^T F s <= delta

has the solution ``s = sqrt(2 delta / (d^T F d)) d`` with ``d = F^{-1} g``; the
direction is found by conjugate gradient using only products with ``F``.
"""

from __future__ import annotations

import math

import numpy as np

from trustregion._checks import as_vector, positive_scalar
from trustregion.conjugate_gradient import _cg
from trustregion.result import CGStatus, NaturalStepResult, StepStatus

__all__ = ["natural_step"]


def natural_step(
    g, F, max_kl, *, x0=None, M=None, rtol=1e-10, atol=0.0, maxiter=10, callback=None
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
        Starting guess for the direction (default zeros); not modified.
    M : optional
        Preconditioner approximating ``F^{-1}``, passed to :func:`trustregion.cg`.
    rtol, atol : float, optional
        CG stopping test ``||g - F d|| <= max(rtol ||g||, atol)``. The default
        ``rtol=1e-10`` is the residual tolerance of the original TRPO code, so
        in practice the ``maxiter`` iterations decide.
    maxiter : int, optional
        CG iterations; default 10, as in Schulman et al. (2015, App. C) and
        Spinning Up.
    callback : callable, optional
        Passed to :func:`trustregion.cg`: ``callback(dk)`` after each iteration.

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
        Before any work, for ``max_kl <= 0`` and for the invalid inputs
        :func:`trustregion.cg` rejects (named ``g`` and ``F`` here).

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
    implementations. The natural-gradient direction ``F^{-1} g`` is invariant
    under linear reparameterisations ``theta = A phi`` (``A d_phi = d_theta``).

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
    cg_result, r_true = _cg(
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

    if not g.any():
        return no_step(StepStatus.ZERO_GRADIENT, 0.0)
    if cg_result.status is CGStatus.NON_FINITE:
        return no_step(StepStatus.NON_FINITE, math.nan)
    curvature = float(d @ (g - r_true))  # d^T F d, with F d = g - r from the true residual
    if not math.isfinite(curvature):
        return no_step(StepStatus.NON_FINITE, curvature)
    first_direction_failed = (
        cg_result.status is CGStatus.NONPOSITIVE_CURVATURE and cg_result.nit == 0
    )
    if curvature <= 0.0 or first_direction_failed:
        return no_step(StepStatus.NONPOSITIVE_CURVATURE, curvature)
    beta = math.sqrt(2.0 * delta / curvature)  # Schulman et al. (2015), App. C
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
