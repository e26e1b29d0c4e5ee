"""Reference subproblem solvers: Cauchy point, dogleg and the exact (Moré–Sorensen) solution.

Every test states the theorem it checks (N&W = Nocedal & Wright, *Numerical
Optimization*, 2nd ed.). Tolerances are multiples of machine epsilon scaled by the
size of the quantities involved, plus the solver's own ``rtol`` where the
theorem is about an iterative solve.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from scipy.linalg.blas import dnrm2

import trustregion as tr
from tests.strategies import (
    finite_floats,
    indefinite_matrices,
    orthogonal_matrices,
    spd_matrices,
    symmetric_matrices,
    vectors,
)
from trustregion.result import SubproblemStatus

EPS = np.finfo(np.float64).eps


def norm(v, ord=None):
    """np.linalg.norm, but the vector 2-norm by BLAS dnrm2, which neither overflows nor
    underflows in the squares (drawn vectors may have entries like 1e-170)."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 1 and ord is None:
        return float(dnrm2(v)) if v.size else 0.0
    return np.linalg.norm(v, ord)


RTOL = 1e-10  # the default rtol of tr.exact


def model(g, H, p):
    """m(p) = g^T p + 1/2 p^T H p, N&W eq. (4.3) without the constant."""
    return float(g @ p + 0.5 * p @ H @ p)


@st.composite
def problems(draw, matrices=symmetric_matrices, *, max_n=6, nonzero_g=True):
    """``(g, H, radius)`` with ``H`` from ``matrices(n)``."""
    n = draw(st.integers(1, max_n))
    H = draw(matrices(n))
    if matrices is spd_matrices:
        # Q diag(lam) Q^T loses a column of Q when the drawn matrix behind Q is singular
        assume(np.linalg.eigvalsh(H)[0] > 0.5)
    g = draw(vectors(n))
    if nonzero_g:
        assume(norm(g) > 1e-3)
    radius = draw(finite_floats(0.01, 10.0))
    return g, H, radius


@st.composite
def hard_cases(draw, *, max_n=6):
    """``(g, H, radius, lambda_1)`` in the hard case (N&W §4.3).

    ``H = Q diag(lam) Q^T`` with ``lambda_1 < 0`` of multiplicity ``k`` (1 or 2),
    the other eigenvalues at least 0.5 above it; ``g`` lies in the span of the
    other eigenvectors, and ``radius > ||p(-lambda_1)||``.
    """
    n = draw(st.integers(2, max_n))
    k = draw(st.integers(1, min(2, n - 1)))
    Q = draw(orthogonal_matrices(n))
    lambda_1 = -draw(finite_floats(0.1, 10.0))
    gaps = np.array([draw(finite_floats(0.5, 10.0)) for _ in range(n - k)])
    lam = np.concatenate([np.full(k, lambda_1), lambda_1 + gaps])
    H = (Q * lam) @ Q.T
    H = 0.5 * (H + H.T)
    c = np.array([draw(finite_floats(-10.0, 10.0)) for _ in range(n - k)])
    g = Q[:, k:] @ c
    p_lim = -Q[:, k:] @ (c / gaps)  # p(-lambda_1)
    radius = float(norm(p_lim)) * draw(finite_floats(1.05, 5.0)) + 1e-3
    return g, H, radius, lambda_1


