"""The trust-region outer loop (N&W Alg. 4.1), returning ``scipy.optimize.OptimizeResult``.

The parts, as in scipy's ``_trustregion.py``, each read like its piece of the algorithm:

* the **objective** (:class:`_Objective`): ``f``, its gradient and its Hessian as the caller
  gave them (or by autograd), every evaluation counted;
* the **model** (:class:`_QuadraticModel`): ``m(p) = f + g^T p + 1/2 p^T H p`` at a point,
  its second-order check (the smallest curvature of ``H``), the saddle step, and the ratio
  ``rho`` of actual to predicted decrease of a trial step;
* the **subproblem** (:func:`_subproblem_solver`): a step ``p`` with ``||p|| <= Delta`` and
  its predicted decrease. It is pluggable: Steihaug's truncated CG (the default,
  matrix-free), the dense reference solvers, or any callable;
* the **loop** (:func:`minimize`): N&W Alg. 4.1, which sees only the model, the subproblem,
  ``rho`` and the radius rule (:func:`_next_radius`).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Callable
from typing import NamedTuple

import autograd
import numpy as np
import scipy.sparse as sp
from scipy.optimize import OptimizeResult, OptimizeWarning
from scipy.sparse.linalg import LinearOperator

from trustregion._checks import (
    as_vector,
    autograd_error,
    check_symmetric,
    checked_product,
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


# --------------------------------------------------------------- the arguments
class _Settings(NamedTuple):
    """The checked arguments of :func:`minimize`."""

    x0: np.ndarray
    args: tuple
    initial_radius: float
    max_radius: float
    eta: float
    gtol: float
    maxiter: int
    return_all: bool
    callback_style: str | None


def _checked_settings(fun, x0, args, jac, hess, hessp, subproblem, initial_radius, max_radius,
                      eta, gtol, maxiter, callback, bounds, constraints, tol,
                      options) -> _Settings:
    """Check every argument of :func:`minimize` before any work; ``ValueError`` naming it."""
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
    if unknown:  # stacklevel 3: the caller of minimize
        warnings.warn(
            f"Unknown solver options: {', '.join(unknown)}", OptimizeWarning, stacklevel=3
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
    return _Settings(x0, args, Delta, max_radius, eta, gtol, maxiter, return_all,
                     _callback_style(callback))


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


def _gradient_vector(value, n: int) -> np.ndarray:
    g = np.asarray(value)
    if g.dtype.kind == "c":
        raise ValueError("the gradient must be real; got complex values")
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (n,):
        raise ValueError(f"the gradient must have shape ({n},) like x0; got shape {g.shape}")
    return g


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
        Hv = checked_product(product(np.asarray(v, dtype=np.float64).reshape(-1)), name, n)
        return np.asarray(Hv, float).reshape(-1)

    return LinearOperator((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)


# --------------------------------------------------------------- the objective
class _Counter:
    """Wrap ``fn`` and count its calls in ``self.calls``."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.calls = 0

    def __call__(self, *a):
        self.calls += 1
        return self.fn(*a)


