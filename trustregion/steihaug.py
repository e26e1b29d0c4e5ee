"""Steihaug–Toint truncated conjugate gradient for the trust-region subproblem.

    min_p  m(p) = g^T p + 1/2 p^T H p   subject to   ||p|| <= Delta

(Nocedal & Wright 2006, Alg. 7.2), optionally preconditioned, in which case the
region is measured in the norm the preconditioned iterates grow in
(Conn, Gould & Toint 2000, §7.5). Only products with ``H`` are needed.

The parts: :func:`steihaug` checks its arguments once, sets the tolerance and runs the
iteration, on the problem as given or, when its squares would leave the float range,
scaled by powers of two (:func:`_solve_scaled`, :func:`_solve_deep_interior`);
:func:`_steihaug_iterations` is N&W Alg. 7.2 itself, and :func:`_boundary_taus` the
crossing of the boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from trustregion._checks import (
    PRODUCT_EXPONENT,
    as_operator,
    as_vector,
    checked_maxiter,
    fast_matvec,
    nonempty,
    nonnegative_scalar,
    norm2,
    positive_scalar,
    reject_complex,
)
from trustregion.result import SubproblemResult, SubproblemStatus

__all__ = ["steihaug"]

# |g| and Delta in [2^-128, 2^128]: the squares and their products in the recurrences and in
# the boundary quadratic (fourth powers of the data) stay within 2^±PRODUCT_EXPONENT, so the
# problem is solved as given
_SAFE_EXPONENT = PRODUCT_EXPONENT // 4


def steihaug(g, H, radius, *, M=None, rtol=None, atol=0.0, maxiter=None) -> SubproblemResult:
    r"""Approximately minimize the quadratic model in a trust region by truncated CG.

    Parameters
    ----------
    g : array_like, shape (n,)
        Gradient of the model at ``p = 0``.
    H : ndarray, sparse matrix, LinearOperator or callable
        Symmetric ``n x n`` model Hessian, or a callable ``v -> H v``; it may be
        indefinite.
    radius : float
        Trust-region radius ``Delta > 0``.
    M : ndarray, sparse matrix, LinearOperator or callable, optional
        Symmetric positive definite preconditioner approximating ``H^{-1}``, as
        in :func:`trustregion.cg` (each iteration applies ``y = M r``). With
        ``M`` the trust region is ``||p||_{M^{-1}} = sqrt(p^T M^{-1} p) <= Delta``,
        the norm in which the preconditioned iterates grow; ``M^{-1}`` is never
        formed (see Notes).
    rtol, atol : float, optional
        The iteration stops inside the region when the residual of the Newton
        equation, ``r_j = g + H p_j``, satisfies
        ``||r_j|| <= max(rtol ||g||, atol)`` (Euclidean norm). The default
        ``rtol=None`` is the forcing term ``min(0.5, sqrt(||g||))`` of scipy's
        ``trust-ncg`` (N&W eq. (7.3) with superlinear rate), ``atol=0.0``.
    maxiter : int, optional
        Maximum number of CG iterations; default ``10 * n`` (in exact
        arithmetic at most ``n`` are needed).

    Returns
    -------
    SubproblemResult
        ``p``, ``hits_boundary``, ``status``, ``nit`` (CG iterations),
        ``model_decrease`` ``m(0) - m(p) >= 0`` and ``nmatvec`` (products
        with ``H``).

    Raises
    ------
    ValueError
        Before any work, for ``radius <= 0``, shapes that disagree, an empty,
        complex or non-finite ``g``, a dense ``H`` or ``M`` that is not
        symmetric, negative tolerances or arguments of the wrong type; at a
        product, if a callable or ``LinearOperator`` returns a vector of the
        wrong length.

    Notes
    -----
    N&W Alg. 7.2 with ``r_j = g + H p_j`` and, with a preconditioner,
    ``y_j = M r_j`` (``y_j = r_j`` without):

    .. math::

        p_0 = 0, \quad d_0 = -y_0, \quad
        \alpha_j = \frac{r_j^T y_j}{d_j^T H d_j}, \quad
        p_{j+1} = p_j + \alpha_j d_j, \\
        r_{j+1} = r_j + \alpha_j H d_j, \quad
        d_{j+1} = -y_{j+1} + \frac{r_{j+1}^T y_{j+1}}{r_j^T y_j} d_j.

    It ends in one of four ways:

    * ``NEGATIVE_CURVATURE``: ``d_j^T H d_j <= 0``. The model is unbounded
      along ``d_j``; both intersections ``p_j + tau d_j`` with the boundary
      (``tau < 0 < tau'``) are compared and the one of lower model value is
      returned.
    * ``BOUNDARY``: ``p_{j+1}`` would leave the region; the step stops where
      the segment from ``p_j`` crosses the boundary.
    * ``INTERIOR``: the CG iterate ``p_{j+1}``, strictly inside the region,
      met the tolerance ``||r_{j+1}|| <= max(rtol ||g||, atol)`` and is
      returned. That is all that was checked: it approximates the Newton step
      ``-H^{-1} g`` to this tolerance when ``H`` is positive definite.
    * ``MAX_ITERATIONS``; and ``ZERO_GRADIENT`` when ``g = 0``: then
      ``p = 0``, and this solver has no information about negative curvature
      (a caller at a saddle point needs another test), ``BREAKDOWN`` when
      ``r_j^T M r_j <= 0`` (``M`` not positive definite) and ``NON_FINITE``
      when ``H`` returns NaN or inf.

    The first iterate is the Cauchy point, and the model decreases along the
    iterates, so the step achieves at least the Cauchy decrease
    ``m(0) - m(p) >= 1/2 ||g|| min(Delta, ||g|| / ||H||)`` (N&W Lemma 4.3 and
    Thm. 7.2 — without a preconditioner). The norms of the iterates increase
    strictly (Steihaug 1983, Thm. 2.1), in the ``M^{-1}``-norm when
    preconditioned (Conn, Gould & Toint 2000, Thm. 7.5.1), so once an iterate
    leaves the region the solution path never returns.

    The norms are tracked without ``M^{-1}``: writing ``P = M^{-1}``,
    ``P d_{j+1} = -r_{j+1} + beta_j P d_j`` follows from ``P y_j = r_j``, and
    ``||p_{j+1}||_P^2 = ||p_j||_P^2 + 2 alpha_j p_j^T P d_j + alpha_j^2 d_j^T P d_j``
    (Conn, Gould & Toint 2000, §7.5.1). The
    crossing ``||p_j + tau d_j||_P = Delta`` solves
    ``d^T P d tau^2 + 2 p^T P d tau + (||p||_P^2 - Delta^2) = 0`` by the
    cancellation-free formula (as scipy's ``get_boundaries_intersections``).
    The model values come from the same recurrences:
    ``m(p_{j+1}) = m(p_j) - 1/2 alpha_j r_j^T y_j``, so no product with ``H``
    is spent on them. Here ``M`` approximates ``H^{-1}``; Conn, Gould & Toint
    call its inverse ``M`` and write the region as ``||p||_M <= Delta``.

    The recurrences square ``||g||`` and ``Delta``. When either lies outside
    ``[2^-128, 2^128]``, or an inner product of finite vectors overflows, the
    problem is solved as ``(c s g, c H, s Delta)`` with powers of two ``s`` and
    ``c`` that make ``g`` and ``Delta`` of order one; the iteration is exactly
    equivariant under this scaling (``p -> s p``), so the step is the same,
    without overflow or underflow. A dense ``H`` (or ``M``) must be symmetric,
    checked as :func:`trustregion.cg` checks a dense ``A`` (exactly up to 128
    rows, by two random probes above).

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, Section 7.1 (Algorithm 7.2).
    .. [2] T. Steihaug, "The conjugate gradient method and trust regions in
       large scale optimization", SIAM J. Numer. Anal. 20(3), 1983.
    .. [3] Ph. L. Toint, "Towards an efficient sparsity exploiting Newton
       method for minimization", in *Sparse Matrices and Their Uses*,
       Academic Press, 1981.
    .. [4] A. R. Conn, N. I. M. Gould and Ph. L. Toint, *Trust-Region
       Methods*, SIAM, 2000, Section 7.5.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> H = np.array([[2.0, 0.0], [0.0, 4.0]])
    >>> g = np.array([-2.0, -4.0])

    With a large radius the step is the Newton step ``-H^{-1} g = (1, 1)``:

    >>> res = tr.steihaug(g, H, 10.0, rtol=1e-12)
    >>> res.status.name, bool(np.allclose(res.p, [1.0, 1.0]))
    ('INTERIOR', True)

    With a small one it stops on the boundary:

    >>> res = tr.steihaug(g, H, 0.5)
    >>> res.status.name, round(float(np.linalg.norm(res.p)), 12)
    ('BOUNDARY', 0.5)

    Negative curvature takes it to the boundary as well:

    >>> res = tr.steihaug(g, np.diag([2.0, -1.0]), 0.5)
    >>> res.status.name, res.hits_boundary, res.model_decrease > 0
    ('NEGATIVE_CURVATURE', True, True)
    """
    g, hessp, Delta, psolve, rtol, atol, maxiter = _checked_arguments(g, H, radius, M, rtol,
                                                                      atol, maxiter)
    gnorm = norm2(g)
    if gnorm == 0.0:
        return SubproblemResult(
            p=np.zeros(g.shape[0]),
            hits_boundary=False,
            status=SubproblemStatus.ZERO_GRADIENT,
            nit=0,
            model_decrease=0.0,
        )
    if rtol is None:
        rtol = min(0.5, math.sqrt(gnorm))  # forcing term of scipy's trust-ncg
    tol = max(rtol * gnorm, atol)

    e_g = math.frexp(float(np.max(np.abs(g))))[1]
    e_Delta = math.frexp(Delta)[1]
    nmatvec = 0
    if abs(e_g) <= _SAFE_EXPONENT and abs(e_Delta) <= _SAFE_EXPONENT:
        p, log = _truncated_cg(hessp, g, psolve, Delta, tol, maxiter)
        if not log.overflow:
            return _result(p, log, float(log.model_decrease), log.nmatvec)
        nmatvec = log.nmatvec  # a square overflowed: solve the scaled problem instead
    p, log, model_decrease, scaled_nmatvec = _solve_scaled(hessp, g, psolve, Delta, gnorm, rtol,
                                                           atol, maxiter, e_g, e_Delta)
    return _result(p, log, model_decrease, nmatvec + scaled_nmatvec)


def _checked_arguments(g, H, radius, M, rtol, atol, maxiter):
    """:func:`steihaug`'s arguments checked: ``(g, hessp, Delta, psolve, rtol, atol,
    maxiter)`` with ``hessp = v -> H v`` and ``psolve = v -> M v`` (``None`` without
    ``M``)."""
    g = as_vector(g, "g", copy=False)
    nonempty(g, "g")
    n = g.shape[0]
    reject_complex(H, "H")
    hessp = fast_matvec(H, as_operator(H, "H", n=n, symmetric=True), "H")
    Delta = positive_scalar(radius, "radius")
    if M is None:
        psolve = None
    else:
        reject_complex(M, "M")
        psolve = fast_matvec(M, as_operator(M, "M", n=n, symmetric=True), "M")
    if rtol is not None:
        rtol = nonnegative_scalar(rtol, "rtol")
    atol = nonnegative_scalar(atol, "atol")
    maxiter = checked_maxiter(maxiter, n)
    return g, hessp, Delta, psolve, rtol, atol, maxiter


def _result(p, log, model_decrease: float, nmatvec: int) -> SubproblemResult:
    """The :class:`SubproblemResult` of the step ``p`` and its run's ``log``."""
    status = log.status
    return SubproblemResult(
        p=p,
        hits_boundary=status in (SubproblemStatus.BOUNDARY, SubproblemStatus.NEGATIVE_CURVATURE),
        status=status,
        nit=log.nit,
        model_decrease=model_decrease,
        nmatvec=nmatvec,
    )


def _solve_scaled(hessp, g, psolve, Delta, gnorm, rtol, atol, maxiter, e_g, e_Delta):
    """The step of the problem scaled to order one: ``(p, log, model_decrease, nmatvec)``.

    The iteration is exactly equivariant under ``(g, H, Delta) -> (c s g, c H, s Delta)``,
    ``p -> s p``, for powers of two ``c`` and ``s``. With ``s = 2^-e_Delta`` and
    ``c s = 2^-e_g``, ``g`` and ``Delta`` are of order one, and ``H`` carries the problem's
    one scale, ``Delta ||H|| / ||g||``. When that scale is itself beyond the float range the
    step is found by :func:`_solve_deep_interior` (too large) or its status corrected by the
    sign of the true curvature (too small).
    """
    scaled_overflow = []  # set when a finite product overflowed on scaling

    def scaled_hessp(v):
        hv = hessp(v)
        out = np.ldexp(hv, e_Delta - e_g)
        if not scaled_overflow and not np.isfinite(out).all() and np.isfinite(hv).all():
            scaled_overflow.append(True)
        return out

    # tol scaled as g is (computed from the scaled ||g||, so it cannot underflow)
    tol_scaled = max(rtol * float(np.ldexp(gnorm, -e_g)), float(np.ldexp(atol, -e_g)))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        p, log = _truncated_cg(scaled_hessp, np.ldexp(g, -e_g), psolve,
                               math.ldexp(Delta, -e_Delta), tol_scaled, maxiter)
        p = np.ldexp(p, e_Delta)
        model_decrease = float(np.ldexp(log.model_decrease, e_g + e_Delta))
    nmatvec = log.nmatvec
    if log.status is SubproblemStatus.NON_FINITE and scaled_overflow:
        # Delta ||H|| / ||g|| beyond the float range: the Newton step lies far inside
        p, log, model_decrease, extra = _solve_deep_interior(hessp, g, psolve, Delta, e_g,
                                                             tol_scaled, maxiter)
        nmatvec += extra
    elif log.status is SubproblemStatus.NEGATIVE_CURVATURE and log.zero_curvature and \
            log.nit == 1:
        # Delta ||H|| / ||g|| below the float range: the scaled H d_0 underflowed to a
        # curvature of 0. The step (the boundary point along d_0) is the same for zero
        # and positive curvature; the curvature's sign decides which status it is.
        u = np.ldexp(g, -e_g)
        d0 = u if psolve is None else psolve(u)
        with np.errstate(over="ignore"):
            curvature = float(np.dot(d0, hessp(d0)))
        nmatvec += 1
        if curvature > 0.0:
            log.status = SubproblemStatus.BOUNDARY
    return p, log, model_decrease, nmatvec


# the largest radius of the deep-interior problem: far beyond any iterate of an order-one
# problem, and its square (Delta^2 in the boundary test) is still finite
_RADIUS_CAP_EXPONENT = 500


def _solve_deep_interior(hessp, g, psolve, Delta, e_g, tol_scaled, maxiter):
    """The step when ``Delta ||H|| / ||g||`` overflows: ``(p, log, model_decrease, nmatvec)``.

    The iteration is equivariant under ``(g, H, Delta) -> (a g, b H, (a / b) Delta)``,
    ``p -> (a / b) p``, ``m -> (a^2 / b) m``. Here ``a = 2^-e_g`` and ``b = 2^-e_h``
    (``2^e_h`` the size of ``H g / ||g||``, one product) make g and H of order one, and
    the radius, far out of range, is capped at ``2^500``. An iterate that reaches the cap
    (negative curvature) is scaled out to the true boundary along its direction.
    ``tol_scaled`` is the stopping tolerance for ``2^-e_g g``, as in the scaled path.
    """
    u = np.ldexp(g, -e_g)
    with np.errstate(over="ignore"):
        hu = hessp(u)
    nmatvec = 1
    size = float(np.max(np.abs(hu)))
    log = _SteihaugLog()
    log.status = SubproblemStatus.NON_FINITE
    if not math.isfinite(size) or size == 0.0:
        return np.zeros_like(g), log, 0.0, nmatvec
    e_h = math.frexp(size)[1]
    shift = e_h - e_g  # log2(a / b)
    capped = math.frexp(Delta)[1] + shift > _RADIUS_CAP_EXPONENT
    radius = math.ldexp(1.0, _RADIUS_CAP_EXPONENT) if capped else math.ldexp(Delta, shift)

    def scaled_hessp(v):
        return np.ldexp(hessp(v), -e_h)

    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        p, log = _truncated_cg(scaled_hessp, u, psolve, radius, tol_scaled, maxiter)
        nmatvec += log.nmatvec
        if capped and log.status in (SubproblemStatus.BOUNDARY,
                                     SubproblemStatus.NEGATIVE_CURVATURE):
            # on the capped boundary: the same direction w (||w||_P = 1), out to Delta;
            # m(Delta w) = Delta (g^T w + Delta w^T H w / 2), whose overflow keeps its sign
            w = np.ldexp(p, -_RADIUS_CAP_EXPONENT)
            curvature = float(np.dot(w, hessp(w)))
            nmatvec += 1
            p = w * Delta
            model_decrease = -Delta * (float(np.dot(g, w)) + 0.5 * Delta * curvature)
        else:
            p = np.ldexp(p, -shift)
            model_decrease = float(np.ldexp(log.model_decrease, 2 * e_g - e_h))
    return p, log, model_decrease, nmatvec


def _truncated_cg(hessp, g, psolve, Delta, tol, maxiter):
    """The last iterate of :func:`_steihaug_iterations` (the step) and its log."""
    log = _SteihaugLog()
    p = None
    iterates = _steihaug_iterations(
        hessp, g, psolve=psolve, Delta=Delta, tol=tol, maxiter=maxiter, log=log
    )
    for p in iterates:  # noqa: B007 (the last iterate is the step)
        pass
    return p, log


class _SteihaugLog:
    """What a Steihaug run records besides its iterates."""

    __slots__ = ("nit", "nmatvec", "model_decrease", "status", "overflow", "zero_curvature")

    def __init__(self) -> None:
        self.nit = 0
        self.nmatvec = 0
        self.model_decrease = 0.0  # m(0) - m(p_j)
        self.status = SubproblemStatus.MAX_ITERATIONS
        self.overflow = False  # an inner product of finite vectors overflowed
        self.zero_curvature = False  # NEGATIVE_CURVATURE on a curvature of exactly 0


def _overflowed(*vectors: np.ndarray) -> bool:
    """Whether a non-finite inner product of ``vectors`` came from overflow (all finite)."""
    return all(np.isfinite(v).all() for v in vectors)


def _preconditioned(r: np.ndarray, rr: float, psolve, log: _SteihaugLog):
    """``(y, rho)`` with ``y = M r`` and ``rho = r^T y`` (``y = r``, ``rho = rr = r^T r``
    without a preconditioner), or ``None`` with ``log.status`` set when ``r^T M r`` is not
    finite (``NON_FINITE``) or not positive (``BREAKDOWN``: ``M`` is not positive
    definite)."""
    if psolve is None:
        return r, rr
    y = psolve(r)
    rho = float(np.dot(r, y))
    if not math.isfinite(rho):
        log.overflow = _overflowed(r, y)
        log.status = SubproblemStatus.NON_FINITE
        return None
    if rho <= 0.0:
        log.status = SubproblemStatus.BREAKDOWN
        return None
    return y, rho


def _boundary_taus(pPp: float, pPd: float, dPd: float, Delta2: float) -> tuple[float, float]:
    """Both roots ``tau_lo <= tau_hi`` of ``||p + tau d||_P = Delta`` when ``||p||_P < Delta``.

    The quadratic ``dPd tau^2 + 2 pPd tau + (pPp - Delta^2)`` is solved without
    cancellation: the root of larger magnitude from the usual formula with the
    sign of ``pPd``, the other from the product of the roots (``c / a``).
    """
    a = dPd
    b = 2.0 * pPd
    c = pPp - Delta2  # < 0: p is strictly inside, so the roots have opposite signs
    discriminant = b * b - 4.0 * a * c
    if discriminant > 0.0:
        aux = b + math.copysign(math.sqrt(discriminant), b)
        tau_1 = -aux / (2.0 * a)
        tau_2 = -2.0 * c / aux
        tau_lo, tau_hi = (tau_1, tau_2) if tau_1 <= tau_2 else (tau_2, tau_1)
        if -math.inf < tau_lo < 0.0 < tau_hi < math.inf:
            return tau_lo, tau_hi
    # b^2 - 4ac over- or underflowed: the same roots from sqrt(pPd^2 + dPd (Delta^2 - pPp)),
    # formed by hypot from square roots, which cannot overflow where the roots are finite
    h = math.hypot(pPd, math.sqrt(dPd) * math.sqrt(max(-c, 0.0)))
    aux = pPd + math.copysign(h, pPd)  # = (the aux above) / 2, without cancellation
    if aux == 0.0:
        return 0.0, 0.0
    tau_1 = -aux / dPd
    tau_2 = -c / aux
    return (tau_1, tau_2) if tau_1 <= tau_2 else (tau_2, tau_1)


def _steihaug_iterations(
    hessp: Callable[[np.ndarray], np.ndarray],
    g: np.ndarray,
    *,
    psolve: Callable[[np.ndarray], np.ndarray] | None,
    Delta: float,
    tol: float,
    maxiter: int,
    log: _SteihaugLog,
) -> Iterator[np.ndarray]:
    """Yield the iterates ``p_0 = 0, p_1, ...`` of N&W Alg. 7.2; the last one is the step.

    Interior iterates are the solver's own array, updated in place by the next
    iteration (copy to keep). ``g`` must be nonzero. On return ``log`` holds the
    iteration and product counts, ``m(0) - m(p)`` for the last iterate, and the
    :class:`SubproblemStatus`.
    """
    dot = np.dot
    isfinite = math.isfinite
    Delta2 = Delta * Delta

    p = np.zeros_like(g)  # N&W's z_j
    r = g.copy()  # r_j = g + H p_j, the model gradient at p_j
    preconditioned = _preconditioned(r, float(dot(r, r)), psolve, log)  # y_0 = M r_0
    if preconditioned is None:
        yield p
        return
    y, rho = preconditioned
    d = -y  # d_0 = -y_0
    # P = M^{-1}: Pd = P d_j by recurrence from P y_j = r_j (P = I: Pd is d itself)
    Pd = d if psolve is None else -r
    pPp = 0.0  # ||p_j||_P^2, by recurrence
    yield p
    if math.sqrt(float(dot(r, r))) <= tol:
        log.status = SubproblemStatus.INTERIOR
        return

    for j in range(maxiter):
        q = hessp(d)
        log.nmatvec += 1
        kappa = float(dot(d, q))  # d_j^T H d_j
        if not isfinite(kappa):
            log.overflow = _overflowed(d, q)
            log.status = SubproblemStatus.NON_FINITE
            return
        pPd = float(dot(p, Pd))
        dPd = float(dot(d, Pd))
        if not (isfinite(pPd) and isfinite(dPd)):
            log.overflow = _overflowed(p, d, Pd)
            log.status = SubproblemStatus.NON_FINITE
            return
        if dPd <= 0.0:  # d^T M^{-1} d <= 0: M is not positive definite
            log.status = SubproblemStatus.BREAKDOWN
            return
        # the two points p_j + tau d_j on the boundary, tau_lo < 0 < tau_hi (p_j is inside)
        tau_lo, tau_hi = _boundary_taus(pPp, pPd, dPd, Delta2)
        if kappa <= 0.0:
            # N&W Alg. 7.2: negative curvature. Along p_j + tau d_j the model changes by
            # tau r_j^T d_j + tau^2 kappa / 2, r_j^T d_j = -rho_j; take the lower boundary point.
            dm_lo = -tau_lo * rho + 0.5 * tau_lo * tau_lo * kappa
            dm_hi = -tau_hi * rho + 0.5 * tau_hi * tau_hi * kappa
            tau, dm = (tau_lo, dm_lo) if dm_lo < dm_hi else (tau_hi, dm_hi)
            log.nit = j + 1
            log.model_decrease -= dm
            log.status = SubproblemStatus.NEGATIVE_CURVATURE
            log.zero_curvature = kappa == 0.0
            yield p + tau * d
            return
        alpha = rho / kappa  # may be inf for tiny kappa: then it crosses the boundary
        crosses = alpha >= tau_hi
        if not crosses:
            pPp_next = pPp + 2.0 * alpha * pPd + alpha * alpha * dPd  # ||p_j + alpha_j d_j||_P^2
            crosses = pPp_next >= Delta2
        if crosses:
            # N&W Alg. 7.2: p_{j+1} would leave the region; stop where the segment crosses it
            log.nit = j + 1
            log.model_decrease -= -tau_hi * rho + 0.5 * tau_hi * tau_hi * kappa
            log.status = SubproblemStatus.BOUNDARY
            yield p + tau_hi * d
            return
        p += alpha * d  # p_{j+1} = p_j + alpha_j d_j
        r += alpha * q  # r_{j+1} = r_j + alpha_j H d_j
        pPp = pPp_next
        log.nit = j + 1
        log.model_decrease += 0.5 * alpha * rho  # m(p_j) - m(p_{j+1}) = alpha_j rho_j / 2
        rr = float(dot(r, r))
        yield p
        if not isfinite(rr):
            log.overflow = _overflowed(r)
            log.status = SubproblemStatus.NON_FINITE
            return
        if math.sqrt(rr) <= tol:
            log.status = SubproblemStatus.INTERIOR
            return
        preconditioned = _preconditioned(r, rr, psolve, log)  # y_{j+1} = M r_{j+1}
        if preconditioned is None:
            return
        y, rho_next = preconditioned
        beta = rho_next / rho
        d *= beta
        d -= y  # d_{j+1} = -y_{j+1} + beta_j d_j
        if psolve is not None:
            Pd *= beta
            Pd -= r  # P d_{j+1} = -r_{j+1} + beta_j P d_j
        rho = rho_next
    log.status = SubproblemStatus.MAX_ITERATIONS
