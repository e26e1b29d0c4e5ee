"""Reference solvers for the trust-region subproblem on small dense problems.

The subproblem (N&W eq. 4.3) is

.. math::

    \\min_{p \\in \\mathbb{R}^n} \\; m(p) = g^T p + \\tfrac12 p^T H p
    \\quad \\text{subject to} \\quad \\|p\\| \\le \\Delta .

Three solvers of increasing cost and accuracy, all returning
:class:`~trustregion.result.SubproblemResult` like :func:`trustregion.steihaug`:

* :func:`cauchy_point` -- the minimiser of ``m`` along ``-g`` inside the region
  (N&W eqs. 4.11-4.12); the yardstick of "sufficient" model decrease.
* :func:`dogleg` -- the dogleg path from the Cauchy point to the Newton step
  (N&W §4.1); needs ``H`` positive definite.
* :func:`exact` -- the global minimiser by the Moré--Sorensen iteration
  (N&W Alg. 4.3, §4.3), including the hard case; returns the multiplier.

They factor ``H`` densely and are meant as references and for small problems;
:func:`trustregion.steihaug` is the matrix-free solver for large ones.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.linalg
from scipy.linalg.blas import dnrm2

from trustregion._checks import (
    as_dense_matrix,
    as_vector,
    check_symmetric,
    norm2,
    positive_scalar,
    scalar_option,
)
from trustregion.result import SubproblemResult, SubproblemStatus

__all__ = ["cauchy_point", "dogleg", "exact"]

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_SQRT_TINY = 2.0**-511


def _inputs(g, H, radius):
    """Validate ``(g, H, radius)``; return a float64 vector, a symmetric matrix and a float."""
    g = as_vector(g, "g")
    if g.shape[0] == 0:
        raise ValueError("g must have at least one entry; got an empty vector")
    H = as_dense_matrix(H, "H", n=g.shape[0])
    radius = positive_scalar(radius, "radius")
    check_symmetric(H, "H")
    return g, 0.5 * (H + H.T), radius


def _norm(v) -> float:
    """Euclidean norm without overflow in the squares (BLAS ``dnrm2``)."""
    return float(dnrm2(np.ascontiguousarray(v, dtype=np.float64)))


def _dot(u, v) -> float:
    """``u^T v``, rescaled by powers of two if the products over- or underflow."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        value = float(u @ v)
    if _TINY <= abs(value) < math.inf or not u.any() or not v.any():
        return value
    e_u = math.frexp(float(np.max(np.abs(u))))[1]
    e_v = math.frexp(float(np.max(np.abs(v))))[1]
    with np.errstate(over="ignore", under="ignore"):
        return float(np.ldexp(float(np.ldexp(u, -e_u) @ np.ldexp(v, -e_v)), e_u + e_v))


