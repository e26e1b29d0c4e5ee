"""The trust-region outer loop (N&W Alg. 4.1), returning ``scipy.optimize.OptimizeResult``.

:func:`minimize` sees only a quadratic model ``m(p) = f + g^T p + 1/2 p^T H p``,
a subproblem solver that returns a step ``p`` with ``||p|| <= Delta`` and its
predicted decrease, the ratio ``rho`` of actual to predicted decrease, and the
radius rule. The subproblem is pluggable: Steihaug's truncated CG (the default,
matrix-free), the dense reference solvers, or any callable.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Callable

import autograd
import numpy as np
import scipy.sparse as sp
from scipy.optimize import OptimizeResult, OptimizeWarning
from scipy.sparse.linalg import LinearOperator

from trustregion._checks import (
    as_vector,
    autograd_error,
    check_symmetric,
    nonnegative_scalar,
    positive_scalar,
    real_scalar_output,
    scalar_option,
)
from trustregion.result import MinimizeStatus, SubproblemResult, SubproblemStatus
from trustregion.steihaug import steihaug
from trustregion.subproblem import cauchy_point, dogleg, exact

__all__ = ["minimize"]

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_SUBPROBLEMS = ("steihaug", "dogleg", "exact", "cauchy")
_LANCZOS_STEPS = 30  # Krylov steps of the negative-curvature check always taken (exact for n <= 30)
_LANCZOS_MAX_STEPS = 300  # and at most this many, until the smallest Ritz pair converges
_LANCZOS_MAX_ENTRIES = 1 << 24  # the basis V holds at most this many floats (128 MiB)
_PROBE_SEED = 0  # fixed start vector of that check, so every run is reproducible
_DENSE_EIGH_MAX_N = 500  # a dense hess up to this size is checked by a full eigendecomposition
_SCIPY_OPTIONS = ("disp", "return_all")  # passed by scipy.optimize.minimize, not used here


class _Counter:
    """Wrap ``fn`` and count its calls in ``self.calls``."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.calls = 0

    def __call__(self, *a):
        self.calls += 1
        return self.fn(*a)


def _scalar(value, name: str) -> float:
    return real_scalar_output(value, name)


def _gradient_vector(value, n: int) -> np.ndarray:
    g = np.asarray(value)
    if g.dtype.kind == "c":
        raise ValueError("the gradient must be real; got complex values")
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (n,):
        raise ValueError(f"the gradient must have shape ({n},) like x0; got shape {g.shape}")
    return g


def _lanczos_smallest(matvec: Callable, n: int, steps: int, max_steps: int | None = None):
    """Smallest Ritz pair of ``H`` by Lanczos with full reorthogonalisation.

    ``steps`` steps are always taken (unless the Krylov space is exhausted first); after
    them, up to ``max_steps`` in all, the iteration goes on until the smallest Ritz pair
    ``(theta, y)`` of the tridiagonal ``T_m`` has converged, ``|beta_m y_m| <= sqrt(eps)
    scale`` (the residual ``||H z - theta z||``), or certifies negative curvature,
    ``theta < -sqrt(eps) scale``.

    Returns ``(theta, z, scale, converged)``: ``theta = z^T H z`` for the unit Ritz
    vector ``z``, ``scale`` the largest Ritz value magnitude, and whether the pair
    converged (or the Krylov space was exhausted); ``None`` if a product was not finite.
    """
    max_steps = steps if max_steps is None else max(steps, max_steps)
    v = np.random.default_rng(_PROBE_SEED).standard_normal(n)
    v /= np.linalg.norm(v)
    V = np.zeros((n, steps))
    alpha, beta = [], []
    converged = False
    for j in range(max_steps):
        if j == V.shape[1]:  # grow the basis beyond the steps always taken
            V = np.hstack([V, np.zeros((n, min(max_steps, 2 * j) - j))])
        V[:, j] = v
        w = np.asarray(matvec(v), dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(w)):
            return None
        alpha.append(float(v @ w))
        basis = V[:, : j + 1]
        for _ in range(2):  # classical Gram-Schmidt twice: w orthogonal to all of V
            w = w - basis @ (basis.T @ w)
        b = float(np.linalg.norm(w))
        scale = max(abs(a) for a in alpha) + (max(beta) if beta else 0.0)
        if b <= n * _EPS * scale:
            converged = True  # Krylov space exhausted: an invariant subspace, exact Ritz pairs
            break
        if j == max_steps - 1:
            break
        if j + 1 >= steps:  # past the fixed steps: stop once the smallest pair has converged
            theta, Y = _ritz(alpha, beta)
            tol = np.sqrt(_EPS) * max(float(np.max(np.abs(theta))), _TINY)
            if b * abs(Y[-1, 0]) <= tol or theta[0] < -tol:
                converged = True
                break
        beta.append(b)
        v = w / b
    m = len(alpha)
    theta, Y = _ritz(alpha, beta[: m - 1])
    z = V[:, :m] @ Y[:, 0]
    z /= np.linalg.norm(z)
    return float(theta[0]), z, float(np.max(np.abs(theta))), converged


