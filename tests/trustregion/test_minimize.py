"""The trust-region minimizer (N&W Alg. 4.1) and its scipy.optimize interface."""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse.linalg as spla
from hypothesis import given
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import spd_matrices, vectors
from trustregion.result import MinimizeStatus

SUBPROBLEMS = ["steihaug", "exact", "dogleg"]
EPS = np.finfo(np.float64).eps


def rosen(x):
    """Extended Rosenbrock function (scipy.optimize.rosen), written with autograd.numpy."""
    return anp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_start(n):
    return np.tile([-1.2, 1.0], n // 2)


def minimiser_tolerance(f, x_star, gtol):
    """||x - x*|| <= ||g(x)|| / lambda_min(H(x*)) to first order near a strict minimiser; a
    factor 2 covers the second-order term for ||g|| <= gtol."""
    return 2.0 * gtol / np.linalg.eigvalsh(autograd.hessian(f)(x_star))[0]


class Counted:
    """Count calls of a function."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


@pytest.mark.parametrize("subproblem", SUBPROBLEMS)
def test_rosenbrock_2d(subproblem):
    """From the standard start (-1.2, 1) the method converges to the minimiser (1, 1) with
    ||g|| <= gtol (global convergence, N&W Thm. 4.6; local quadratic rate near x*), for the
    Steihaug, exact and dogleg subproblems."""
    res = tr.minimize(rosen, [-1.2, 1.0], subproblem=subproblem)
    assert res.success and res.status == MinimizeStatus.CONVERGED
    assert np.linalg.norm(res.jac) <= 1e-5
    assert np.linalg.norm(res.x - 1.0) <= minimiser_tolerance(rosen, np.ones(2), 1e-5)
    assert res.min_curvature > 0  # second-order check passed at x*


def test_rosenbrock_extended_100():
    """Extended Rosenbrock, n = 100, autograd gradients and Hessian-vector products: converges
    to x* = (1, ..., 1) with ||g|| <= gtol."""
    n = 100
    res = tr.minimize(rosen, rosen_start(n))
    assert res.success
    assert np.linalg.norm(res.jac) <= 1e-5
    assert np.linalg.norm(res.x - 1.0) <= minimiser_tolerance(rosen, np.ones(n), 1e-5)


@st.composite
def convex_quadratics(draw):
    n = draw(st.integers(1, 8))
    A = draw(spd_matrices(n, max_log10_cond=4.0))
    b = draw(vectors(n))
    x0 = draw(vectors(n))
    return A, b, x0


@given(convex_quadratics(), st.sampled_from(SUBPROBLEMS))
def test_convex_quadratic_reaches_minimiser_monotonically(problem, subproblem):
    """f(x) = 1/2 x^T A x - b^T x, A SPD: the method stops with ||A x - b|| <= gtol, so
    ||x - A^{-1} b|| <= gtol / lambda_min(A); accepted steps have rho > eta >= 0, so f never
    increases along the iterates (N&W Alg. 4.1) beyond the rounding allowance
    delta = 10 eps max(1, |f|) of the ratio test.

    One outcome besides CONVERGED is legitimate. A step is accepted on the evidence of f,
    and computing f = 1/2 x^T A x - b^T x carries a rounding error of about
    e_f = eps n ||A|| ||x||^2, which exceeds eps |f| when the terms cancel. A step from a
    gradient g predicts a decrease of at least ||g||^2 / (2 lambda_max); once that falls
    below e_f, no step can be verified by f and the radius collapses. So the run may end
    with RADIUS_COLLAPSED, but only with ||g|| <= sqrt(2 lambda_max (10 e_f)), a
    gradient no f-based method could certify smaller. (Hypothesis found such a case: a
    2x2 block of eigenvalues 1 and 1e4 with ||A|| ||x*||^2 ~ 1e3 |f*|, where Steihaug's
    inexact step stops at ||g|| = 2.9e-8 against gtol = 2.8e-8, as scipy's trust-ncg
    does on the same problem.)"""
    A, b, x0 = problem
    eigs = np.linalg.eigvalsh(A)
    lam_min, lam_max = eigs[0], eigs[-1]
    x_star = np.linalg.solve(A, b)
    values = []
    gtol = 1e-8 * max(1.0, np.linalg.norm(b))
    res = tr.minimize(
        lambda x: 0.5 * x @ A @ x - b @ x,
        x0,
        jac=lambda x: A @ x - b,
        hessp=lambda x, p: A @ p,
        subproblem=subproblem,
        gtol=gtol,
        callback=lambda xk: values.append(0.5 * xk @ A @ xk - b @ xk),
    )
    if res.status == MinimizeStatus.RADIUS_COLLAPSED:
        e_f = EPS * len(b) * lam_max * max(float(x_star @ x_star), float(res.x @ res.x))
        gtol = max(gtol, np.sqrt(2.0 * lam_max * 10.0 * e_f))
    else:
        assert res.success
    assert np.linalg.norm(A @ res.x - b) <= gtol * (1 + 1e-12)
    assert np.linalg.norm(res.x - x_star) <= 1.01 * gtol / lam_min + 1e-13 * (
        np.linalg.norm(x_star)
    )
    pairs = zip(values, values[1:], strict=False)
    assert all(later < earlier + 10 * EPS * max(1.0, abs(earlier)) for earlier, later in pairs)


@pytest.mark.parametrize("subproblem", SUBPROBLEMS)
def test_counts_match_calls_of_user_functions(subproblem):
    """nfev, njev and nhev equal the number of calls of fun, jac and hessp (or hess)."""
    fun = Counted(scipy.optimize.rosen)
    jac = Counted(scipy.optimize.rosen_der)
    hessp = Counted(scipy.optimize.rosen_hess_prod)
    res = tr.minimize(fun, rosen_start(6), jac=jac, hessp=hessp, subproblem=subproblem)
    assert res.success
    assert (res.nfev, res.njev, res.nhev) == (fun.calls, jac.calls, hessp.calls)
    hess = Counted(scipy.optimize.rosen_hess)
    fun.calls = jac.calls = 0
    res = tr.minimize(fun, rosen_start(6), jac=jac, hess=hess, subproblem=subproblem)
    assert res.success
    assert (res.nfev, res.njev, res.nhev) == (fun.calls, jac.calls, hess.calls)


def test_counts_with_autograd_derivatives():
    """With jac=None autograd calls fun once inside each gradient evaluation: the calls of fun
    are nfev + njev; nit counts every trial step, so nfev = nit + 1 (one value per trial and
    one at x0)."""
    fun = Counted(rosen)
    res = tr.minimize(fun, [-1.2, 1.0])
    assert res.success
    assert fun.calls == res.nfev + res.njev
    assert res.nfev == res.nit + 1
    assert res.njev == res.nit + 1 - res.nrejected


@pytest.mark.parametrize("subproblem", SUBPROBLEMS + ["cauchy"])
def test_does_not_succeed_at_saddle_start(subproblem):
    """f = x^2 - y^2 from the saddle point (0, 0): g = 0 but H = diag(2, -2) is indefinite, so
    (0, 0) is not a local minimiser (second-order necessary condition, N&W Thm. 2.3). The
    method must not report success; it leaves along the negative curvature and f decreases."""
    saddle = lambda x: x[0] ** 2 - x[1] ** 2  # noqa: E731
    res = tr.minimize(saddle, [0.0, 0.0], subproblem=subproblem, maxiter=30)
    assert not res.success and res.status == MinimizeStatus.MAX_ITERATIONS
    assert res.fun < 0.0 and res.nsaddle_steps >= 1


def test_saddle_start_with_dense_hessian():
    """The same with a dense hess: the second-order check uses the eigendecomposition."""
    res = tr.minimize(
        lambda x: x[0] ** 2 - x[1] ** 2,
        [0.0, 0.0],
        jac=lambda x: np.array([2 * x[0], -2 * x[1]]),
        hess=lambda x: np.diag([2.0, -2.0]),
        maxiter=30,
    )
    assert not res.success and res.fun < 0.0


@pytest.mark.parametrize("subproblem", SUBPROBLEMS)
def test_escapes_saddle_to_minimiser(subproblem):
    """f = x^2 - y^2 + y^4 from its saddle (0, 0) reaches a minimiser (0, +-1/sqrt 2), where
    g = 0 and the smallest curvature is positive (second-order sufficient conditions, N&W
    Thm. 2.4)."""
    f = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4  # noqa: E731
    res = tr.minimize(f, [0.0, 0.0], subproblem=subproblem)
    assert res.success
    assert abs(res.x[0]) <= 1e-5 and abs(abs(res.x[1]) - 2**-0.5) <= 1e-5
    assert res.min_curvature > 0


def test_dogleg_falls_back_to_cauchy_point_where_hessian_is_indefinite():
    """The dogleg step needs H positive definite; where it is not, the Cauchy point is used
    (still a sufficient decrease step, N&W Thm. 4.5) and counted."""
    f = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4  # noqa: E731
    res = tr.minimize(f, [0.3, 0.1], subproblem="dogleg")
    assert res.success and res.ncauchy_fallbacks >= 1


def nan_outside_positive_orthant(x):
    """sum(x - log x): minimiser x = 1; NaN where some x_i < 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return anp.sum(x - anp.log(x))


@pytest.mark.parametrize("subproblem", SUBPROBLEMS)
def test_survives_nan_region(subproblem):
    """A trial point where f is NaN is rejected like rho = -inf and the radius shrinks below
    the step, so the method never stalls there and still converges to x* = (1, 1)."""
    res = tr.minimize(
        nan_outside_positive_orthant, [5.0, 5.0], subproblem=subproblem, initial_radius=100.0
    )
    assert res.success and res.nrejected >= 1
    assert np.all(np.isfinite(res.x)) and np.allclose(res.x, 1.0, atol=1e-4)


def test_survives_infinite_values():
    """Trial values +inf (f = sum(x - log x) extended by +inf outside x > 0) are rejected the
    same way: the Newton step from x0 = (5, 5) lands at (-15, -15), the radius shrinks below
    it, and the method converges to x* = (1, 1)."""

    def f(x):
        return float(np.sum(x - np.log(x))) if np.all(x > 0) else np.inf

    res = tr.minimize(
        f,
        [5.0, 5.0],
        jac=lambda x: 1.0 - 1.0 / x,
        hessp=lambda x, p: p / x**2,
        initial_radius=100.0,
    )
    assert res.success and res.nrejected >= 1 and np.allclose(res.x, 1.0, atol=1e-4)


def test_non_finite_hessian_stops_with_status():
    """Hessian-vector products that are NaN end the run with NON_FINITE and the last good x."""
    res = tr.minimize(rosen, [-1.2, 1.0], hessp=lambda x, p: np.full(2, np.nan))
    assert res.status == MinimizeStatus.NON_FINITE and not res.success
    assert np.array_equal(res.x, [-1.2, 1.0])


def test_works_through_scipy_optimize_minimize():
    """scipy.optimize.minimize(fun, x0, method=tr.minimize, jac=..., hessp=...) calls our method
    with its keywords and returns our OptimizeResult; options and tol are passed through."""
    res = scipy.optimize.minimize(
        scipy.optimize.rosen,
        rosen_start(10),
        method=tr.minimize,
        jac=scipy.optimize.rosen_der,
        hessp=scipy.optimize.rosen_hess_prod,
    )
    assert res.success and np.allclose(res.x, 1.0, atol=1e-4)
    short = scipy.optimize.minimize(rosen, [-1.2, 1.0], method=tr.minimize, options={"maxiter": 3})
    assert short.nit == 3 and short.status == MinimizeStatus.MAX_ITERATIONS and not short.success
    loose = scipy.optimize.minimize(rosen, [-1.2, 1.0], method=tr.minimize, tol=1e-2)
    tight = scipy.optimize.minimize(rosen, [-1.2, 1.0], method=tr.minimize, tol=1e-9)
    assert np.linalg.norm(loose.jac) <= 1e-2 and np.linalg.norm(tight.jac) <= 1e-9
    assert loose.nit < tight.nit
    seen = []
    scipy.optimize.minimize(rosen, [-1.2, 1.0], method=tr.minimize, callback=seen.append)
    assert len(seen) > 0
    with pytest.raises(ValueError, match="bounds"):
        scipy.optimize.minimize(rosen, [0.0, 0.0], method=tr.minimize, bounds=[(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="constraints"):
        scipy.optimize.minimize(
            rosen, [0.0, 0.0], method=tr.minimize, constraints={"type": "eq", "fun": rosen}
        )


def test_scipy_jac_true_convention():
    """jac=True: fun returns (f, g), as in scipy.optimize.minimize."""

    def fun_and_grad(x):
        return scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)

    res = tr.minimize(fun_and_grad, [-1.2, 1.0], jac=True, hessp=scipy.optimize.rosen_hess_prod)
    assert res.success and np.allclose(res.x, 1.0, atol=1e-4)


def test_radius_rule():
    """N&W Alg. 4.1: each radius update is Delta <- Delta/4 (rho < 1/4), Delta <- min(2 Delta,
    Delta_max) (rho > 3/4 on the boundary) or unchanged, and Delta <= Delta_max always."""
    radii = [1.0]

    def record(intermediate_result):
        radii.append(intermediate_result.radius)

    tr.minimize(rosen, rosen_start(4), callback=record, max_radius=3.0)
    assert max(radii) <= 3.0
    ratios = {round(b / a, 12) for a, b in zip(radii, radii[1:], strict=False)}
    assert ratios <= {0.25, 1.0, 2.0, 1.5}  # 1.5: doubling capped at Delta_max = 3 from 2
    assert 0.25 in ratios and 2.0 in ratios


def test_callback_can_stop_the_run():
    """Raising StopIteration in the callback ends the run with CALLBACK_STOP (not success)."""

    def stop(xk):
        raise StopIteration

    res = tr.minimize(rosen, [-1.2, 1.0], callback=stop)
    assert res.status == MinimizeStatus.CALLBACK_STOP and not res.success and res.nit == 1


def test_custom_subproblem_callable():
    """Any callable(g, H, radius) -> SubproblemResult can solve the subproblem; another return
    type is a TypeError."""
    calls = []

    def solver(g, H, radius):
        calls.append(radius)
        return tr.exact(g, H, radius)

    res = tr.minimize(rosen, [-1.2, 1.0], subproblem=solver)
    assert res.success and len(calls) == res.nit

    def bad(g, H, radius):
        return -g

    with pytest.raises(TypeError, match="SubproblemResult"):
        tr.minimize(rosen, [-1.2, 1.0], subproblem=bad)


def test_maxiter_zero_and_start_at_minimiser():
    """maxiter = 0 evaluates only x0; starting at a strict minimiser succeeds with nit = 0."""
    res = tr.minimize(rosen, [-1.2, 1.0], maxiter=0)
    assert res.nit == 0 and res.status == MinimizeStatus.MAX_ITERATIONS
    at_min = tr.minimize(rosen, [1.0, 1.0])
    assert at_min.success and at_min.nit == 0 and at_min.min_curvature > 0


def test_bad_input_raises_value_error():
    """Bad input is rejected before any iteration with a ValueError naming the argument."""
    cases = [
        ({"x0": [np.nan, 1.0]}, "x0"),
        ({"x0": [[1.0, 2.0]]}, "x0"),
        ({"x0": []}, "x0"),
        ({"initial_radius": 0.0}, "initial_radius"),
        ({"initial_radius": -1.0}, "initial_radius"),
        ({"initial_radius": 10.0, "max_radius": 5.0}, "max_radius"),
        ({"eta": 0.25}, "eta"),
        ({"eta": -0.1}, "eta"),
        ({"gtol": -1.0}, "gtol"),
        ({"maxiter": -1}, "maxiter"),
        ({"maxiter": 2.5}, "maxiter"),
        ({"subproblem": "newton"}, "subproblem"),
        ({"jac": "2-point"}, "jac"),
        ({"hess": "bfgs"}, "hess"),
        ({"hessp": 3}, "hessp"),
        ({"callback": 3}, "callback"),
        ({"bounds": [(0, 1), (0, 1)]}, "bounds"),
    ]
    for kwargs, name in cases:
        kwargs = {"x0": [-1.2, 1.0], **kwargs}
        with pytest.raises(ValueError, match=name):
            tr.minimize(rosen, **kwargs)
    with pytest.raises(ValueError, match="not finite"):
        tr.minimize(lambda x: np.nan, [1.0, 2.0], jac=lambda x: x)
    with pytest.raises(ValueError, match="autograd"):
        tr.minimize(lambda x: float(x[0]) ** 2, [1.0, 2.0])
    with pytest.raises(ValueError, match="gradient"):
        tr.minimize(rosen, [1.0, 2.0], jac=lambda x: np.ones(3), hessp=lambda x, p: p)
    with pytest.warns(scipy.optimize.OptimizeWarning, match="gtoll"):
        tr.minimize(rosen, [1.0, 1.0], gtoll=1e-3)


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_badly_scaled_objective_converges(scale):
    """f = scale ||x - 1||^2: the trust-region step does not depend on the scale of f, so the
    minimiser is found whatever the scale; Steihaug's squares of ||g|| ~ 1e150 must not
    overflow into a non-finite step reported at an accepted point."""
    res = tr.minimize(lambda x: scale * anp.sum((x - 1.0) ** 2), np.zeros(2),
                      gtol=1e-8 * scale)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, np.ones(2), rtol=1e-12)


def test_hessp_of_the_wrong_size_is_reported_by_name():
    """hessp returning the wrong shape names hessp and the expected shape."""
    with pytest.raises(ValueError, match=r"^hessp returned an array of shape \(3,\)"):
        tr.minimize(lambda x: anp.sum(x**2), np.ones(2), hessp=lambda x, p: np.ones(3))


def test_every_product_is_checked_with_one_message():
    """Products are checked by one function: complex values are refused with the same words
    from a callable (cg's A), a LinearOperator (steihaug's H) and minimize's hessp, and a
    wrong size from a callable and from hessp."""
    g = np.ones(2)
    complex_op = spla.LinearOperator((2, 2), matvec=lambda v: v + 0j, dtype=np.float64)
    fix = (r"must map real vectors to real vectors \(return the real part if the imaginary "
           r"part is rounding noise\)$")
    calls = [("A", "it", lambda: tr.cg(lambda v: v + 0j, g)),
             ("H", "its matvec", lambda: tr.steihaug(g, complex_op, 1.0)),
             ("hessp", "it", lambda: tr.minimize(lambda x: anp.sum(x**2), g,
                                                 hessp=lambda x, p: p + 0j))]
    for name, whose, call in calls:
        with pytest.raises(ValueError, match=rf"^{name} returned complex values; {whose} {fix}"):
            call()
    wrong = r"returned an array of shape \(3,\) for a vector of length 2; it must return a " \
            r"vector of length 2, shape \(2,\)$"
    with pytest.raises(ValueError, match=rf"^A {wrong}"):
        tr.cg(lambda v: np.ones(3), g)
    with pytest.raises(ValueError, match=rf"^hessp {wrong}"):
        tr.minimize(lambda x: anp.sum(x**2), g, hessp=lambda x, p: np.ones(3))


def test_complex_values_are_refused():
    """A complex x0, objective value, gradient or Hessian is refused, not cast to real."""
    with pytest.raises(ValueError, match="^x0 must be real"):
        tr.minimize(lambda x: anp.sum(x**2), np.array([1.0 + 1j, 0.0]))
    with pytest.raises(ValueError, match="^fun must return a real scalar"):
        tr.minimize(lambda x: complex(x @ x), np.ones(2), jac=lambda x: 2 * x,
                    hessp=lambda x, p: 2 * p)
    with pytest.raises(ValueError, match="^the gradient must be real"):
        tr.minimize(lambda x: float(x @ x), np.ones(2), jac=lambda x: 2 * x + 0j,
                    hessp=lambda x, p: 2 * p)
    with pytest.raises(ValueError, match="^hess must return a real matrix"):
        tr.minimize(lambda x: float(x @ x), np.ones(2), jac=lambda x: 2 * x,
                    hess=lambda x: 2 * np.eye(2, dtype=complex))


def test_zero_dimensional_arrays_are_accepted_as_scalar_options():
    plain = tr.minimize(rosen, [-1.2, 1.0], initial_radius=0.5, eta=0.1, maxiter=50)
    wrapped = tr.minimize(rosen, [-1.2, 1.0], initial_radius=np.array(0.5),
                          eta=np.array(0.1), maxiter=np.array(50))
    np.testing.assert_array_equal(wrapped.x, plain.x)
    assert wrapped.nit == plain.nit


def test_non_symmetric_dense_hessian_is_refused_by_name():
    """Steihaug's dense H must be symmetric; from minimize the error names hess(x)."""
    with pytest.raises(ValueError, match=r"^hess\(x\) must be symmetric"):
        tr.minimize(lambda x: float(x @ x), np.ones(2), jac=lambda x: 2 * x,
                    hess=lambda x: np.array([[2.0, 1.0], [0.0, 2.0]]))


# ------------------------------------------------------------ scipy conventions and checks
def test_saddle_beyond_thirty_dimensions_is_escaped():
    """n = 300 with one negative curvature of -2e-3 among curvatures spread over
    [2e-3, 2]: the Lanczos check runs past its first 30 steps until its smallest Ritz
    pair converges, finds the negative curvature at the start (a stationary saddle) and
    escapes it; the final estimate is reported as converged."""
    n = 300
    d = np.r_[-1e-3, np.linspace(1e-3, 1.0, n - 1)]

    def f(x):
        return anp.sum(d * x**2) + anp.sum(x**4)

    res = tr.minimize(f, np.zeros(n), gtol=1e-12)
    assert res.success and res.nsaddle_steps >= 1
    assert res.fun < -2e-7  # the minimum along x_0: -(1e-3)^2 / 4 = -2.5e-7
    assert res.x[0] ** 2 == pytest.approx(5e-4, rel=1e-6)
    assert res.min_curvature_converged is True
    assert "saddle point cannot be ruled out" not in res.message


def test_explicit_gtol_wins_over_tol_as_in_scipy():
    """scipy.optimize.minimize passes tol as gtol only when no gtol option is given."""
    strict = scipy.optimize.minimize(scipy.optimize.rosen, [-1.2, 1.0], method=tr.minimize,
                                     tol=1e-2, options={"gtol": 1e-10})
    loose = scipy.optimize.minimize(scipy.optimize.rosen, [-1.2, 1.0], method=tr.minimize,
                                    tol=1e-2)
    assert np.linalg.norm(strict.jac) <= 1e-10
    assert 1e-10 < np.linalg.norm(loose.jac) <= 1e-2
    direct = tr.minimize(scipy.optimize.rosen, [-1.2, 1.0], tol=1e-2, gtol=1e-10)
    assert np.linalg.norm(direct.jac) <= 1e-10


def test_jac_true_uses_the_gradient_fun_returns():
    """With jac=True and no Hessian, the gradient fun returns is the one the iteration
    uses and reports (here deliberately twice the true one), and the Hessian-vector
    products differentiate that gradient; it converges to the same minimiser."""
    seen = []

    def fg(x):
        return anp.sum((x - 1.0) ** 2), 4.0 * (x - 1.0)

    def record(intermediate_result):
        seen.append((intermediate_result.x.copy(), intermediate_result.jac.copy()))

    res = tr.minimize(fg, np.zeros(3), jac=True, callback=record)
    assert res.success
    np.testing.assert_allclose(res.x, np.ones(3), atol=1e-8)
    assert seen and all(np.array_equal(g, 4.0 * (x - 1.0)) for x, g in seen)


def test_scipy_conventions_scalar_x0_empty_constraints_and_return_all():
    """x0 given as a scalar is a 1-vector (scipy's atleast_1d); an empty constraints dict is
    no constraint; return_all adds allvecs, x0 first and then the iterate after every
    iteration."""
    res = tr.minimize(lambda x: (x[0] - 2.0) ** 2, 1.0)
    assert res.x.shape == (1,) and res.x[0] == pytest.approx(2.0)
    res = tr.minimize(lambda x: anp.sum((x - 3.0) ** 2), [1.0, 2.0], constraints={},
                      return_all=True)
    assert len(res.allvecs) == res.nit + 1
    np.testing.assert_array_equal(res.allvecs[0], [1.0, 2.0])
    np.testing.assert_array_equal(res.allvecs[-1], res.x)
    via_scipy = scipy.optimize.minimize(lambda x: anp.sum((x - 3.0) ** 2), [1.0, 2.0],
                                        method=tr.minimize, options={"return_all": True})
    assert len(via_scipy.allvecs) == via_scipy.nit + 1


@pytest.mark.parametrize("bad", [None, "3.5", object()])
def test_fun_returning_something_other_than_a_number_is_refused(bad):
    """None, strings and other objects are refused by name, not read as NaN or parsed."""
    with pytest.raises(ValueError, match="fun must return a real scalar"):
        tr.minimize(lambda x: bad, np.ones(2), jac=lambda x: x, hessp=lambda x, p: p)
    with pytest.raises(ValueError, match="must return a real scalar"):
        tr.backtracking(lambda x: bad, np.ones(2), -np.ones(2), f0=4.0)


def test_a_linear_function_warns_nothing_and_reports_its_stop():
    """A constant gradient has a zero Hessian: autograd's 'Output seems independent of
    input' (once per iterate) is not passed on, and the result still says why it stopped."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tr.minimize(lambda x: 2.0 * x[0] + 3.0 * x[1], np.zeros(2), maxiter=50)
    assert not res.success and res.nit == 50
    assert res.fun < -1e3  # it went downhill all the way