def secular_reference(g, H, radius):
    """A feasible reference solution from the eigenbasis, with its KKT residual.

    Bisection on ``||p(lam)|| = radius``, ``p(lam) = -Q diag(1/(lam_i + lam)) Q^T g``, keeping
    ``hi`` on the feasible side; ``p(hi)`` is then moved to the boundary along the eigenvector
    ``z`` of ``lambda_1``, by the root with the lower model value (this is the hard-case
    solution when the bracket collapses onto ``-lambda_1``).
    Returns ``(p, lam, ||(H + lam I) p + g||)``.
    """
    lam, Q = np.linalg.eigh(H)
    gamma = Q.T @ g
    n = g.size

    def p_of(mu):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return -Q @ (gamma / (lam + mu))

    if lam[0] > 0 and norm(p_of(0.0)) <= radius:
        p, mu = p_of(0.0), 0.0
    else:
        lo = max(0.0, -lam[0])
        hi = norm(g) / radius - lam[0] + 1.0
        for _ in range(2000):
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:
                break
            if norm(p_of(mid)) <= radius:
                hi = mid
            else:
                lo = mid
        mu = hi
        p = p_of(mu)
        z = Q[:, 0]
        b, c = p @ z, p @ p - radius**2
        if c >= 0:  # on the boundary to rounding
            p = p * (radius / norm(p))
        else:
            roots = (-b + np.sqrt(b * b - c), -b - np.sqrt(b * b - c))
            p = min((p + tau * z for tau in roots), key=lambda q: model(g, H, q))
    return p, mu, norm((H + mu * np.eye(n)) @ p + g)


# ------------------------------------------------------------------------------------------
# Cauchy point


@given(problems())
def test_cauchy_point_matches_formula(problem):
    """Cauchy point, N&W eqs. (4.11)-(4.12): p^C = -tau (Delta/||g||) g with tau = 1 if
    g^T H g <= 0, else min(||g||^3 / (Delta g^T H g), 1)."""
    g, H, radius = problem
    res = tr.cauchy_point(g, H, radius)
    gnorm = norm(g)
    gHg = g @ H @ g
    tau = 1.0 if gHg <= 0 else min(gnorm**3 / (radius * gHg), 1.0)
    expected = -tau * radius / gnorm * g
    assert np.allclose(res.p, expected, rtol=1e3 * EPS, atol=1e3 * EPS * radius)
    assert res.hits_boundary == (tau == 1.0)
    assert norm(res.p) <= radius * (1 + 4 * EPS)
    direct = -model(g, H, res.p)
    assert res.model_decrease >= 0.0
    scale = gnorm * radius + np.abs(H).max() * radius**2
    assert abs(res.model_decrease - direct) <= 1e3 * EPS * scale


@given(problems(), st.lists(finite_floats(0.0, 1.0), min_size=1, max_size=20))
def test_cauchy_point_minimises_model_along_steepest_descent(problem, fractions):
    """The Cauchy point minimises m(-t g/||g||) over 0 <= t <= Delta (N&W eq. 4.11)."""
    g, H, radius = problem
    res = tr.cauchy_point(g, H, radius)
    u = g / norm(g)
    m_c = model(g, H, res.p)
    scale = norm(g) * radius + np.abs(H).max() * radius**2
    for s in fractions:
        assert model(g, H, -s * radius * u) >= m_c - 1e3 * EPS * scale


@given(problems())
def test_cauchy_point_sufficient_decrease(problem):
    """N&W Lemma 4.3: m(0) - m(p^C) >= 1/2 ||g|| min(Delta, ||g|| / ||H||)."""
    g, H, radius = problem
    res = tr.cauchy_point(g, H, radius)
    gnorm = norm(g)
    Hnorm = norm(H, 2)
    bound = 0.5 * gnorm * (radius if gnorm >= radius * Hnorm else gnorm / Hnorm)
    assert res.model_decrease >= bound * (1 - 1e3 * EPS)


def test_cauchy_point_zero_gradient_and_negative_curvature():
    """g = 0 gives p = 0 (ZERO_GRADIENT); g^T H g < 0 sends p^C to the boundary along -g
    (N&W eq. 4.12, tau = 1) with status NEGATIVE_CURVATURE."""
    H = np.diag([-1.0, 2.0])
    zero = tr.cauchy_point(np.zeros(2), H, 1.0)
    assert zero.status == SubproblemStatus.ZERO_GRADIENT and not np.any(zero.p)
    neg = tr.cauchy_point(np.array([1.0, 0.0]), H, 2.0)
    assert neg.status == SubproblemStatus.NEGATIVE_CURVATURE
    assert np.allclose(neg.p, [-2.0, 0.0]) and neg.hits_boundary


# ------------------------------------------------------------------------------------------
# Dogleg