class _Objective:
    """``fun``, its gradient and its Hessian as the caller gave them, each call counted
    (``nfev``, ``njev``, ``nhev``) as scipy counts them.

    The gradient comes from ``jac`` (a callable, or ``True``: returned with the value) or
    autograd; the Hessian from ``hess``, ``hessp`` or, with neither, autograd's
    Hessian-vector products (Pearlmutter's identity), never formed densely.
    """

    def __init__(self, fun, args, jac, hess, hessp, n: int):
        self.fun, self.args, self.jac, self.n = fun, args, jac, n
        self.nfev = self.njev = 0
        self.hess = _Counter(hess) if hess is not None else None
        self.hessp = _Counter(hessp) if hessp is not None else None
        self.hvp_count = _Counter(lambda product, v: product(v))  # autograd products
        self.memo = {}  # jac=True: the gradient returned with the last value
        self.autograd_hessian = hess is None and hessp is None
        self.scalar_fun = ((lambda x: fun(x, *args)[0]) if jac is True
                           else (lambda x: fun(x, *args)))

    @property
    def nhev(self) -> int:
        """Calls of ``hess``, or Hessian-vector products (``hessp`` or autograd)."""
        if self.hess is not None:
            return self.hess.calls
        return self.hessp.calls if self.hessp is not None else self.hvp_count.calls

    def value(self, x) -> float:
        """``f(x)``, counted in ``nfev``."""
        self.nfev += 1
        out = self.fun(x, *self.args)
        if self.jac is True:
            out, grad_value = out
            self.memo["x"], self.memo["g"] = x.copy(), grad_value
        return real_scalar_output(out, "fun")

    def derivatives(self, x):
        """``(g, state)`` at ``x``, counted in ``njev``; ``H`` is built lazily from
        ``state`` by :meth:`hessian`."""
        fun, args, jac = self.fun, self.args, self.jac
        self.njev += 1
        state = {}
        if self.autograd_hessian:
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
                    vjp, g = autograd.make_hvp(self.scalar_fun)(x)
            state["product"] = vjp
        elif callable(jac):
            g = jac(x, *args)
        elif jac is True:
            memo = self.memo
            if "x" not in memo or not np.array_equal(memo["x"], x):
                self.value(x)  # fun returns (f, g); its call is counted in nfev
            g = memo["g"]
        else:
            g = autograd.grad(self.scalar_fun)(x)
        return g, state

    def hessian(self, x, state):
        """``H(x)``: ``hess``'s matrix, or an operator of ``hessp`` or autograd products;
        formed once per point (kept in ``state``)."""
        if "H" not in state:
            x = x.copy()  # the user's functions never see the iterate itself
            n, args = self.n, self.args
            if self.hess is not None:
                state["H"] = _as_model_hessian(self.hess(x, *args), n)
            elif self.hessp is not None:
                hessp = self.hessp
                state["H"] = _operator(n, lambda v: hessp(x, v, *args), "hessp")
            else:
                product, hvp_count = state["product"], self.hvp_count
                state["H"] = _operator(n, lambda v: hvp_count(product, v),
                                       "the autograd Hessian-vector product")
        return state["H"]

    def model_at_start(self, x0) -> _QuadraticModel:
        """The model at ``x0``, or ``ValueError`` if ``f`` or ``g`` is not finite there or
        autograd cannot differentiate ``fun``."""
        x = x0.copy()
        f = self.value(x.copy())
        if not np.isfinite(f):
            raise ValueError(f"fun(x0) = {f} is not finite; start from a point where fun is "
                             "finite")
        try:
            g, state = self.derivatives(x.copy())
        except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
            if self.jac is None or self.autograd_hessian:
                raise autograd_error(
                    "fun (jac=None) or jac (for Hessian-vector products)",
                    "pass jac= and hessp= explicitly",
                ) from exc
            raise
        g = _gradient_vector(g, self.n)
        if not np.all(np.isfinite(g)):
            raise ValueError("the gradient at x0 is not finite; start from a point where it is")
        return _QuadraticModel(self, x, f, g, state)