def _ritz(alpha, beta):
    """Eigenpairs of the symmetric tridiagonal matrix with diagonal ``alpha`` and
    off-diagonal ``beta`` (one shorter), ascending."""
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    return np.linalg.eigh(T)


def _smallest_curvature(H, n: int):
    """``(theta, z, scale, converged)`` for the check of negative curvature at a
    stationary point."""
    if isinstance(H, np.ndarray) and n <= _DENSE_EIGH_MAX_N:
        if not np.all(np.isfinite(H)):
            return None
        lam, Q = np.linalg.eigh(0.5 * (H + H.T))
        return float(lam[0]), Q[:, 0], float(np.max(np.abs(lam))), True
    budget = min(n, max(_LANCZOS_STEPS, min(_LANCZOS_MAX_STEPS, _LANCZOS_MAX_ENTRIES // n)))
    return _lanczos_smallest(lambda v: H @ v, n, min(n, _LANCZOS_STEPS), budget)


def _dense(H, n: int) -> np.ndarray:
    """``H`` as a symmetric dense array (``n`` products when ``H`` is an operator).

    Non-finite entries are kept; the caller checks them.
    """
    if isinstance(H, np.ndarray):
        D = H
    elif sp.issparse(H):
        D = H.toarray()
    else:
        D = np.column_stack([np.asarray(H @ e, dtype=np.float64).reshape(-1) for e in np.eye(n)])
    D = np.asarray(D, dtype=np.float64)
    return 0.5 * (D + D.T)


def _as_model_hessian(H, n: int):
    """The value returned by ``hess``: a dense array, sparse matrix or LinearOperator."""
    if isinstance(H, LinearOperator) or sp.issparse(H):
        if np.dtype(H.dtype).kind == "c":
            raise ValueError(f"hess must return a real matrix; got dtype {H.dtype}")
        if H.shape != (n, n):
            raise ValueError(f"hess must return an ({n}, {n}) matrix; got shape {H.shape}")
        return H
    H = np.asarray(H)
    if H.dtype.kind == "c":
        raise ValueError(f"hess must return a real matrix; got dtype {H.dtype}")
    H = np.asarray(H, dtype=np.float64)
    if H.shape != (n, n):
        raise ValueError(f"hess must return an ({n}, {n}) matrix; got shape {H.shape}")
    return H


def _operator(n: int, product: Callable, name: str) -> LinearOperator:
    """The symmetric ``LinearOperator`` ``v -> product(v)`` on flat float64 vectors.

    A product of the wrong size or with complex values is reported by ``name``.
    """

    def matvec(v):
        Hv = np.asarray(product(np.asarray(v, dtype=np.float64).reshape(-1)))
        if Hv.dtype.kind == "c" or Hv.size != n:
            what = "complex values" if Hv.dtype.kind == "c" else f"an array of shape {Hv.shape}"
            raise ValueError(f"{name} returned {what} for a vector p of length {n}; it must "
                             f"return the real vector H(x) p of shape ({n},)")
        return np.asarray(Hv, float).reshape(-1)

    return LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)


def _callback_style(callback):
    if callback is None:
        return None
    if not callable(callback):
        raise ValueError(f"callback must be callable or None; got {type(callback).__name__}")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return "x"
    return "intermediate_result" if params == {"intermediate_result"} else "x"


def minimize(
    fun: Callable,
    x0,
    *,
    args=(),
    jac=None,
    hess=None,
    hessp=None,
    subproblem="steihaug",
    initial_radius: float = 1.0,
    max_radius: float = 1000.0,
    eta: float = 0.15,
    gtol: float | None = None,
    maxiter: int | None = None,
    callback: Callable | None = None,
    bounds=None,
    constraints=(),
    tol: float | None = None,
    **options,
) -> OptimizeResult:
    """Minimise a smooth function by the trust-region method (N&W Alg. 4.1).

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``. With ``jac=None`` it must be traceable by
        autograd (written with ``autograd.numpy``).
    x0 : array_like, shape (n,)
        Finite starting point (never modified).
    args : tuple, optional
        Extra arguments passed to ``fun``, ``jac``, ``hess`` and ``hessp``.
    jac : callable, True or None, optional
        ``jac(x, *args) -> (n,)`` gradient; ``True`` if ``fun`` returns
        ``(f, g)``; ``None`` (default) to differentiate ``fun`` with autograd.
    hess : callable, optional
        ``hess(x, *args)`` returning an ``(n, n)`` array, sparse matrix or
        ``LinearOperator``. Takes precedence over ``hessp``.
    hessp : callable, optional
        ``hessp(x, p, *args) -> H(x) p``. If neither ``hess`` nor ``hessp`` is
        given, Hessian-vector products come from autograd (a reverse pass
        through ``jac`` if it is callable, through the gradient ``fun`` returns
        if ``jac=True``, else through ``grad fun``); no dense Hessian is formed.
    subproblem : {"steihaug", "dogleg", "exact", "cauchy"} or callable, optional
        Solver of the trust-region subproblem: :func:`trustregion.steihaug`
        (default, matrix-free), :func:`trustregion.dogleg`,
        :func:`trustregion.exact`, :func:`trustregion.cauchy_point`, or any
        ``callable(g, H, radius) -> SubproblemResult``. The dense solvers form
        ``H`` densely (``n`` Hessian-vector products when it is matrix-free).
        Where ``H`` is not positive definite the dogleg step is undefined and
        the Cauchy point is taken instead (counted in ``ncauchy_fallbacks``).
    initial_radius : float, optional
        ``Delta_0 > 0``.
    max_radius : float, optional
        ``Delta_max >= Delta_0``, the cap of the radius.
    eta : float, optional
        Acceptance threshold, ``0 <= eta < 1/4``: a step is taken when
        ``rho > eta``.
    gtol : float, optional
        Stop when ``||g||_2 <= gtol`` and no negative curvature is found (see
        Notes). Default ``tol`` if given, else ``1e-5``.
    maxiter : int, optional
        Maximum number of iterations (accepted and rejected trial steps);
        default ``200 n`` as in ``scipy.optimize``.
    callback : callable, optional
        Called after every iteration as ``callback(xk)``, or as
        ``callback(intermediate_result=OptimizeResult)`` if that is its only
        parameter (``x``, ``fun``, ``jac``, ``nit``, ``radius``). Raising
        ``StopIteration`` ends the run with ``status`` ``CALLBACK_STOP`` (4;
        scipy's own methods report 99 for the same event: the codes are those of
        :class:`~trustregion.result.MinimizeStatus`).
    bounds, constraints
        Accepted for ``scipy.optimize.minimize(method=minimize)``; this method
        is unconstrained, so anything but ``None`` / empty raises ``ValueError``.
    tol : float, optional
        Used as ``gtol`` when ``gtol`` is not given (``scipy.optimize.minimize``
        passes its ``tol`` here; an explicit ``gtol`` option wins, as in scipy).
    **options
        ``return_all=True`` adds ``allvecs``, the iterate after every iteration
        (``x0`` first), as scipy's trust-region methods do; ``disp`` is accepted
        and ignored; any other key warns with ``OptimizeWarning``.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (the last accepted point), ``fun``, ``jac`` (gradient at ``x``),
        ``nit``, ``nfev`` (calls of ``fun`` for values), ``njev`` (gradient
        evaluations), ``nhev`` (calls of ``hess``, or Hessian-vector products
        with ``hessp`` / autograd), ``status`` (the ``int`` code of a
        :class:`~trustregion.result.MinimizeStatus`), ``success``,
        ``message``; and ``radius`` (final ``Delta``), ``nhits_boundary``
        (steps that reached the boundary), ``nrejected`` (rejected trial steps),
        ``nsubiter`` (total subproblem iterations), ``nsaddle_steps`` (steps
        along negative curvature found by the stationary-point check),
        ``ncauchy_fallbacks``, ``min_curvature`` (the smallest curvature
        ``z^T H z`` found by that check at ``x``, or None if it was not run) and
        ``min_curvature_converged`` (whether that estimate converged; when it did
        not, the message says that a saddle point cannot be ruled out).

    Raises
    ------
    ValueError
        Before any iteration: ``x0`` not a finite 1-D vector, ``fun(x0)`` or the
        gradient at ``x0`` not finite or of the wrong shape, autograd unable to
        differentiate ``fun`` (with ``jac=None``), ``initial_radius <= 0``,
        ``max_radius < initial_radius``, ``eta`` outside ``[0, 1/4)``,
        ``gtol < 0``, ``maxiter < 0``, an unknown ``subproblem``, non-callable
        ``jac`` / ``hess`` / ``hessp`` / ``callback``, or bounds / constraints.

    Notes
    -----
    Iteration ``k`` (N&W Alg. 4.1): solve the subproblem (N&W eq. 4.3)

    .. math::

        p_k \\approx \\arg\\min_{\\|p\\| \\le \\Delta_k}
        m_k(p) = f_k + g_k^T p + \\tfrac12 p^T H_k p ,

    form the ratio of actual to predicted reduction (N&W eq. 4.4)

    .. math::

        \\rho_k = \\frac{f(x_k) - f(x_k + p_k)}{m_k(0) - m_k(p_k)} ,

    and update the radius

    * ``rho_k < 1/4``: ``Delta_{k+1} = 1/4 Delta_k``;
    * ``rho_k > 3/4`` and ``||p_k|| = Delta_k``: ``Delta_{k+1} = min(2 Delta_k, Delta_max)``;
    * otherwise ``Delta_{k+1} = Delta_k``;

    and take the step, ``x_{k+1} = x_k + p_k``, if ``rho_k > eta``.

    Near a minimiser both reductions in eq. (4.4) fall to the rounding level
    of ``f`` and their computed ratio is noise, which would reject good steps
    and collapse the radius. As recommended by Conn, Gould and Toint (§17.4),
    the ratio is computed as

    .. math::

        \\rho_k = \\frac{f(x_k) - f(x_k + p_k) + \\delta_k}{m_k(0) - m_k(p_k) + \\delta_k},
        \\qquad \\delta_k = 10\\, \\varepsilon \\max(1, |f(x_k)|),

    which equals eq. (4.4) to relative accuracy ``delta_k / pred`` whenever
    the predicted reduction is well above rounding, and tends to 1 when both
    reductions are at rounding level. An accepted step therefore satisfies
    ``f(x_{k+1}) < f(x_k) + delta_k``: the iterates decrease ``f`` up to
    rounding.

    Robustness beyond Alg. 4.1:

    * A trial point where ``f`` or the gradient is NaN or infinite, or where
      the subproblem predicts no decrease, gets ``rho_k = -inf``: it is
      rejected and the radius shrinks to ``1/4 min(Delta_k, ||p_k||)``, below
      the failed step, so that an interior step into a region where ``f`` is
      undefined is not proposed again. The run never stalls on, or returns,
      such a point.
    * **Second-order check at stationary points.** ``||g|| <= gtol`` alone
      also holds at a saddle point or maximiser, where a truncated-CG
      subproblem started from ``g ~ 0`` sees nothing. So before reporting
      success the smallest curvature of ``H`` is estimated: by
      :func:`numpy.linalg.eigh` when ``hess`` returns a dense array with
      ``n <= 500``, otherwise by Lanczos with full reorthogonalisation from a
      fixed pseudo-random start vector: ``min(n, 30)`` steps, then more (up to
      300, fewer when ``n`` is so large that the basis would exceed 2^24
      numbers) until the smallest Ritz pair's residual ``||H z - theta z||``
      is below ``sqrt(eps) max|theta_i|``. For ``n <= 30`` the Krylov space
      then contains every eigenspace the start vector is not orthogonal to,
      so the smallest eigenvalue is found with probability one; a Ritz value
      is a Rayleigh quotient, so a negative one certifies negative curvature.
      An estimate that has not converged when the budget runs out is
      reported (``min_curvature_converged``, and in the message). If
      ``theta = z^T H z < -sqrt(eps) * max|theta_i|`` the iteration continues
      with the step ``p = +-Delta z`` (sign making ``g^T p <= 0``) and predicted
      decrease ``-(g^T p + theta Delta^2 / 2)`` -- the exact subproblem's
      hard-case step -- instead of stopping; otherwise it stops with success.
    * ``Delta_k < eps ||x_k||`` ends the run with ``RADIUS_COLLAPSED``;
      a non-finite Hessian (or subproblem step) at an accepted point with
      ``NON_FINITE``.

    Counting: ``nfev`` counts only evaluations of ``fun`` for values. With
    ``jac=None`` autograd calls ``fun`` once more inside each gradient
    evaluation; those are counted in ``njev``.

    With ``scipy.optimize.minimize(fun, x0, method=minimize, jac=..., hessp=...)``
    scipy calls this function as ``minimize(fun, x0, args=args, jac=jac,
    hess=hess, hessp=hessp, bounds=bounds, constraints=constraints,
    callback=callback, **options)``.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, Ch. 4, Alg. 4.1.
    .. [2] A. R. Conn, N. I. M. Gould and Ph. L. Toint, *Trust-Region Methods*,
       SIAM, 2000, Ch. 6 and §17.4.
    .. [3] T. Steihaug, "The conjugate gradient method and trust regions in
       large scale optimization", *SIAM J. Numer. Anal.* 20(3):626-637, 1983.

    Examples
    --------
    >>> import autograd.numpy as anp
    >>> import trustregion as tr
    >>> def rosen(x):
    ...     return anp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    >>> res = tr.minimize(rosen, [-1.2, 1.0])
    >>> res.success, [round(float(v), 6) for v in res.x]
    (True, [1.0, 1.0])

    A saddle point is not mistaken for a minimiser:

    >>> saddle = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4
    >>> res = tr.minimize(saddle, [0.0, 0.0])
    >>> res.success, round(abs(float(res.x[1])), 6), res.nsaddle_steps >= 1
    (True, 0.707107, True)

    Through ``scipy.optimize.minimize``:

    >>> import scipy.optimize
    >>> res = scipy.optimize.minimize(rosen, [-1.2, 1.0], method=tr.minimize)
    >>> res.success
    True
    """
    # ---- validation, before any work ---------------------------------------------------
    if not callable(fun):
        raise ValueError(f"fun must be callable; got {type(fun).__name__}")
    x0 = as_vector(np.atleast_1d(x0) if np.ndim(x0) == 0 else x0, "x0")  # scipy: atleast_1d
    n = x0.shape[0]
    if n == 0:
        raise ValueError("x0 must have at least one entry; got an empty vector")
    if not isinstance(args, tuple):
        args = (args,)
    if bounds is not None:
        raise ValueError(
            "bounds are not supported: trustregion.minimize is unconstrained "
            "(use method='trust-constr' or 'L-BFGS-B' for bounds)"
        )
    if constraints is not None and not (isinstance(constraints, (list, tuple, dict))
                                        and not constraints):
        raise ValueError(
            "constraints are not supported: trustregion.minimize is unconstrained "
            "(use method='trust-constr' or 'SLSQP' for constraints)"
        )
    return_all = bool(options.get("return_all", False))
    unknown = sorted(set(options) - set(_SCIPY_OPTIONS))
    if unknown:
        warnings.warn(
            f"Unknown solver options: {', '.join(unknown)}", OptimizeWarning, stacklevel=2
        )
    if not (jac is None or jac is True or callable(jac)):
        raise ValueError(f"jac must be None, True or a callable; got {jac!r}")
    if hess is not None and not callable(hess):
        raise ValueError(f"hess must be a callable hess(x, *args) or None; got {hess!r}")
    if hessp is not None and not callable(hessp):
        raise ValueError(f"hessp must be a callable hessp(x, p, *args) or None; got {hessp!r}")
    if isinstance(subproblem, str):
        if subproblem not in _SUBPROBLEMS:
            raise ValueError(
                f"subproblem must be one of {_SUBPROBLEMS} or a callable(g, H, radius); "
                f"got {subproblem!r}"
            )
    elif not callable(subproblem):
        raise ValueError(f"subproblem must be a string or a callable; got {subproblem!r}")
    Delta = positive_scalar(initial_radius, "initial_radius")
    max_radius = positive_scalar(max_radius, "max_radius")
    if max_radius < Delta:
        raise ValueError(
            f"max_radius must be >= initial_radius; got max_radius={max_radius} < "
            f"initial_radius={Delta}"
        )
    eta, maxiter = scalar_option(eta), scalar_option(maxiter)
    if not isinstance(eta, numbers.Real) or isinstance(eta, bool) or not 0.0 <= eta < 0.25:
        raise ValueError(f"eta must be a real number in [0, 0.25) (N&W Alg. 4.1); got {eta!r}")
    eta = float(eta)
    if gtol is not None or tol is None:
        gtol = nonnegative_scalar(1e-5 if gtol is None else gtol, "gtol")
    else:
        gtol = nonnegative_scalar(tol, "tol")
    if maxiter is None:
        maxiter = 200 * n
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 0:
        raise ValueError(f"maxiter must be an integer >= 0 or None; got {maxiter!r}")
    callback_style = _callback_style(callback)

    # ---- counted evaluations ------------------------------------------------------------
    nfev = njev = 0
    hess_fn = _Counter(hess) if hess is not None else None
    hessp_fn = _Counter(hessp) if hessp is not None else None
    hvp_count = _Counter(lambda product, v: product(v))  # autograd Hessian-vector products
    memo = {}  # jac=True: the gradient returned with the last value

    def value(x):
        nonlocal nfev
        nfev += 1
        out = fun(x, *args)
        if jac is True:
            out, grad_value = out
            memo["x"], memo["g"] = x.copy(), grad_value
        return _scalar(out, "fun")

    scalar_fun = (lambda x: fun(x, *args)[0]) if jac is True else (lambda x: fun(x, *args))
    autograd_hessian = hess is None and hessp is None

    def derivatives(x):
        """``(g, H)`` at ``x``; ``H`` is built lazily by ``hessian(x, state)``."""
        nonlocal njev
        njev += 1
        state = {}
        if autograd_hessian:
            # Pearlmutter: H v is the vector-Jacobian product of the gradient map. A gradient
            # that does not depend on x (a linear fun) has H = 0, which autograd computes
            # correctly but announces with a warning at every iterate: silence that one
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Output seems independent of input",
                                        UserWarning)
                if callable(jac):
                    vjp, g = autograd.make_vjp(lambda y: jac(y, *args))(x)
                elif jac is True:  # the gradient fun returns, differentiated once more
                    vjp, g = autograd.make_vjp(lambda y: fun(y, *args)[1])(x)
                else:
                    vjp, g = autograd.make_hvp(scalar_fun)(x)
            state["product"] = vjp
        elif callable(jac):
            g = jac(x, *args)
        elif jac is True:
            if "x" not in memo or not np.array_equal(memo["x"], x):
                value(x)  # fun returns (f, g); its call is counted in nfev
            g = memo["g"]
        else:
            g = autograd.grad(scalar_fun)(x)
        return g, state

    def hessian(x, state):
        if "H" not in state:
            x = x.copy()  # the user's functions never see the iterate itself
            if hess_fn is not None:
                state["H"] = _as_model_hessian(hess_fn(x, *args), n)
            elif hessp_fn is not None:
                state["H"] = _operator(n, lambda v: hessp_fn(x, v, *args), "hessp")
            else:
                product = state["product"]
                state["H"] = _operator(n, lambda v: hvp_count(product, v),
                                       "the autograd Hessian-vector product")
        return state["H"]

    # ---- the starting point ----------------------------------------------------------------
    x = x0.copy()
    f = value(x.copy())
    if not np.isfinite(f):
        raise ValueError(f"fun(x0) = {f} is not finite; start from a point where fun is finite")
    try:
        g, state = derivatives(x.copy())
    except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
        if jac is None or autograd_hessian:
            raise autograd_error(
                "fun (jac=None) or jac (for Hessian-vector products)",
                "pass jac= and hessp= explicitly",
            ) from exc
        raise
    g = _gradient_vector(g, n)
    if not np.all(np.isfinite(g)):
        raise ValueError("the gradient at x0 is not finite; start from a point where it is")

    # ---- N&W Alg. 4.1 ---------------------------------------------------------------------
    solve = _subproblem_solver(subproblem, n)
    counts = {
        "nhits_boundary": 0,
        "nrejected": 0,
        "nsubiter": 0,
        "nsaddle_steps": 0,
        "ncauchy_fallbacks": 0,
    }
    probe = None  # (theta, z, scale, converged) of the second-order check at the current x
    allvecs = [x.copy()] if return_all else None
    status = MinimizeStatus.MAX_ITERATIONS
    nit = 0
    while True:
        gnorm = float(np.linalg.norm(g))
        sub = None
        if gnorm <= gtol:
            # second-order check: stop only if no negative curvature is found
            if probe is None:
                probe = _smallest_curvature(hessian(x, state), n)
                if probe is None:
                    status = MinimizeStatus.NON_FINITE
                    break
            theta, z, scale, _converged = probe
            if not theta < -np.sqrt(_EPS) * scale:
                status = MinimizeStatus.CONVERGED
                break
        if nit >= maxiter:
            status = MinimizeStatus.MAX_ITERATIONS
            break
        if Delta < _EPS * np.linalg.norm(x) or Delta < _TINY:
            status = MinimizeStatus.RADIUS_COLLAPSED
            break
        nit += 1

        if gnorm <= gtol:
            # step of the exact subproblem's hard case along z (N&W eq. 4.45)
            p = Delta * z if g @ z <= 0.0 else -Delta * z
            sub = SubproblemResult(
                p=p,
                hits_boundary=True,
                status=SubproblemStatus.NEGATIVE_CURVATURE,
                nit=0,
                model_decrease=float(-(g @ p) - 0.5 * theta * Delta * Delta),
            )
            counts["nsaddle_steps"] += 1
        else:
            H = hessian(x, state)
            if not isinstance(H, LinearOperator) and not np.all(np.isfinite(_data(H))):
                status = MinimizeStatus.NON_FINITE
                break
            sub, fallback = solve(g, H, Delta)
            counts["ncauchy_fallbacks"] += fallback
        counts["nsubiter"] += int(sub.nit)
        p = np.asarray(sub.p, dtype=np.float64).reshape(-1)
        finite = p.shape == (n,) and np.all(np.isfinite(p))
        if not finite or sub.status == SubproblemStatus.NON_FINITE:
            status = MinimizeStatus.NON_FINITE
            break
        predicted = float(sub.model_decrease)
        pnorm = float(np.linalg.norm(p))

        # rho_k, N&W eq. (4.4); a non-finite trial value or no predicted decrease: rho = -inf
        rho = -np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            x_trial = x + p
        if predicted > 0.0 and np.isfinite(predicted) and np.all(np.isfinite(x_trial)):
            f_trial = value(x_trial.copy())
            if np.isfinite(f_trial):
                # eq. (4.4) with the rounding allowance delta of Conn, Gould & Toint §17.4
                delta = 10.0 * _EPS * max(1.0, abs(f))
                rho = ((f - f_trial) + delta) / (predicted + delta)
        if rho > eta:
            g_trial, state_trial = derivatives(x_trial.copy())
            g_trial = _gradient_vector(g_trial, n)
            if not np.all(np.isfinite(g_trial)):
                rho = -np.inf  # the gradient is unusable there: reject as well

        # radius rule, N&W Alg. 4.1
        if rho == -np.inf and pnorm > 0.0:
            Delta = 0.25 * min(Delta, pnorm)  # unusable trial point: shrink below the step
        elif rho < 0.25:
            Delta = 0.25 * Delta
        elif rho > 0.75 and sub.hits_boundary:
            Delta = min(2.0 * Delta, max_radius)
        counts["nhits_boundary"] += bool(sub.hits_boundary)
        if rho > eta:
            x, f, g, state, probe = x_trial, f_trial, g_trial, state_trial, None
        else:
            counts["nrejected"] += 1
        if return_all:
            allvecs.append(x.copy())

        if callback_style is not None:
            try:
                if callback_style == "intermediate_result":
                    callback(
                        intermediate_result=OptimizeResult(
                            x=x.copy(), fun=f, jac=g.copy(), nit=nit, radius=Delta
                        )
                    )
                else:
                    callback(x.copy())
            except StopIteration:
                status = MinimizeStatus.CALLBACK_STOP
                break

    nhev = (
        hess_fn.calls
        if hess_fn is not None
        else hessp_fn.calls
        if hessp_fn is not None
        else hvp_count.calls
    )
    message = status.message
    if status is MinimizeStatus.CONVERGED and probe is not None and not probe[3]:
        message += (" The negative-curvature check's Lanczos estimate of the smallest "
                    f"curvature ({probe[0]:.3g}) had not converged when its step budget ran "
                    "out: a saddle point cannot be ruled out.")
    result = OptimizeResult(
        x=x,
        fun=f,
        jac=g,
        nit=nit,
        nfev=nfev,
        njev=njev,
        nhev=nhev,
        status=int(status),
        success=bool(status.success),
        message=message,
        radius=Delta,
        min_curvature=None if probe is None else probe[0],
        min_curvature_converged=None if probe is None else bool(probe[3]),
        **counts,
    )
    if return_all:
        result["allvecs"] = allvecs
    return result


def _data(H):
    return H.data if sp.issparse(H) else H


def _non_finite(n: int) -> SubproblemResult:
    return SubproblemResult(
        p=np.zeros(n),
        hits_boundary=False,
        status=SubproblemStatus.NON_FINITE,
        nit=0,
        model_decrease=0.0,
    )


def _subproblem_solver(subproblem, n: int):
    """``solve(g, H, Delta) -> (SubproblemResult, used_cauchy_fallback)``."""
    if callable(subproblem):

        def solve(g, H, Delta):
            res = subproblem(g, H, Delta)
            if not isinstance(res, SubproblemResult):
                raise TypeError(
                    "the subproblem callable must return a SubproblemResult; "
                    f"got {type(res).__name__}"
                )
            return res, False

        return solve
    if subproblem == "steihaug":

        def solve_steihaug(g, H, Delta):
            if isinstance(H, np.ndarray):
                check_symmetric(H, "hess(x)")  # as steihaug checks a dense H, but named here
            return steihaug(g, H, Delta), False

        return solve_steihaug
    if subproblem == "exact":

        def solve_exact(g, H, Delta):
            D = _dense(H, n)
            return (exact(g, D, Delta) if np.all(np.isfinite(D)) else _non_finite(n)), False

        return solve_exact
    if subproblem == "cauchy":

        def solve_cauchy(g, H, Delta):
            D = _dense(H, n)
            return (cauchy_point(g, D, Delta) if np.all(np.isfinite(D)) else _non_finite(n)), False

        return solve_cauchy

    def solve_dogleg(g, H, Delta):
        D = _dense(H, n)
        if not np.all(np.isfinite(D)):
            return _non_finite(n), False
        try:
            np.linalg.cholesky(D)
        except np.linalg.LinAlgError:
            return cauchy_point(g, D, Delta), True  # dogleg undefined for H not positive definite
        return dogleg(g, D, Delta), False

    return solve_dogleg