@given(problems(spd_matrices))
def test_dogleg_between_cauchy_and_newton(problem):
    """N&W Lemma 4.2 and §4.1: along the dogleg path ||p|| increases and m decreases, so
    ||p^C|| <= ||p^D|| <= min(Delta, ||p^B||) and m(p^B) <= m(p^D) <= m(p^C); the step is the
    Newton step p^B = -H^{-1} g when that lies inside the region, and on the boundary otherwise."""
    g, H, radius = problem
    res = tr.dogleg(g, H, radius)
    cauchy = tr.cauchy_point(g, H, radius)
    pB = -np.linalg.solve(H, g)
    kappa = np.linalg.cond(H)
    scale = norm(g) * radius + norm(H, 2) * radius**2
    tol = 1e2 * g.size * EPS * kappa * scale
    assert norm(cauchy.p) <= norm(res.p) * (1 + 1e3 * EPS)
    assert norm(res.p) <= min(radius, norm(pB)) * (1 + 1e2 * EPS * kappa)
    assert model(g, H, pB) <= model(g, H, res.p) + tol
    assert res.model_decrease >= cauchy.model_decrease - tol
    if norm(pB) <= radius * (1 - 1e-8):
        assert res.status == SubproblemStatus.INTERIOR and not res.hits_boundary
        assert np.allclose(res.p, pB, rtol=0, atol=1e2 * EPS * kappa * norm(pB))
    elif norm(pB) > radius * (1 + 1e-8):
        assert res.status == SubproblemStatus.BOUNDARY and res.hits_boundary
        assert abs(norm(res.p) - radius) <= 1e3 * EPS * radius


def distance_to_segment(p, a, b):
    """Euclidean distance from p to the segment [a, b]."""
    d = b - a
    dd = d @ d
    s = 0.0 if dd == 0 else min(max((p - a) @ d / dd, 0.0), 1.0)
    return norm(p - (a + s * d))


@given(problems(spd_matrices))
def test_dogleg_lies_on_the_dogleg_path(problem):
    """N&W eq. (4.16): the step lies on the dogleg path, the segments [0, p^U] and [p^U, p^B]
    with p^U = -(g^T g / g^T H g) g and p^B = -H^{-1} g."""
    g, H, radius = problem
    res = tr.dogleg(g, H, radius)
    pU = -(g @ g) / (g @ H @ g) * g
    pB = -np.linalg.solve(H, g)
    tol = 1e2 * EPS * np.linalg.cond(H) * (norm(pB) + norm(pU))
    distance = min(
        distance_to_segment(res.p, np.zeros_like(pU), pU), distance_to_segment(res.p, pU, pB)
    )
    assert distance <= tol


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(indefinite_matrices(n), vectors(n))))
def test_dogleg_rejects_indefinite_hessian(case):
    """The dogleg path is defined for positive definite H only (N&W §4.1): an indefinite H
    raises ValueError naming the requirement."""
    H, g = case
    with pytest.raises(ValueError, match="positive definite"):
        tr.dogleg(g, H, 1.0)


# ------------------------------------------------------------------------------------------
# Exact (Moré–Sorensen)


def kkt_tolerance(g, H, radius, lam, *, rtol=RTOL):
    """The documented bound on ||(H + lam I) p + g||: rtol (||g|| + (||H|| + lam) Delta), plus
    the backward error n eps (||H|| + lam) Delta + n eps ||g|| of a Cholesky solve."""
    scale = norm(g) + (norm(H, 2) + lam) * radius
    return (rtol + 1e2 * g.size * EPS) * scale


def assert_kkt(g, H, radius, res, *, rtol=RTOL):
    """N&W Thm. 4.1: (H + lam I) p = -g, lam >= 0, lam (Delta - ||p||) = 0, H + lam I PSD."""
    n = g.size
    lam = res.lam
    Hnorm = norm(H, 2)
    pnorm = norm(res.p)
    assert lam >= 0.0
    assert pnorm <= radius * (1 + 1e2 * EPS)
    residual = norm((H + lam * np.eye(n)) @ res.p + g)
    assert residual <= kkt_tolerance(g, H, radius, lam, rtol=rtol)
    assert lam * abs(radius - pnorm) <= 1e2 * n * EPS * lam * radius
    assert np.linalg.eigvalsh(H + lam * np.eye(n))[0] >= -1e2 * n * EPS * max(Hnorm, lam)
    assert res.model_decrease >= -1e2 * n * EPS * (norm(g) * radius + Hnorm * radius**2)