# ------------------------------------------------------------------- the model
class _QuadraticModel:
    """``m(p) = f + g^T p + 1/2 p^T H p`` at a point ``x`` (N&W eq. 4.3).

    ``H`` is formed when first asked for, and the second-order check at ``x`` (the
    smallest curvature of ``H``) is run at most once.
    """

    def __init__(self, objective: _Objective, x, f: float, g, state: dict):
        self.objective, self.x, self.f, self.g, self.state = objective, x, f, g, state
        self.gnorm = float(np.linalg.norm(g))
        self.curvature = None  # (theta, z, scale, converged) of the check, once it ran

    @property
    def H(self):
        """The model Hessian: an array, a sparse matrix or a ``LinearOperator``."""
        return self.objective.hessian(self.x, self.state)

    def smallest_curvature(self):
        """``(theta, z, scale, converged)``: the smallest curvature ``theta = z^T H z`` of
        the model and its unit direction ``z`` (see :func:`minimize`'s Notes); ``None`` if a
        Hessian value or product is not finite."""
        if self.curvature is None:
            self.curvature = _smallest_curvature(self.H, self.x.shape[0])
        return self.curvature

    def negative_curvature(self) -> bool:
        """Whether the check certifies ``theta < -sqrt(eps) max|theta_i|``."""
        theta, _z, scale, _converged = self.curvature
        return theta < -np.sqrt(_EPS) * scale

    def saddle_step(self, Delta: float) -> SubproblemResult:
        """The exact subproblem's hard-case step ``p = ±Delta z`` along the direction of
        negative curvature, with ``g^T p <= 0`` (N&W eq. 4.45)."""
        theta, z, _scale, _converged = self.curvature
        g = self.g
        p = Delta * z if g @ z <= 0.0 else -Delta * z
        return SubproblemResult(
            p=p,
            hits_boundary=True,
            status=SubproblemStatus.NEGATIVE_CURVATURE,
            nit=0,
            model_decrease=float(-(g @ p) - 0.5 * theta * Delta * Delta),
        )

    def trial(self, p, predicted: float, eta: float):
        """``(rho, model at x + p)`` for the step ``p`` predicted to decrease ``m`` by
        ``predicted``; the model is ``None`` unless ``rho > eta`` (the step is taken).

        ``rho`` is N&W eq. (4.4) with the rounding allowance of Conn, Gould & Toint §17.4;
        a trial point where ``f`` or the gradient is not finite, or no predicted decrease,
        gets ``rho = -inf``.
        """
        rho = -np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            x_trial = self.x + p
        if predicted > 0.0 and np.isfinite(predicted) and np.all(np.isfinite(x_trial)):
            f_trial = self.objective.value(x_trial.copy())
            if np.isfinite(f_trial):
                delta = 10.0 * _EPS * max(1.0, abs(self.f))
                rho = ((self.f - f_trial) + delta) / (predicted + delta)
        if not rho > eta:
            return rho, None
        g_trial, state_trial = self.objective.derivatives(x_trial.copy())
        g_trial = _gradient_vector(g_trial, self.objective.n)
        if not np.all(np.isfinite(g_trial)):
            return -np.inf, None  # the gradient is unusable there: reject as well
        return rho, _QuadraticModel(self.objective, x_trial, f_trial, g_trial, state_trial)


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


# -------------------------------------------------------------- the subproblem
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


# ------------------------------------------------------ the loop, N&W Alg. 4.1
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
    s = _checked_settings(fun, x0, args, jac, hess, hessp, subproblem, initial_radius,
                          max_radius, eta, gtol, maxiter, callback, bounds, constraints, tol,
                          options)
    n = s.x0.shape[0]
    objective = _Objective(fun, s.args, jac, hess, hessp, n)
    model = objective.model_at_start(s.x0)
    solve = _subproblem_solver(subproblem, n)
    Delta = s.initial_radius
    counts = {
        "nhits_boundary": 0,
        "nrejected": 0,
        "nsubiter": 0,
        "nsaddle_steps": 0,
        "ncauchy_fallbacks": 0,
    }
    allvecs = [model.x.copy()] if s.return_all else None
    nit = 0
    # ---- N&W Alg. 4.1 ---------------------------------------------------------------------
    while True:
        status = _stopping_status(model, s.gtol, nit, s.maxiter, Delta)
        if status is not None:
            break
        nit += 1

        # p_k, an approximate solution of the subproblem (N&W eq. 4.3)
        if model.gnorm <= s.gtol:  # stationary, with negative curvature: leave the saddle
            sub = model.saddle_step(Delta)
            counts["nsaddle_steps"] += 1
        else:
            H = model.H
            if not isinstance(H, LinearOperator) and not np.all(np.isfinite(_data(H))):
                status = MinimizeStatus.NON_FINITE
                break
            sub, fallback = solve(model.g, H, Delta)
            counts["ncauchy_fallbacks"] += fallback
        counts["nsubiter"] += int(sub.nit)
        p = np.asarray(sub.p, dtype=np.float64).reshape(-1)
        if p.shape != (n,) or not np.all(np.isfinite(p)) or \
                sub.status == SubproblemStatus.NON_FINITE:
            status = MinimizeStatus.NON_FINITE
            break

        # rho_k (N&W eq. 4.4), the radius rule, and the step taken if rho_k > eta
        rho, trial = model.trial(p, float(sub.model_decrease), s.eta)
        Delta = _next_radius(Delta, rho, float(np.linalg.norm(p)), sub.hits_boundary,
                             s.max_radius)
        counts["nhits_boundary"] += bool(sub.hits_boundary)
        if trial is not None:
            model = trial
        else:
            counts["nrejected"] += 1
        if s.return_all:
            allvecs.append(model.x.copy())
        if _callback_stops(callback, s.callback_style, model, nit, Delta):
            status = MinimizeStatus.CALLBACK_STOP
            break
    return _result(objective, model, status, nit, Delta, counts, allvecs)


