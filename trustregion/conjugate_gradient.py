"""Conjugate gradient for symmetric positive definite systems ``A x = b``.

Plain CG (Nocedal & Wright 2006, Alg. 5.2) and preconditioned CG (Alg. 5.3),
with what :func:`scipy.sparse.linalg.cg` leaves out: the iteration count, the
residual history, the number of products with ``A``, the true residual at the
end, and a curvature check that stops on ``p^T A p <= 0`` instead of dividing
by it.
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
    reject_complex,
)
from trustregion.result import CGResult, CGStatus

__all__ = ["cg"]


def cg(A, b, *, x0=None, M=None, rtol=1e-5, atol=0.0, maxiter=None, callback=None) -> CGResult:
    r"""Solve ``A x = b`` for symmetric positive definite ``A`` by conjugate gradient.

    Parameters
    ----------
    A : ndarray, sparse matrix, LinearOperator or callable
        The symmetric positive definite ``n x n`` matrix, or a callable ``v -> A v``.
    b : array_like, shape (n,)
        Right-hand side, ``n >= 1`` (lists, integer and float32 arrays are
        converted to float64, as in scipy).
    x0 : array_like, shape (n,), optional
        Starting guess (default zeros). It is never modified.
    M : ndarray, sparse matrix, LinearOperator or callable, optional
        Symmetric positive definite preconditioner that approximates ``A^{-1}``
        (as in :func:`scipy.sparse.linalg.cg`): each iteration applies
        ``z = M r``. ``None`` runs plain CG.
    rtol, atol : float, optional
        Relative and absolute tolerances of the stopping test

        ``||r_k|| <= max(rtol * ||b||, atol)``,

        with ``r_k = b - A x_k`` the residual carried by the CG recurrence and
        ``||.||`` the Euclidean norm. Defaults ``rtol=1e-5``, ``atol=0.0``, as
        in scipy.
    maxiter : int, optional
        Maximum number of iterations; default ``10 * n``, as in scipy.
    callback : callable, optional
        Called as ``callback(xk)`` after each iteration with the current iterate
        (the solver's own array: copy it to keep it).

    Returns
    -------
    CGResult
        ``x``, ``nit``, ``nmatvec`` (products with ``A``, including the one
        that recomputes the true residual), ``residual_norm`` (the true
        ``||b - A x||`` recomputed from ``x``), ``residual_norms`` (the
        recurrence norms ``||r_0||, ..., ||r_nit||``), ``curvatures``
        (``p_k^T A p_k`` for each direction tried), ``status``, ``success``
        and ``message``.

    Raises
    ------
    ValueError
        Before any work, if an argument has the wrong type, shape or value
        (non-square ``A``, a dense ``A`` or ``M`` that is not symmetric, complex
        values, an empty ``b``, lengths that disagree, NaN or inf in ``b``,
        ``x0`` or a dense ``A``, negative tolerances, ...); at a product, if a
        callable or ``LinearOperator`` returns a vector of the wrong length.

    Notes
    -----
    Preconditioned CG (Nocedal & Wright 2006, Alg. 5.3; Alg. 5.2 is ``M = I``),
    written with the residual ``r = b - A x`` as in scipy:

    .. math::

        z_k = M r_k, \quad \rho_k = r_k^T z_k, \quad
        p_k = z_k + \frac{\rho_k}{\rho_{k-1}} p_{k-1} \ (p_0 = z_0), \\
        \alpha_k = \frac{\rho_k}{p_k^T A p_k}, \quad
        x_{k+1} = x_k + \alpha_k p_k, \quad
        r_{k+1} = r_k - \alpha_k A p_k.

    In exact arithmetic the residuals are orthogonal (``r_i^T z_j = 0``,
    ``i != j``), the directions are ``A``-conjugate (``p_i^T A p_j = 0``), and
    CG ends in at most as many iterations as ``A`` has distinct eigenvalues
    (N&W Thm. 5.4).

    The iteration stops with a status rather than producing garbage:

    * ``CONVERGED`` when ``||r_k|| <= max(rtol ||b||, atol)`` for the
      recurrence residual ``r_k``;
    * ``MAX_ITERATIONS`` after ``maxiter`` iterations;
    * ``NONPOSITIVE_CURVATURE`` when ``p_k^T A p_k <= 0``: ``A`` is not positive
      definite, ``alpha_k`` is undefined, and the last iterate is returned;
    * ``BREAKDOWN`` when ``r_k^T z_k <= 0`` for ``r_k != 0``: ``M`` is not
      positive definite;
    * ``NON_FINITE`` when ``A`` or ``M`` returns NaN or inf, or an iterate or
      its residual overflows; ``x`` is then the last iterate that was finite
      with a finite residual (after an overflow the run is replayed to find
      it, so ordinary runs keep no copies; the replay applies ``A`` again).

    The test uses the recurrence residual; the reported ``residual_norm`` is
    the true residual, which differs from it by rounding of order
    ``kappa(A) eps ||b||``. Without ``M`` the iterates are computed with the
    same floating-point operations as :func:`scipy.sparse.linalg.cg`, so the
    two take the same iterates and this function never needs more iterations.
    If ``b = 0`` the answer is ``x = 0`` after no iterations, whatever ``x0``.
    A right-hand side so small or large that ``r^T r`` would underflow or
    overflow is first scaled by a power of two, which changes no digit of the
    iterates. A dense ``A`` (or ``M``) must be symmetric: up to 128 rows to
    within ``max |A - A^T| <= sqrt(eps) max |A|``, as for the dense subproblem
    solvers; above, by two random probes that cost two products with ``A``
    (``|v^T A u - u^T A v| <= sqrt(eps) (||A u|| ||v|| + ||A v|| ||u||)``),
    since forming ``A - A^T`` would cost more than a short CG run. It is used
    as given.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, Chapter 5 (Algorithms 5.2 and 5.3).
    .. [2] M. R. Hestenes and E. Stiefel, "Methods of conjugate gradients for
       solving linear systems", J. Res. Nat. Bur. Standards 49(6), 1952.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> b = np.array([1.0, 2.0])
    >>> res = tr.cg(A, b, rtol=1e-10)
    >>> res.success, res.nit
    (True, 2)
    >>> bool(np.allclose(A @ res.x, b))
    True

    An indefinite matrix is reported, not divided by:

    >>> res = tr.cg(np.diag([1.0, -1.0]), np.array([1.0, 1.0]))
    >>> res.status.name, res.success
    ('NONPOSITIVE_CURVATURE', False)
    """
    result, _ = preconditioned_cg(A, b, x0=x0, M=M, rtol=rtol, atol=atol, maxiter=maxiter,
                                  callback=callback)
    return result


class _CGLog:
    """What a CG run records besides its iterates: histories, product count, status."""

    __slots__ = ("residual_norms", "curvatures", "nmatvec", "status", "overflowed")

    def __init__(self) -> None:
        self.residual_norms: list[float] = []
        self.curvatures: list[float] = []
        self.nmatvec = 0
        self.status = CGStatus.MAX_ITERATIONS
        self.overflowed = False  # an iterate's residual overflowed (the iterate was kept)


def _cg_iterations(
    matvec: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    r: np.ndarray,
    *,
    psolve: Callable[[np.ndarray], np.ndarray] | None,
    tol: float,
    maxiter: int,
    log: _CGLog,
    guard: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run (preconditioned) CG from ``x`` with residual ``r = b - A x``.

    After each iteration ``k = 1, 2, ...`` yields ``(x_k, r_k, p_{k-1})``: the
    iterate, the recurrence residual and the direction just used. These are the
    solver's own arrays, updated in place by the next iteration (copy to keep).
    ``x`` and ``r`` are updated in place. On return ``log`` holds the residual
    norms ``||r_0||, ..., ||r_k||``, the curvatures ``p_j^T A p_j``, the number
    of products with ``A`` and the :class:`CGStatus`; a non-finite ``r_{k+1}``
    ends the run with ``NON_FINITE`` after ``x_{k+1}`` is yielded.

    With ``guard=True`` every iteration also keeps ``x_k``, and an iteration whose
    ``x_{k+1}`` or ``r_{k+1}`` is not finite is not yielded: ``x`` is put back to
    ``x_k`` and the status is ``NON_FINITE`` (``r`` is then not meaningful). The
    iterates are the same, bit for bit; :func:`preconditioned_cg` replays a run that overflowed
    this way, so that ordinary runs pay nothing for it.
    """
    dot = np.dot
    sqrt = math.sqrt
    isfinite = math.isfinite
    norms = log.residual_norms
    curvatures = log.curvatures

    rr = float(dot(r, r))
    rnorm = sqrt(rr)
    norms.append(rnorm)
    p = None
    rho_prev = 1.0
    x_prev = np.empty_like(x) if guard else None
    for _ in range(maxiter):
        if rnorm <= tol:
            log.status = CGStatus.CONVERGED
            return
        if psolve is None:
            z = r
            rho = rr  # N&W Alg. 5.2: rho_k = r_k^T r_k
        else:
            z = psolve(r)  # N&W Alg. 5.3: z_k = M r_k
            rho = float(dot(r, z))
            if not isfinite(rho):
                log.status = CGStatus.NON_FINITE
                return
            if rho <= 0.0:
                log.status = CGStatus.BREAKDOWN
                return
        if p is None:
            p = z.copy()  # p_0 = z_0
        else:
            p *= rho / rho_prev  # beta_k = rho_k / rho_{k-1}
            p += z  # p_k = z_k + beta_k p_{k-1}
        q = matvec(p)
        log.nmatvec += 1
        pAp = float(dot(p, q))
        curvatures.append(pAp)
        if not isfinite(pAp):
            log.status = CGStatus.NON_FINITE
            return
        if pAp <= 0.0:
            log.status = CGStatus.NONPOSITIVE_CURVATURE
            return
        alpha = rho / pAp
        if not isfinite(alpha):
            log.status = CGStatus.NON_FINITE
            return
        if guard:
            x_prev[...] = x
        x += alpha * p  # x_{k+1} = x_k + alpha_k p_k
        r -= alpha * q  # r_{k+1} = r_k - alpha_k A p_k
        rr = float(dot(r, r))
        if guard and not (isfinite(rr) and np.isfinite(x).all()):
            x[...] = x_prev  # the last finite iterate, whose residual is finite
            log.status = CGStatus.NON_FINITE
            return
        rnorm = sqrt(rr)
        norms.append(rnorm)
        rho_prev = rho
        yield x, r, p
        if not isfinite(rr):
            log.status = CGStatus.NON_FINITE
            log.overflowed = True
            return
    log.status = CGStatus.CONVERGED if rnorm <= tol else CGStatus.MAX_ITERATIONS


def preconditioned_cg(
    A,
    b,
    *,
    x0=None,
    M=None,
    rtol=1e-5,
    atol=0.0,
    maxiter=None,
    callback=None,
    a_name="A",
    b_name="b",
) -> tuple[CGResult, np.ndarray]:
    """:func:`cg`, also returning the true residual ``b - A x`` it recomputes at the end.

    The solver :func:`cg` and :func:`trustregion.natural_step` share; not exported from
    :mod:`trustregion` (call :func:`cg`).
    """
    # validation, all before any work
    b = as_vector(b, b_name, copy=False)
    nonempty(b, b_name)
    n = b.shape[0]
    reject_complex(A, a_name)
    op = as_operator(A, a_name, n=n, symmetric=True)
    matvec = fast_matvec(A, op, a_name)
    if x0 is None:
        x = np.zeros(n)
    else:
        x = as_vector(x0, "x0", n=n, copy=True, against=b_name)  # a copy: x0 is never modified
    if M is None:
        psolve = None
    else:
        reject_complex(M, "M")
        psolve = fast_matvec(M, as_operator(M, "M", n=n, symmetric=True), "M")
    rtol = nonnegative_scalar(rtol, "rtol")
    atol = nonnegative_scalar(atol, "atol")
    maxiter = checked_maxiter(maxiter, n)
    if callback is not None and not callable(callback):
        raise ValueError(
            f"callback must be callable as callback(xk) or None; got {type(callback).__name__}"
        )

    if not b.any():  # A x = 0 has the solution x = 0
        result = CGResult(
            x=np.zeros(n),
            nit=0,
            nmatvec=0,
            residual_norm=0.0,
            residual_norms=np.zeros(1),
            status=CGStatus.CONVERGED,
        )
        return result, np.zeros(n)

    # CG is exactly equivariant under b -> 2^-e b, x -> 2^-e x; rescale a problem whose b
    # and x0 are both so tiny or huge that r^T r would underflow or overflow (a normal-sized
    # x0 keeps the residual normal-sized, so then nothing is scaled).
    e = _power_of_two_exponent(b, x)
    if e:
        b = np.ldexp(b, -e)
        x = np.ldexp(x, -e)
        with np.errstate(over="ignore"):
            atol = float(np.ldexp(atol, -e))
        if callback is not None:
            user_callback = callback

            def callback(xk):
                return user_callback(np.ldexp(xk, e))

    tol = max(rtol * float(np.linalg.norm(b)), atol)
    x_start = x.copy()

    def run(x, guard=False, callback=None):
        log = _CGLog()
        if x.any():
            r = b - matvec(x)
            log.nmatvec += 1
        else:
            r = b.copy()
        nit = 0
        for xk, _, _ in _cg_iterations(matvec, x, r, psolve=psolve, tol=tol, maxiter=maxiter,
                                       log=log, guard=guard):
            nit += 1
            if callback is not None:
                callback(xk)
        return log, nit

    log, nit = run(x, callback=callback)
    if log.overflowed or not np.isfinite(x).all():
        # an iterate or its residual overflowed: replay the run (the same arithmetic, so
        # the same iterates for an operator that gives the same products) keeping each
        # x_k, and return the last one that is finite with a finite residual
        x = x_start
        log, nit = run(x, guard=True)

    # the true residual, recomputed from x
    if x.any():
        r_true = b - matvec(x)
        log.nmatvec += 1
    else:
        r_true = b.copy()
    residual_norm = float(np.linalg.norm(r_true))
    residual_norms = np.array(log.residual_norms)
    curvatures = np.array(log.curvatures)
    if e:
        with np.errstate(over="ignore", under="ignore"):  # diagnostics may leave the range
            residual_norm = float(np.ldexp(residual_norm, e))
            x = np.ldexp(x, e)
            r_true = np.ldexp(r_true, e)
            residual_norms = np.ldexp(residual_norms, e)
            curvatures = np.ldexp(np.ldexp(curvatures, e), e)
    status = log.status
    if not math.isfinite(residual_norm) and status is not CGStatus.NON_FINITE:
        status = CGStatus.NON_FINITE
    result = CGResult(
        x=x,
        nit=nit,
        nmatvec=log.nmatvec,
        residual_norm=residual_norm,
        residual_norms=residual_norms,
        status=status,
        curvatures=curvatures,
    )
    return result, r_true


def _power_of_two_exponent(b: np.ndarray, x0: np.ndarray) -> int:
    """``e`` such that ``2^-e max(|b_i|, |x0_i|)`` lies in ``[1/2, 1)``, or 0 in the safe range.

    It is 0 when ``max(|b_i|, |x0_i|)`` is inside ``[2^-256, 2^256]`` already: the squares
    of residuals CG forms then stay within ``2^±PRODUCT_EXPONENT``."""
    e = math.frexp(max(float(np.max(np.abs(b))), float(np.max(np.abs(x0)))))[1]
    return 0 if abs(e) <= PRODUCT_EXPONENT // 2 else e