REGRESSION_PROBLEMS = [
    # nearly hard case: lam* = 1 + 4e-10 is within rounding of -lambda_1 for ||p||
    (np.array([4.09182253e-10]), np.array([[-1.0]]), 1.0),
    # g numerically orthogonal to the eigenspace of lambda_1 = -1
    (np.array([1.1261464e-232]), np.array([[-1.0]]), 1.0),
    # H = 0: p(lam) = -g / lam, boundary points within rounding of Delta
    (np.array([0.0, 0.75, 0.0078125, 0.0078125, 0.0078125]), np.zeros((5, 5)), 0.01171875),
    # a multiple eigenvalue -1 filling the whole space
    (np.array([0.0, 0.5]), -np.eye(2), 3.0),
    # tiny positive curvature: the Newton step overflows
    (np.array([1.0]), np.array([[1.6620949e-307]]), 1.0),
]


@example(REGRESSION_PROBLEMS[0])
@example(REGRESSION_PROBLEMS[1])
@example(REGRESSION_PROBLEMS[2])
@example(REGRESSION_PROBLEMS[3])
@example(REGRESSION_PROBLEMS[4])
@given(problems(nonzero_g=False))
def test_exact_satisfies_kkt_conditions(problem):
    """N&W Thm. 4.1: the returned (p, lam) satisfies (H + lam I) p = -g, lam >= 0,
    lam (Delta - ||p||) = 0 and H + lam I positive semidefinite, for any symmetric H."""
    g, H, radius = problem
    res = tr.exact(g, H, radius)
    assert res.success
    assert_kkt(g, H, radius, res)


@given(hard_cases())
def test_exact_hard_case(case):
    """Hard case (N&W §4.3, eqs. 4.45-4.46): lambda_1 < 0, g orthogonal to its eigenspace and
    ||p(-lambda_1)|| < Delta. Then lam = -lambda_1 and p = p(-lambda_1) + tau z lies on the
    boundary; the KKT conditions of N&W Thm. 4.1 hold."""
    g, H, radius, lambda_1 = case
    res = tr.exact(g, H, radius)
    assert res.status == SubproblemStatus.NEGATIVE_CURVATURE
    assert res.hits_boundary
    assert abs(res.lam + lambda_1) <= 1e2 * g.size * EPS * norm(H, 2)
    assert abs(norm(res.p) - radius) <= 1e2 * EPS * radius
    assert_kkt(g, H, radius, res)


@example(REGRESSION_PROBLEMS[0])
@example(REGRESSION_PROBLEMS[1])
@example(REGRESSION_PROBLEMS[2])
@example(REGRESSION_PROBLEMS[3])
@example(REGRESSION_PROBLEMS[4])
@given(problems(nonzero_g=False))
def test_exact_agrees_with_secular_equation_by_bisection(problem):
    """The Moré–Sorensen step has the optimal model value m* of a dense eigen-solution
    (bisection on ||(H + lam I)^{-1} g|| = Delta). For a feasible p that is on the boundary or
    has lam = 0, with H + lam I PSD and r = (H + lam I) p + g, 0 <= m(p) - m* <= 2 Delta ||r||
    (from m(p) = r^T p - p^T (H + lam I) p / 2 - lam ||p||^2 / 2 and m* >= -p^T (H + lam I) p / 2
    - ||r|| Delta - lam Delta^2 / 2). Applied to both solutions this brackets m* from both sides."""
    g, H, radius = problem
    p_ref, lam_ref, r_ref = secular_reference(g, H, radius)
    res = tr.exact(g, H, radius)
    n = g.size
    r = norm((H + res.lam * np.eye(n)) @ res.p + g)
    assert r <= kkt_tolerance(g, H, radius, res.lam)
    rounding = 1e3 * n * EPS * (norm(g) * radius + norm(H, 2) * radius**2)
    gap = model(g, H, res.p) - model(g, H, p_ref)
    assert gap >= -2 * radius * r_ref - rounding
    assert gap <= 2 * radius * r + rounding