def _stopping_status(model: _QuadraticModel, gtol: float, nit: int, maxiter: int,
                     Delta: float) -> MinimizeStatus | None:
    """Why the iteration stops before step ``nit + 1``, or ``None`` to go on.

    At ``||g|| <= gtol`` the second-order check decides: no negative curvature is
    ``CONVERGED``, a non-finite Hessian ``NON_FINITE``, and negative curvature goes on
    (with the saddle step).
    """
    if model.gnorm <= gtol:
        if model.smallest_curvature() is None:
            return MinimizeStatus.NON_FINITE
        if not model.negative_curvature():
            return MinimizeStatus.CONVERGED
    if nit >= maxiter:
        return MinimizeStatus.MAX_ITERATIONS
    if Delta < _EPS * np.linalg.norm(model.x) or Delta < _TINY:
        return MinimizeStatus.RADIUS_COLLAPSED
    return None


def _next_radius(Delta: float, rho: float, pnorm: float, hits_boundary, max_radius: float):
    """The radius rule of N&W Alg. 4.1, with a shrink below an unusable step's length."""
    if rho == -np.inf and pnorm > 0.0:
        return 0.25 * min(Delta, pnorm)  # unusable trial point: shrink below the step
    if rho < 0.25:
        return 0.25 * Delta
    if rho > 0.75 and hits_boundary:
        return min(2.0 * Delta, max_radius)
    return Delta


def _callback_stops(callback, style, model: _QuadraticModel, nit: int, Delta: float) -> bool:
    """Call the callback after an iteration; ``True`` if it raised ``StopIteration``."""
    if style is None:
        return False
    try:
        if style == "intermediate_result":
            callback(intermediate_result=OptimizeResult(
                x=model.x.copy(), fun=model.f, jac=model.g.copy(), nit=nit, radius=Delta))
        else:
            callback(model.x.copy())
    except StopIteration:
        return True
    return False


def _result(objective: _Objective, model: _QuadraticModel, status: MinimizeStatus, nit: int,
            Delta: float, counts: dict, allvecs) -> OptimizeResult:
    """The ``OptimizeResult`` at the last accepted point."""
    probe = model.curvature
    message = status.message
    if status is MinimizeStatus.CONVERGED and probe is not None and not probe[3]:
        message += (" The negative-curvature check's Lanczos estimate of the smallest "
                    f"curvature ({probe[0]:.3g}) had not converged when its step budget ran "
                    "out: a saddle point cannot be ruled out.")
    result = OptimizeResult(
        x=model.x,
        fun=model.f,
        jac=model.g,
        nit=nit,
        nfev=objective.nfev,
        njev=objective.njev,
        nhev=objective.nhev,
        status=int(status),
        success=bool(status.success),
        message=message,
        radius=Delta,
        min_curvature=None if probe is None else probe[0],
        min_curvature_converged=None if probe is None else bool(probe[3]),
        **counts,
    )
    if allvecs is not None:
        result["allvecs"] = allvecs
    return result