def _model_decrease(g, H, p) -> float:
    """``m(0) - m(p) = -(g^T p + 1/2 p^T H p)`` (N&W eq. 4.3).

    If the products over- or underflow, ``g`` and ``p`` are scaled by powers of two
    and the result scaled back (``inf`` only if the decrease itself overflows).
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        decrease = float(-(g @ p + 0.5 * (p @ (H @ p))))
    if _TINY <= abs(decrease) < math.inf or not p.any() or not g.any():
        return decrease
    e_g = math.frexp(float(np.max(np.abs(g))))[1]
    e_p = math.frexp(float(np.max(np.abs(p))))[1]
    e = max(e_g + e_p, 2 * e_p)  # the larger scale of the two terms
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g_hat, p_hat = np.ldexp(g, -e_g), np.ldexp(p, -e_p)
        scaled = -(
            np.ldexp(float(g_hat @ p_hat), e_g + e_p - e)
            + np.ldexp(0.5 * float(p_hat @ (H @ p_hat)), 2 * e_p - e)
        )
        return float(np.ldexp(scaled, e))


def _zero_step(n: int) -> SubproblemResult:
    return SubproblemResult(
        p=np.zeros(n),
        hits_boundary=False,
        status=SubproblemStatus.ZERO_GRADIENT,
        nit=0,
        model_decrease=0.0,
        lam=0.0,
    )


def cauchy_point(g, H, radius) -> SubproblemResult:
    """Cauchy point: the minimiser of the quadratic model along ``-g`` inside the region.

    Parameters
    ----------
    g : array_like, shape (n,)
        Gradient of the model at ``p = 0``.
    H : array_like, sparse matrix or LinearOperator, shape (n, n)
        Symmetric model Hessian (made dense).
    radius : float
        Trust-region radius ``Delta > 0``.

    Returns
    -------
    SubproblemResult
        ``p`` the Cauchy point; ``status`` is ``INTERIOR`` when the minimiser along
        ``-g`` lies strictly inside the region, ``BOUNDARY`` when it is cut off by
        the boundary, ``NEGATIVE_CURVATURE`` when ``g^T H g < 0`` (the model is
        unbounded below along ``-g``), ``ZERO_GRADIENT`` when ``g = 0`` (then
        ``p = 0``). ``nit`` is 0 (closed form), ``lam`` is None.

    Raises
    ------
    ValueError
        If ``g`` is not a finite vector, ``H`` not a finite symmetric matrix of
        matching size, or ``radius <= 0``.

    Notes
    -----
    N&W eqs. (4.11)-(4.12):

    .. math::

        p^C = -\\tau \\frac{\\Delta}{\\|g\\|} g, \\qquad
        \\tau = \\begin{cases} 1 & g^T H g \\le 0, \\\\
        \\min\\left(\\|g\\|^3 / (\\Delta\\, g^T H g),\\; 1\\right) & \\text{otherwise.}
        \\end{cases}

    It is computed with the unit vector ``u = g / ||g||`` and the curvature
    ``kappa = u^T H u`` (so ``||g||^3 / (Delta g^T H g) = ||g|| / (Delta kappa)``,
    which cannot overflow), and the model decrease in closed form,
    ``m(0) - m(p^C) = t (||g|| - t kappa / 2)`` with ``t = tau Delta``, which is
    ``>= 0`` in floating point as in exact arithmetic; ``||g||`` is computed
    without overflow or underflow. Any step achieving a fixed
    fraction of this decrease gives global convergence of the trust-region
    method (N&W Thm. 4.5); the decrease is at least
    ``1/2 ||g|| min(Delta, ||g|| / ||H||)`` (N&W Lemma 4.3).

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, §4.1.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> H = np.diag([1.0, 10.0])
    >>> g = np.array([1.0, 1.0])
    >>> res = tr.cauchy_point(g, H, radius=10.0)
    >>> res.status.name, np.round(res.p, 4)
    ('INTERIOR', array([-0.1818, -0.1818]))
    >>> tr.cauchy_point(g, H, radius=0.1).hits_boundary
    True
    """
    g, H, radius = _inputs(g, H, radius)
    gnorm = norm2(g)
    if gnorm == 0.0:
        return _zero_step(g.shape[0])
    u = g / gnorm
    kappa = float(u @ (H @ u))  # g^T H g / ||g||^2
    if kappa <= 0.0:
        # eq. (4.12), first case: the model decreases along -g all the way to the boundary
        tau = 1.0
        status = SubproblemStatus.NEGATIVE_CURVATURE if kappa < 0.0 else SubproblemStatus.BOUNDARY
    else:
        tau = min(gnorm / (radius * kappa), 1.0)  # eq. (4.12), second case
        status = SubproblemStatus.BOUNDARY if tau == 1.0 else SubproblemStatus.INTERIOR
    t = tau * radius
    p = -t * u  # eq. (4.11)
    return SubproblemResult(
        p=p,
        hits_boundary=tau == 1.0,
        status=status,
        nit=0,
        model_decrease=float(t * (gnorm - 0.5 * t * kappa)),
    )


def _cholesky_lower(H):
    """Lower Cholesky factor of ``H``, or None if ``H`` is not (numerically) positive definite."""
    try:
        return np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None


def dogleg(g, H, radius) -> SubproblemResult:
    """Dogleg step: minimise the model along the path Cauchy point -> Newton step.

    Parameters
    ----------
    g : array_like, shape (n,)
        Gradient of the model at ``p = 0``.
    H : array_like, sparse matrix or LinearOperator, shape (n, n)
        Symmetric **positive definite** model Hessian (made dense).
    radius : float
        Trust-region radius ``Delta > 0``.

    Returns
    -------
    SubproblemResult
        ``status`` is ``INTERIOR`` when the Newton step ``p^B = -H^{-1} g`` lies
        inside the region (then ``p = p^B``), ``BOUNDARY`` otherwise (the path
        meets the boundary), ``ZERO_GRADIENT`` when ``g = 0``. ``nit`` is 0.

    Raises
    ------
    ValueError
        If ``H`` is not positive definite (its Cholesky factorisation fails): the
        dogleg path is defined only for ``H`` positive definite; use
        :func:`exact` or :func:`trustregion.steihaug` for indefinite ``H``. Also
        for the bad inputs listed under :func:`cauchy_point`.

    Notes
    -----
    N&W §4.1, eqs. (4.15)-(4.16). With the unconstrained minimiser along the
    steepest descent direction ``p^U = -(g^T g / g^T H g) g`` and the Newton step
    ``p^B = -H^{-1} g`` (by Cholesky), the dogleg path is

    .. math::

        \\tilde p(\\tau) = \\begin{cases}
        \\tau p^U & 0 \\le \\tau \\le 1, \\\\
        p^U + (\\tau - 1)(p^B - p^U) & 1 \\le \\tau \\le 2,
        \\end{cases}

    along which ``||p||`` increases and ``m`` decreases (N&W Lemma 4.2), so the
    step is ``p^B`` if it is inside, ``-Delta g / ||g||`` if ``||p^U|| >= Delta``,
    and otherwise the point of the second leg with ``||p|| = Delta``, found from
    ``||p^U + s d||^2 = Delta^2`` (``d = p^B - p^U``, ``s = tau - 1``) by the
    cancellation-free quadratic formula (if its squares over- or underflow, from
    the same equation scaled by powers of two and ``||d||``). The model decrease
    is never smaller than the Cauchy point's. Norms are computed without
    overflow or underflow, so ``g`` of any finite scale is handled.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, §4.1.
    .. [2] M. J. D. Powell, "A hybrid method for nonlinear equations", in
       *Numerical Methods for Nonlinear Algebraic Equations*, 1970.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> H = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> g = np.array([1.0, 2.0])
    >>> inside = tr.dogleg(g, H, radius=10.0)       # Newton step fits
    >>> inside.status.name, np.allclose(H @ inside.p, -g)
    ('INTERIOR', True)
    >>> edge = tr.dogleg(g, H, radius=0.3)
    >>> edge.status.name, round(float(np.linalg.norm(edge.p)), 12)
    ('BOUNDARY', 0.3)
    """
    g, H, radius = _inputs(g, H, radius)
    L = _cholesky_lower(H)
    if L is None:
        raise ValueError(
            "H must be positive definite for the dogleg step (N&W §4.1), but its Cholesky "
            "factorisation failed; use trustregion.exact or trustregion.steihaug for an "
            "indefinite or singular H"
        )
    gnorm = norm2(g)
    if gnorm == 0.0:
        return _zero_step(g.shape[0])
    pB = -scipy.linalg.cho_solve((L, True), g)  # Newton step p^B = -H^{-1} g
    if norm2(pB) <= radius:
        return SubproblemResult(
            p=pB,
            hits_boundary=False,
            status=SubproblemStatus.INTERIOR,
            nit=0,
            model_decrease=-0.5 * _dot(g, pB),  # m(0) - m(p^B) = g^T H^{-1} g / 2
        )
    u = g / gnorm
    kappa = float(u @ (H @ u))  # > 0 since H is positive definite
    pU = -(gnorm / kappa) * u  # p^U = -(g^T g / g^T H g) g
    if gnorm / kappa >= radius:
        p = -radius * u  # first leg cut by the boundary
        decrease = float(radius * (gnorm - 0.5 * radius * kappa))
    else:
        # second leg: ||pU + s d|| = Delta, s in [0, 1]; a s^2 + b s + c = 0 with c < 0
        d = pB - pU
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            a = float(d @ d)
            b = 2.0 * float(pU @ d)
        c = min((_norm(pU) - radius) * (_norm(pU) + radius), 0.0)  # ||pU|| < radius
        s = math.nan
        if _TINY <= a < math.inf and math.isfinite(b) and c > -math.inf:
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                discriminant = b * b - 4.0 * a * c
                if _TINY <= discriminant < math.inf and (c <= -_TINY or radius >= _SQRT_TINY):
                    q = -0.5 * (b + np.copysign(np.sqrt(discriminant), b))
                    s = c / q if b >= 0.0 else q / a  # the positive root, without cancellation
        if not math.isfinite(s):  # a square over- or underflowed: the scaled computation
            s = _ray_to_sphere(pU, d, radius)
        p = pU + min(max(s, 0.0), 1.0) * d
        decrease = _model_decrease(g, H, p)
    return SubproblemResult(
        p=p,
        hits_boundary=True,
        status=SubproblemStatus.BOUNDARY,
        nit=0,
        model_decrease=decrease,
    )


def _ray_to_sphere(p, d, radius) -> float:
    """The root ``s >= 0`` of ``||p + s d|| = radius`` for ``||p|| <= radius``, at any scale.

    With ``u = d / ||d||`` and ``p``, ``radius`` scaled by a power of two to order one,
    ``sigma = s ||d||`` solves ``sigma^2 + 2 (p^T u) sigma + (||p||^2 - radius^2) = 0``,
    whose coefficients cannot over- or underflow.
    """
    dnorm = _norm(d)
    if dnorm == 0.0:
        return 0.0
    e = math.frexp(radius)[1]
    with np.errstate(under="ignore"):
        p_scaled = np.ldexp(p, -e)
    r_scaled = math.ldexp(radius, -e)
    beta = float(p_scaled @ (d / dnorm))
    pnorm = _norm(p_scaled)
    minus_c = max((r_scaled - pnorm) * (r_scaled + pnorm), 0.0)
    root = math.hypot(beta, math.sqrt(minus_c))  # sqrt(beta^2 - c)
    sigma = minus_c / (beta + root) if beta >= 0.0 else root - beta  # without cancellation
    with np.errstate(over="ignore", under="ignore"):
        return float(np.ldexp(sigma / dnorm, e))


def _boundary_tau(p, z, radius) -> tuple[float, float]:
    """Both roots ``tau`` of ``||p + tau z|| = radius`` for unit ``z`` and ``||p|| <= radius``."""
    b = float(p @ z)
    pnorm = _norm(p)
    c = min((pnorm - radius) * (pnorm + radius), 0.0)  # ||p|| <= radius, up to rounding
    root = np.sqrt(b * b - c)
    q = -(b + np.copysign(root, b))  # cancellation-free: tau^2 + 2 b tau + c = 0
    if q == 0.0:
        return 0.0, 0.0
    return q, c / q


def exact(g, H, radius, *, rtol=1e-10, maxiter=100) -> SubproblemResult:
    """Nearly exact global solution of the trust-region subproblem (Moré--Sorensen).

    Parameters
    ----------
    g : array_like, shape (n,)
        Gradient of the model at ``p = 0``.
    H : array_like, sparse matrix or LinearOperator, shape (n, n)
        Symmetric model Hessian, possibly indefinite (made dense).
    radius : float
        Trust-region radius ``Delta > 0``.
    rtol : float, optional
        Relative tolerance ``0 < rtol < 1`` on the optimality conditions: a
        boundary step is returned once its KKT residual satisfies
        ``||(H + lam I) p + g|| <= rtol (||g|| + (||H|| + lam) Delta)``.
    maxiter : int, optional
        Maximum number of Newton iterations on the multiplier (``>= 1``).

    Returns
    -------
    SubproblemResult
        ``p``, and the multiplier ``lam`` with ``(H + lam I) p = -g``,
        ``lam >= 0``, ``H + lam I`` positive semidefinite and
        ``lam (Delta - ||p||) = 0``. ``status``: ``INTERIOR`` (``lam = 0``,
        ``||p|| <= Delta``), ``BOUNDARY`` (``||p|| = Delta``, residual within
        ``rtol``), ``NEGATIVE_CURVATURE`` (the hard case with ``H`` indefinite:
        the step moves along an eigenvector of the most negative eigenvalue to
        the boundary), ``ZERO_GRADIENT`` (``g = 0`` and ``H`` positive
        semidefinite: ``p = 0``) or ``MAX_ITERATIONS`` (``maxiter`` reached, or
        the bracket collapsed to rounding first: the boundary point with the
        smallest residual found). ``nit`` counts the Newton iterations.

    Raises
    ------
    ValueError
        For the bad inputs listed under :func:`cauchy_point`, ``rtol`` outside
        ``(0, 1)`` or ``maxiter < 1``.

    Notes
    -----
    By N&W Thm. 4.1, ``p*`` is a global solution if and only if for some
    ``lam >= 0``

    .. math::

        (H + \\lambda I) p^* = -g, \\qquad \\lambda (\\Delta - \\|p^*\\|) = 0,
        \\qquad H + \\lambda I \\succeq 0.

    If ``H`` is positive definite and ``||H^{-1} g|| <= Delta`` then ``lam = 0``.
    Otherwise ``lam > max(0, -lambda_1)`` solves the secular equation
    ``1/Delta - 1/||p(lam)|| = 0`` with ``p(lam) = -(H + lam I)^{-1} g``, by
    Newton's method on the factor ``H + lam I = R^T R`` (N&W Alg. 4.3):

    .. math::

        R^T R p = -g, \\quad R^T q = p, \\quad
        \\lambda \\leftarrow \\lambda + \\left(\\frac{\\|p\\|}{\\|q\\|}\\right)^2
        \\frac{\\|p\\| - \\Delta}{\\Delta}.

    Safeguards (N&W §4.3): the iterates are kept inside a bracket
    ``(lam_lo, lam_hi]`` with ``lam_lo = max(0, -lambda_1)`` and
    ``lam_hi = ||g|| / Delta - lambda_1`` (where ``||p(lam)|| <= Delta``),
    updated from the sign of ``||p|| - Delta``; a Newton iterate that leaves the
    bracket, or at which the Cholesky factorisation fails, is replaced by
    ``max(sqrt(lam_lo lam_hi), lam_lo + 1e-3 (lam_hi - lam_lo))`` (Moré and
    Sorensen's choice, [2] §3).

    Stopping test. Each iterate ``p = p(lam)`` gives points on the boundary:
    ``p Delta / ||p||`` (KKT residual ``|Delta/||p|| - 1| ||g||``) and, if
    ``||p|| < Delta``, ``p + tau z`` with ``||p + tau z|| = Delta``, ``z`` a unit
    eigenvector of ``lambda_1`` (residual ``|tau| (lambda_1 + lam)``; [2] §3).
    The one with the smaller residual is returned when that residual is at most
    ``rtol (||g|| + (||H|| + lam) Delta)``.
    For a boundary point ``p`` with ``H + lam I`` positive semidefinite and
    residual ``r = (H + lam I) p + g``, ``m(p) - m(p*) <= 2 Delta ||r||``, so
    this bounds the loss in model value. Near the hard case, where ``lam*`` is
    within rounding of ``-lambda_1`` and ``||p(lam)||`` cannot be computed to a
    relative accuracy of ``rtol``, the completion ``p + tau z`` still meets the
    test.

    The smallest eigenvalue ``lambda_1`` and its eigenspace come from
    :func:`numpy.linalg.eigh`. For the small dense problems this reference
    solver is meant for, a full eigendecomposition is affordable and is the
    honest way to obtain the lower bound of the bracket and to detect the
    **hard case** (N&W eqs. 4.45-4.46): ``lambda_1 < 0`` and ``g`` orthogonal
    to the eigenspace ``Q_1`` of ``lambda_1`` -- to within the stopping test,
    ``||Q_1^T g|| <= rtol (||g|| + (||H|| - lambda_1) Delta)``, since dropping
    ``Q_1^T g`` leaves exactly that KKT residual -- with ``||p(-lambda_1)|| <= Delta`` where
    ``p(-lambda_1) = -sum_{lambda_j > lambda_1} q_j q_j^T g / (lambda_j - lambda_1)``.
    Then ``lam = -lambda_1`` and

    .. math::

        p^* = p(-\\lambda_1) + \\tau z, \\qquad \\|p^*\\| = \\Delta,

    with ``z`` a unit eigenvector of ``lambda_1``; of the two roots ``tau`` the
    one with the lower model value is taken.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, §4.3, Alg. 4.3.
    .. [2] J. J. Moré and D. C. Sorensen, "Computing a trust region step",
       *SIAM J. Sci. Stat. Comput.* 4(3):553-572, 1983.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> H = np.diag([-2.0, 1.0])
    >>> g = np.array([1.0, 1.0])
    >>> res = tr.exact(g, H, radius=1.0)
    >>> res.status.name, round(float(np.linalg.norm(res.p)), 8)
    ('BOUNDARY', 1.0)
    >>> bool(np.allclose((H + res.lam * np.eye(2)) @ res.p, -g)), bool(res.lam >= 2.0)
    (True, True)

    The hard case: ``g`` is orthogonal to the eigenvector of ``-2``.

    >>> hard = tr.exact(np.array([0.0, 1.0]), H, radius=2.0)
    >>> hard.status.name, float(hard.lam), round(float(np.linalg.norm(hard.p)), 8)
    ('NEGATIVE_CURVATURE', 2.0, 2.0)
    """
    g, H, radius = _inputs(g, H, radius)
    rtol, maxiter = scalar_option(rtol), scalar_option(maxiter)
    if not isinstance(rtol, numbers.Real) or not 0.0 < float(rtol) < 1.0:
        raise ValueError(f"rtol must be a real number in (0, 1); got {rtol!r}")
    rtol = float(rtol)
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
        raise ValueError(f"maxiter must be an integer >= 1; got {maxiter!r}")
    n = g.shape[0]
    identity = np.eye(n)

    # Safeguard and hard-case detector: the full spectrum (small dense problems only).
    eigvals, Q = np.linalg.eigh(H)
    lambda_1 = float(eigvals[0])
    H_norm = float(np.max(np.abs(eigvals)))
    tol_eig = 10.0 * n * _EPS * H_norm
    gnorm = _norm(g)
    gamma = Q.T @ g
    z = Q[:, 0]  # unit eigenvector of lambda_1

    def finish(p, lam, status, nit):
        return SubproblemResult(
            p=p,
            hits_boundary=bool(abs(_norm(p) - radius) <= rtol * radius),
            status=status,
            nit=nit,
            model_decrease=_model_decrease(g, H, p),
            lam=float(lam),
        )

    # 1. Interior solution: H positive definite and the Newton step fits (lam = 0).
    L = None
    if lambda_1 > tol_eig:
        L = _cholesky_lower(H)
    if L is not None:
        if gnorm == 0.0:
            return _zero_step(n)
        with np.errstate(over="ignore", invalid="ignore"):
            p = -scipy.linalg.cho_solve((L, True), g)
        if _norm(p) <= radius:
            return finish(p, 0.0, SubproblemStatus.INTERIOR, 0)

    # 2. The hard case: g orthogonal to the eigenspace of lambda_1, to within the tolerance
    #    of the stopping test (dropping Q_1^T g leaves the KKT residual ||Q_1^T g||).
    lam_lo = max(0.0, -lambda_1)
    in_E1 = eigvals <= lambda_1 + tol_eig
    hard_tol = rtol * (gnorm + (H_norm + lam_lo) * radius)
    if L is None and _norm(gamma[in_E1]) <= hard_tol:
        rest = ~in_E1
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            p_lim = -Q[:, rest] @ (gamma[rest] / (eigvals[rest] + lam_lo))  # p(-lambda_1)
        if _norm(p_lim) <= radius:
            if lambda_1 >= -tol_eig:
                # H positive semidefinite and singular, g in its range: lam = 0, interior
                if gnorm == 0.0:
                    return _zero_step(n)
                return finish(p_lim, 0.0, SubproblemStatus.INTERIOR, 0)
            best = min(
                (p_lim + tau * z for tau in _boundary_tau(p_lim, z, radius)),
                key=lambda p: -_model_decrease(g, H, p),
            )
            return finish(best, lam_lo, SubproblemStatus.NEGATIVE_CURVATURE, 0)

    # 3. Boundary solution: Newton on 1/Delta - 1/||p(lam)|| (N&W Alg. 4.3), safeguarded.
    lam_hi = gnorm / radius - lambda_1  # ||p(lam)|| <= ||g|| / (lam + lambda_1) <= Delta

    def safeguard():
        return max(np.sqrt(lam_lo * lam_hi), lam_lo + 1e-3 * (lam_hi - lam_lo))

    lam = 0.0 if L is not None else safeguard()
    best = None  # (KKT residual, boundary point, lam) of the best candidate so far
    for nit in range(1, maxiter + 1):
        L = _cholesky_lower(H + lam * identity)
        with np.errstate(over="ignore", invalid="ignore"):
            p = None if L is None else -scipy.linalg.cho_solve((L, True), g)  # R^T R p = -g
        pnorm = np.inf if p is None else _norm(p)
        if not np.isfinite(pnorm):
            # lam is (numerically) at or below -lambda_1: raise the lower end of the bracket
            lam_lo = max(lam_lo, lam)
            lam_new = safeguard()
        else:
            # points on the boundary and their KKT residuals ||(H + lam I) p_hat + g||
            candidates = [(abs(radius / pnorm - 1.0) * gnorm, p * (radius / pnorm))]
            if pnorm > radius:
                lam_lo = max(lam_lo, lam)
            else:
                lam_hi = min(lam_hi, lam)
                # nearly hard case (Moré–Sorensen): complete p along z to the boundary
                tau = min(_boundary_tau(p, z, radius), key=abs)
                candidates.append((abs(tau) * (lambda_1 + lam), p + tau * z))
            residual, candidate = min(candidates, key=lambda c: c[0])
            if best is None or residual < best[0]:
                best = (residual, candidate, lam)
            if residual <= rtol * (gnorm + (H_norm + lam) * radius):
                return finish(candidate, lam, SubproblemStatus.BOUNDARY, nit)
            # Newton step, N&W Alg. 4.3 / eq. (4.44), with p and q = R^{-T} p scaled by 1/||p||
            with np.errstate(over="ignore"):
                q = scipy.linalg.solve_triangular(L, p / pnorm, lower=True)
            q_norm = _norm(q)
            lam_new = lam + (pnorm / radius - 1.0) / q_norm / q_norm
            if not lam_lo < lam_new <= lam_hi:
                lam_new = safeguard()
        if lam_new == lam or not lam_lo <= lam_new <= lam_hi:
            break  # the bracket has collapsed to rounding: no further progress possible
        lam = float(lam_new)
    if best is None:
        return finish(np.zeros(n), lam, SubproblemStatus.MAX_ITERATIONS, nit)
    return finish(best[1], best[2], SubproblemStatus.MAX_ITERATIONS, nit)