@given(problems(spd_matrices))
def test_exact_interior_is_newton_step(problem):
    """For H positive definite and ||H^{-1} g|| < Delta the solution is the Newton step with
    lam = 0 (N&W Thm. 4.1 with lam = 0)."""
    g, H, radius = problem
    pB = -np.linalg.solve(H, g)
    assume(norm(pB) < radius * (1 - 1e-8))
    res = tr.exact(g, H, radius)
    assert res.status == SubproblemStatus.INTERIOR and res.lam == 0.0
    assert np.allclose(res.p, pB, rtol=0, atol=1e2 * EPS * np.linalg.cond(H) * norm(pB))


@given(problems(spd_matrices))
def test_model_decrease_ordering_positive_definite(problem):
    """For H positive definite: exact >= dogleg >= Cauchy in model decrease (the exact step is
    the global minimiser; the dogleg path contains the Cauchy point, N&W §4.1)."""
    g, H, radius = problem
    kappa = np.linalg.cond(H)
    scale = norm(g) * radius + norm(H, 2) * radius**2
    tol = 1e2 * g.size * EPS * kappa * scale
    d_exact = tr.exact(g, H, radius).model_decrease
    d_dogleg = tr.dogleg(g, H, radius).model_decrease
    d_cauchy = tr.cauchy_point(g, H, radius).model_decrease
    assert d_exact >= d_dogleg - tol - 2 * RTOL * scale
    assert d_dogleg >= d_cauchy - tol


@given(problems())
def test_model_decrease_ordering_indefinite(problem):
    """For any symmetric H: the exact step decreases the model at least as much as the Cauchy
    point (it is the global minimiser over the region, N&W Thm. 4.1)."""
    g, H, radius = problem
    scale = norm(g) * radius + norm(H, 2) * radius**2
    d_exact = tr.exact(g, H, radius).model_decrease
    d_cauchy = tr.cauchy_point(g, H, radius).model_decrease
    assert d_exact >= d_cauchy - 2 * RTOL * scale - 1e3 * g.size * EPS * scale


def test_exact_zero_gradient():
    """g = 0: with H PSD the minimiser is p = 0 (ZERO_GRADIENT); with H indefinite it is the
    hard case p = Delta z for an eigenvector z of lambda_1, lam = -lambda_1."""
    zero = tr.exact(np.zeros(2), np.diag([1.0, 3.0]), 1.0)
    assert zero.status == SubproblemStatus.ZERO_GRADIENT and not np.any(zero.p)
    saddle = tr.exact(np.zeros(2), np.diag([1.0, -3.0]), 2.0)
    assert saddle.status == SubproblemStatus.NEGATIVE_CURVATURE
    assert np.allclose(np.abs(saddle.p), [0.0, 2.0]) and saddle.lam == pytest.approx(3.0)


def test_exact_singular_psd_with_gradient_in_range():
    """H PSD and singular, g in its range, ||H^+ g|| < Delta: lam = 0 and p = -H^+ g solves
    the subproblem (N&W Thm. 4.1 with lam = 0)."""
    H = np.diag([0.0, 2.0])
    res = tr.exact(np.array([0.0, 1.0]), H, 5.0)
    assert res.status == SubproblemStatus.INTERIOR and res.lam == 0.0
    assert np.allclose(res.p, [0.0, -0.5])


# ------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("solver", [tr.cauchy_point, tr.dogleg, tr.exact])
def test_bad_input_raises_value_error(solver):
    """Bad input is rejected up front with a ValueError naming the argument."""
    H = np.eye(2)
    g = np.ones(2)
    with pytest.raises(ValueError, match="radius"):
        solver(g, H, 0.0)
    with pytest.raises(ValueError, match="radius"):
        solver(g, H, -1.0)
    with pytest.raises(ValueError, match="H"):
        solver(g, np.eye(3), 1.0)
    with pytest.raises(ValueError, match="symmetric"):
        solver(g, np.array([[1.0, 1.0], [0.0, 1.0]]), 1.0)
    with pytest.raises(ValueError, match="g"):
        solver(np.array([1.0, np.nan]), H, 1.0)
    with pytest.raises(ValueError, match="H"):
        solver(g, np.array([[1.0, np.inf], [np.inf, 1.0]]), 1.0)
    with pytest.raises(ValueError, match="g"):
        solver(np.zeros(0), np.zeros((0, 0)), 1.0)


def test_exact_bad_options():
    """rtol outside (0, 1) and maxiter < 1 are rejected with a ValueError naming them."""
    with pytest.raises(ValueError, match="rtol"):
        tr.exact(np.ones(2), np.eye(2), 1.0, rtol=0.0)
    with pytest.raises(ValueError, match="maxiter"):
        tr.exact(np.ones(2), np.eye(2), 1.0, maxiter=0)


# ------------------------------------------------------------------------------------------
# Scale and input conversion


A_SPD = np.array([[4.0, 1.0], [1.0, 3.0]])
G = np.array([1.0, 2.0])


@pytest.mark.parametrize("solver", [tr.cauchy_point, tr.dogleg])
@pytest.mark.parametrize("radius", [0.3, 0.6, 10.0])  # first leg, second leg, Newton step
@pytest.mark.parametrize("e", [-664, -531, -332, 332, 498, 664])
def test_scaled_problem_gives_the_scaled_step(solver, radius, e):
    """p(2^e g, 2^e Delta) = 2^e p(g, Delta): ||g||^2 over- or underflowing must not turn the
    step into p = 0 (ZERO_GRADIENT) or a division by zero."""
    reference = solver(G, A_SPD, radius)
    res = solver(np.ldexp(G, e), A_SPD, np.ldexp(radius, e))
    assert res.status is reference.status
    np.testing.assert_allclose(np.ldexp(res.p, -e), reference.p, rtol=1e-14)
    # the decrease g^T p + ... scales by 2^(2e), rounded to the float range (0 or inf at
    # the ends, subnormal in between: absolute tolerance of a few subnormal units)
    with np.errstate(over="ignore", under="ignore"):
        expected = float(np.ldexp(reference.model_decrease, 2 * e))
    assert res.model_decrease == pytest.approx(expected, rel=1e-13, abs=4 * 5e-324)


@pytest.mark.parametrize("solver", [tr.cauchy_point, tr.dogleg])
def test_huge_gradient_with_unit_radius(solver):
    """g ~ 1e200 and Delta = 1: the step is -Delta g / ||g|| on the boundary, and the
    model decrease is Delta ||g|| - Delta^2 g^T H g / (2 ||g||^2) (finite)."""
    res = solver(G * 1e200, A_SPD, 1.0)
    assert res.status is SubproblemStatus.BOUNDARY
    np.testing.assert_allclose(res.p, -G / np.linalg.norm(G), rtol=1e-15)
    kappa = G @ A_SPD @ G / (G @ G)
    assert res.model_decrease == pytest.approx(np.linalg.norm(G) * 1e200 - 0.5 * kappa,
                                               rel=1e-15)


@pytest.mark.parametrize("solver", [tr.cauchy_point, tr.dogleg, tr.exact])
def test_complex_input_is_refused_naming_the_argument(solver):
    """The imaginary part is never dropped silently."""
    with pytest.raises(ValueError, match="^H must be real"):
        solver(G, A_SPD.astype(complex), 1.0)
    with pytest.raises(ValueError, match="^g must be real"):
        solver(G + 0j, A_SPD, 1.0)


@pytest.mark.parametrize("solver", [tr.cauchy_point, tr.dogleg, tr.exact])
def test_zero_dimensional_radius_is_accepted(solver):
    np.testing.assert_array_equal(solver(G, A_SPD, np.array(0.5)).p, solver(G, A_SPD, 0.5).p)
