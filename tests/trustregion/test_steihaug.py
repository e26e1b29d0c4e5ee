"""Steihaug–Toint truncated CG: the properties of Nocedal & Wright (2006), Section 7.1,
Steihaug (1983) and Conn, Gould & Toint (2000), Section 7.5, checked numerically.

The model is m(p) = g^T p + 1/2 p^T H p; tolerances scale with n eps and the sizes of
the terms of m.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import (
    finite_floats,
    indefinite_with_negative_component,
    long_path_subproblems,
    nonzero_vectors,
    spd_with_spectrum,
    symmetric_matrices,
)
from trustregion.result import SubproblemStatus
from trustregion.steihaug import _boundary_taus, _steihaug_iterations, _SteihaugLog

EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------------------
# strategies and helpers








radii = finite_floats(-2.0, 2.0).map(lambda e: 10.0**e)


@st.composite
def subproblems(draw, *, max_n=10):
    """``(g, H, Delta)``: ``H`` symmetric, possibly indefinite or singular, ``g != 0``."""
    n = draw(st.integers(1, max_n))
    return draw(nonzero_vectors(n)), draw(symmetric_matrices(n)), draw(radii)


@st.composite
def preconditioned_subproblems(draw, *, max_n=8):
    """``(g, H, Delta, M)`` with ``M`` SPD, ``kappa(M) <= 10``."""
    g, H, Delta = draw(subproblems(max_n=max_n))
    M, _, _ = draw(spd_with_spectrum(g.shape[0], max_log10_cond=1.0))
    return g, H, Delta, M / draw(finite_floats(0.1, 10.0))


def model(g, H, p):
    return g @ p + 0.5 * p @ H @ p


def model_tolerance(g, H, p, Delta):
    """Rounding scale of m near p: 100 n eps (||g|| r + ||H|| r^2), r = max(||p||, Delta)."""
    r = max(np.linalg.norm(p), Delta)
    return 100 * g.shape[0] * EPS * (np.linalg.norm(g) * r + np.linalg.norm(H, 2) * r * r)


def steihaug_path(g, H, Delta, *, M=None, rtol=1e-12, maxiter=None):
    """The iterates ``p_0 = 0, p_1, ...`` of Steihaug's method (the last one is the step)."""
    log = _SteihaugLog()
    n = g.shape[0]
    iterates = _steihaug_iterations(
        H.dot,
        g,
        psolve=None if M is None else M.dot,
        Delta=Delta,
        tol=rtol * np.linalg.norm(g),
        maxiter=10 * n if maxiter is None else maxiter,
        log=log,
    )
    return [p.copy() for p in iterates], log


def cauchy_point(g, H, Delta):
    """N&W eqs. (4.11)-(4.12): p_C = -tau Delta g / ||g||."""
    gnorm = np.linalg.norm(g)
    gHg = g @ H @ g
    tau = 1.0 if gHg <= 0 else min(gnorm**3 / (Delta * gHg), 1.0)
    return -tau * Delta * g / gnorm


# ---------------------------------------------------------------------------------------------
# the theorems


@given(subproblems())
def test_step_stays_in_the_trust_region(problem):
    """||p|| <= Delta always, and ||p|| = Delta when the step hits the boundary."""
    g, H, Delta = problem
    n = g.shape[0]
    res = tr.steihaug(g, H, Delta)
    norm = np.linalg.norm(res.p)
    assert norm <= Delta * (1 + 100 * n * EPS)
    if res.hits_boundary:
        assert norm == pytest.approx(Delta, rel=100 * n * EPS)
    assert res.hits_boundary == (
        res.status in (SubproblemStatus.BOUNDARY, SubproblemStatus.NEGATIVE_CURVATURE)
    )


@given(subproblems())
def test_iterates_grow_in_norm_and_decrease_the_model(problem):
    """Steihaug (1983), Thm. 2.1 / N&W Thm. 7.3: 0 = ||p_0|| < ||p_1|| < ... and
    m(p_0) > m(p_1) > ...: the path never re-enters the region once it leaves it, and
    every iterate improves the model."""
    g, H, Delta = problem
    path, _ = steihaug_path(g, H, Delta)
    norms = [np.linalg.norm(p) for p in path]
    values = [model(g, H, p) for p in path]
    for j in range(len(path) - 1):
        assert norms[j + 1] >= norms[j] * (1 - 10 * g.shape[0] * EPS)
        assert values[j + 1] <= values[j] + model_tolerance(g, H, path[j + 1], Delta)


@given(preconditioned_subproblems())
def test_preconditioned_iterates_grow_in_the_M_norm(problem):
    """Conn, Gould & Toint (2000), Thm. 7.5.1: with y = M r the iterates grow in
    ||p||_{M^{-1}} = sqrt(p^T M^{-1} p), the model decreases along them, and the step
    satisfies ||p||_{M^{-1}} <= Delta (= Delta on the boundary)."""
    g, H, Delta, M = problem
    n = g.shape[0]
    Minv = np.linalg.inv(M)

    def m_norm(p):
        return np.sqrt(p @ Minv @ p)

    path, log = steihaug_path(g, H, Delta, M=M)
    norms = [m_norm(p) for p in path]
    values = [model(g, H, p) for p in path]
    kappa_M = np.linalg.cond(M)
    for j in range(len(path) - 1):
        assert norms[j + 1] >= norms[j] * (1 - 10 * n * kappa_M * EPS)
        assert values[j + 1] <= values[j] + kappa_M * model_tolerance(g, H, path[j + 1], Delta)
    res = tr.steihaug(g, H, Delta, M=M, rtol=1e-12)
    np.testing.assert_array_equal(res.p, path[-1])
    assert m_norm(res.p) <= Delta * (1 + 100 * n * kappa_M * EPS)
    if res.hits_boundary:
        assert m_norm(res.p) == pytest.approx(Delta, rel=100 * n * kappa_M * EPS)


@given(subproblems())
def test_fraction_of_cauchy_decrease(problem):
    """The first iterate is the Cauchy point and the model decreases afterwards, so
    m(0) - m(p) >= m(0) - m(p_C) >= 1/2 ||g|| min(Delta, ||g|| / ||H||)
    (N&W Lemma 4.3 and eq. (4.20)), with p_C from N&W eqs. (4.11)-(4.12)."""
    g, H, Delta = problem
    res = tr.steihaug(g, H, Delta)
    decrease = -model(g, H, res.p)
    p_C = cauchy_point(g, H, Delta)
    tol = model_tolerance(g, H, res.p, Delta)
    gnorm = np.linalg.norm(g)
    H_norm = np.linalg.norm(H, 2)
    bound = 0.5 * gnorm * (Delta if H_norm == 0 else min(Delta, gnorm / H_norm))
    assert decrease >= -model(g, H, p_C) - tol
    assert decrease >= bound - tol


@given(subproblems())
def test_model_decrease_is_reported_correctly(problem):
    """model_decrease = m(0) - m(p) >= 0, computed without extra products with H."""
    g, H, Delta = problem
    res = tr.steihaug(g, H, Delta)
    assert res.model_decrease >= 0.0
    assert res.model_decrease == pytest.approx(
        -model(g, H, res.p), abs=model_tolerance(g, H, res.p, Delta)
    )
    assert res.nmatvec == res.nit


@st.composite
def newton_problems(draw):
    H, lam, _ = draw(spd_with_spectrum(max_n=10, max_log10_cond=4.0))
    g = draw(nonzero_vectors(H.shape[0]))
    p_newton = -np.linalg.solve(H, g)
    factor = draw(finite_floats(1.01, 100.0))
    return g, H, factor * np.linalg.norm(p_newton), p_newton, lam.max() / lam.min()


@given(newton_problems())
def test_interior_solution_is_the_newton_step(problem):
    """If H > 0 and ||H^{-1} g|| < Delta, the iterates (growing in norm towards the Newton
    step) stay inside and the solution is p = -H^{-1} g (to kappa (rtol + 100 n eps))."""
    g, H, Delta, p_newton, kappa = problem
    n = g.shape[0]
    res = tr.steihaug(g, H, Delta, rtol=1e-12)
    assert res.status is SubproblemStatus.INTERIOR
    assert not res.hits_boundary
    err = np.linalg.norm(res.p - p_newton)
    assert err <= kappa * (1e-12 + 100 * n * EPS) * np.linalg.norm(p_newton)


@given(newton_problems())
def test_default_forcing_tolerance(problem):
    """With rtol=None an interior solve stops at ||g + H p|| <= min(1/2, sqrt||g||) ||g||
    (scipy's trust-ncg forcing term)."""
    g, H, Delta, _, kappa = problem
    res = tr.steihaug(g, H, Delta)
    assert res.status is SubproblemStatus.INTERIOR
    gnorm = np.linalg.norm(g)
    residual = np.linalg.norm(g + H @ res.p)
    rounding = 100 * g.shape[0] * kappa * EPS * gnorm
    assert residual <= min(0.5, np.sqrt(gnorm)) * gnorm + rounding


@st.composite
def negative_definite_problems(draw):
    H, _, _ = draw(spd_with_spectrum(max_n=8, max_log10_cond=3.0))
    return draw(nonzero_vectors(H.shape[0])), -H, draw(radii)


@given(negative_definite_problems())
def test_negative_curvature_on_the_first_direction_gives_the_cauchy_point(problem):
    """H < 0: d_0 = -g has g^T H g < 0, so the step is the boundary point -Delta g / ||g||
    after one iteration (N&W Alg. 7.2, first branch)."""
    g, H, Delta = problem
    res = tr.steihaug(g, H, Delta)
    assert res.status is SubproblemStatus.NEGATIVE_CURVATURE
    assert res.nit == 1
    assert res.hits_boundary
    np.testing.assert_allclose(res.p, -Delta * g / np.linalg.norm(g), rtol=0, atol=1e-14 * Delta)


@st.composite
def indefinite_problems(draw, max_n=8):
    """``(g, H, radius)`` with ``g`` reaching a negative eigenvector of ``H``."""
    H, g = draw(indefinite_with_negative_component(max_n))
    return g, H, draw(radii)


@given(indefinite_problems())
def test_negative_curvature_leads_to_the_boundary(problem):
    """When g has a component on a negative eigenvector, the Krylov space holds negative
    curvature, so the step cannot end inside: it lies on the boundary, and at a
    negative-curvature exit it is the intersection of lower model value."""
    g, H, Delta = problem
    n = g.shape[0]
    path, log = steihaug_path(g, H, Delta)
    res = tr.steihaug(g, H, Delta, rtol=1e-12)
    np.testing.assert_array_equal(res.p, path[-1])
    assert res.hits_boundary
    assert np.linalg.norm(res.p) == pytest.approx(Delta, rel=100 * n * EPS)
    if res.status is SubproblemStatus.NEGATIVE_CURVATURE:
        # the other intersection of the line through p_j and p with the sphere
        p_j, u = path[-2], path[-1] - path[-2]
        a, b, c = u @ u, 2 * p_j @ u, p_j @ p_j - Delta**2
        t_other = c / a  # the roots multiply to c / a and one of them is t = 1
        other = p_j + t_other * u
        assert model(g, H, res.p) <= model(g, H, other) + model_tolerance(g, H, res.p, Delta)
        assert b * b - 4 * a * c >= 0


def test_negative_curvature_may_prefer_the_backward_intersection():
    """Both boundary points along d_j are compared; the forward one is not always lower.

    H = diag(0.97, -1.27), g = (-0.13, 0.066), Delta = 2: p_1 = (0.254, -0.129); d_1 has
    negative curvature, and the intersection behind p_1 (r_1^T (p - p_1) > 0, uphill at
    first) has the lower model value, -1.2047 against -1.1327 ahead."""
    g = np.array([-0.13, 0.066])
    H = np.diag([0.97, -1.27])
    Delta = 2.0
    path, _ = steihaug_path(g, H, Delta)
    res = tr.steihaug(g, H, Delta)
    assert res.status is SubproblemStatus.NEGATIVE_CURVATURE
    assert res.nit == 2
    p_1, u = path[-2], path[-1] - path[-2]
    assert (g + H @ p_1) @ u > 0  # the step went backwards along d_1
    forward = p_1 + ((p_1 @ p_1 - Delta**2) / (u @ u)) * u
    assert np.linalg.norm(forward) == pytest.approx(Delta)
    assert model(g, H, res.p) < model(g, H, forward) - 0.05


@given(subproblems())
def test_identity_preconditioner_reproduces_the_euclidean_solver(problem):
    """M = I makes y = r and P d = d exactly, so the step is bit-identical to M = None."""
    g, H, Delta = problem
    plain = tr.steihaug(g, H, Delta)
    with_identity = tr.steihaug(g, H, Delta, M=np.eye(g.shape[0]))
    np.testing.assert_array_equal(plain.p, with_identity.p)
    assert plain.status is with_identity.status
    assert plain.nit == with_identity.nit


# ---------------------------------------------------------------------------------------------
# edge cases and statuses


@given(st.integers(1, 8).flatmap(symmetric_matrices), radii)
def test_zero_gradient_gives_zero_step(H, Delta):
    """g = 0: p = 0 with status ZERO_GRADIENT (no information about curvature), no products."""
    n = H.shape[0]
    res = tr.steihaug(np.zeros(n), H, Delta)
    assert res.status is SubproblemStatus.ZERO_GRADIENT
    np.testing.assert_array_equal(res.p, np.zeros(n))
    assert res.nit == 0
    assert res.nmatvec == 0
    assert res.model_decrease == 0.0
    assert not res.hits_boundary


def test_maxiter_returns_the_last_iterate():
    """maxiter = 1 with the Newton step far inside: the first iterate (the interior
    Cauchy point), status MAX_ITERATIONS."""
    H = np.diag([1.0, 2.0, 3.0])
    g = np.ones(3)
    res = tr.steihaug(g, H, 100.0, rtol=1e-12, maxiter=1)
    assert res.status is SubproblemStatus.MAX_ITERATIONS
    assert not res.success
    np.testing.assert_allclose(res.p, -(g @ g) / (g @ H @ g) * g, rtol=1e-15)


def test_indefinite_preconditioner_reports_breakdown():
    """r^T M r <= 0: the preconditioner is not positive definite; BREAKDOWN, p = 0."""
    res = tr.steihaug(np.ones(2), np.eye(2), 1.0, M=-np.eye(2))
    assert res.status is SubproblemStatus.BREAKDOWN
    assert not res.success
    np.testing.assert_array_equal(res.p, np.zeros(2))


def test_non_finite_hessian_product_reports_status():
    """NaN from H ends the solve with NON_FINITE and the last finite iterate."""
    calls = {"n": 0}

    def hessp(v):
        calls["n"] += 1
        out = np.arange(1.0, 4.0) * v
        if calls["n"] == 2:
            out[1] = np.nan
        return out

    res = tr.steihaug(np.ones(3), hessp, 100.0, rtol=1e-12)
    assert res.status is SubproblemStatus.NON_FINITE
    assert not res.success
    assert res.nit == 1
    assert np.all(np.isfinite(res.p))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"radius": 0.0}, "radius"),
        ({"radius": -1.0}, "radius"),
        ({"radius": np.nan}, "radius"),
        ({"radius": "1"}, "radius"),
        ({"g": np.ones(3)}, "H"),
        ({"g": np.array([1.0, np.inf])}, "g"),
        ({"g": np.ones((2, 1))}, "g"),
        ({"H": np.ones((2, 3))}, "H"),
        ({"H": np.array([[1.0, np.nan], [0.0, 1.0]])}, "H"),
        ({"H": None}, "H"),
        ({"M": np.eye(3)}, "M"),
        ({"rtol": -0.1}, "rtol"),
        ({"atol": np.inf}, "atol"),
        ({"maxiter": -2}, "maxiter"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, name):
    """Invalid input is rejected before any work with a ValueError naming the argument."""
    args = {"g": np.ones(2), "H": np.eye(2), "radius": 1.0}
    args.update(kwargs)
    g, H, radius = args.pop("g"), args.pop("H"), args.pop("radius")
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        tr.steihaug(g, H, radius, **args)


# ---------------------------------------------------------------------------------------------
# input conversion and scale


A_SPD = np.array([[4.0, 1.0], [1.0, 3.0]])
G = np.array([1.0, 2.0])


def test_gradient_given_as_a_list_or_float32_is_converted():
    """Lists and float32 arrays are converted to float64 and give the float64 step exactly."""
    reference = tr.steihaug(G, A_SPD, 1.0)
    for g in ([1.0, 2.0], np.array([1, 2]), G.astype(np.float32)):
        np.testing.assert_array_equal(tr.steihaug(g, A_SPD, 1.0).p, reference.p)


@pytest.mark.parametrize(
    ("g_exp", "H_exp", "radius"),
    [
        (266, 0, 0.3),  # g ~ 1e80, Delta ~ 1e80: b^2 - 4ac overflowed, p = 0 on the "boundary"
        (266, 0, 10.0),
        (0, -498, 1e10),  # H ~ 1e-150, Delta ~ 1e160: Delta^2 overflowed, p = inf
        (-299, 0, 10.0),  # g ~ 1e-90, Delta ~ 1e-90: ZeroDivisionError in the boundary roots
        (-299, 0, 0.3),
        (664, 0, 10.0),  # g ~ 1e200: ||g|| overflowed, p = 0 "INTERIOR"
        (-664, 0, 0.3),  # g ~ 1e-200: ||g|| underflowed, "ZERO_GRADIENT"
    ],
)
def test_extreme_scales_give_the_exactly_scaled_step(g_exp, H_exp, radius):
    """Steihaug's method is equivariant under (g, H, Delta) -> (2^a g, 2^b H, 2^(a-b) Delta),
    p -> 2^(a-b) p, exactly in floating point while nothing over- or underflows; far from
    1 the answer must still be the scaled answer at ordinary scale, bit for bit."""
    reference = tr.steihaug(G, A_SPD, radius, rtol=1e-10)
    shift = g_exp - H_exp
    with np.errstate(over="raise", under="ignore"):
        res = tr.steihaug(np.ldexp(G, g_exp), np.ldexp(A_SPD, H_exp),
                          np.ldexp(radius, shift), rtol=1e-10)
    assert res.status is reference.status
    np.testing.assert_array_equal(res.p, np.ldexp(reference.p, shift))
    with np.errstate(over="ignore"):  # the decrease itself overflows for g ~ 1e200
        assert res.model_decrease == np.ldexp(reference.model_decrease, g_exp + shift)
    assert res.nit == reference.nit


@pytest.mark.parametrize(("g_scale", "radius"), [(1e-300, 1e10), (1e-310, 1.0),
                                                 (1e-300, 1e300), (1e-200, 1e120),
                                                 (1e-150, 1e160)])
def test_newton_step_deep_inside_an_out_of_range_radius(g_scale, radius):
    """Delta ||H|| / ||g|| beyond the float range (the scaled H overflows): the Newton step
    -H^{-1} g, far inside the region, is found, not p = 0 reported as NON_FINITE."""
    g = G * g_scale
    res = tr.steihaug(g, A_SPD, radius, rtol=1e-12)
    assert res.status is SubproblemStatus.INTERIOR and res.success
    newton = -np.linalg.solve(A_SPD, G) * g_scale
    np.testing.assert_allclose(res.p, newton, rtol=1e-9)
    # 1/2 g^T H^-1 g, which underflows here: its rounding, to a few subnormal units
    expected = 0.5 * float(G @ np.linalg.solve(A_SPD, G)) * g_scale * g_scale
    assert res.model_decrease == pytest.approx(expected, rel=1e-9, abs=4 * 5e-324)


def test_negative_curvature_out_to_an_out_of_range_radius():
    """An indefinite H with Delta ||H|| / ||g|| beyond the float range: the step follows the
    negative curvature to the boundary ||p|| = Delta, with the decrease of the quadratic
    model at that step (its overflow reported as inf, not NaN)."""
    H = np.diag([1.0, -2.0, 3.0])
    g = np.array([1.0, 1.0, -1.0]) * 1e-300
    res = tr.steihaug(g, H, 1e10)
    assert res.status is SubproblemStatus.NEGATIVE_CURVATURE and res.hits_boundary
    assert np.linalg.norm(res.p) == pytest.approx(1e10, rel=1e-12)
    assert res.model_decrease == pytest.approx(-(g @ res.p + 0.5 * res.p @ H @ res.p),
                                               rel=1e-12)
    assert res.model_decrease > 0.0
    huge = tr.steihaug(g, H, 1e300)
    assert huge.status is SubproblemStatus.NEGATIVE_CURVATURE
    np.testing.assert_allclose(huge.p, res.p * 1e290, rtol=1e-12)
    assert huge.model_decrease == np.inf


@pytest.mark.parametrize(("H", "status"), [
    (np.diag([1.0, 2.0, 3.0]), SubproblemStatus.BOUNDARY),
    (np.diag([1.0, -5.0, 1.0]), SubproblemStatus.NEGATIVE_CURVATURE),
])
def test_curvature_below_the_float_range_keeps_its_sign(H, status):
    """Delta ||H|| / ||g|| below the float range (the scaled H d underflows to 0): the step
    is the boundary point along -g either way, and its status follows the sign of the
    curvature g^T H g (positive: BOUNDARY, not NEGATIVE_CURVATURE)."""
    g = np.array([1.0, 1.0, 1.0]) * 1e300
    res = tr.steihaug(g, H, 1e-300)
    assert res.status is status and res.hits_boundary
    np.testing.assert_allclose(res.p, -np.ones(3) / np.sqrt(3.0) * 1e-300, rtol=1e-12)


def test_huge_gradient_takes_the_step_the_exact_solver_confirms():
    """g ~ 1e80 with Delta = 1e80 and the default forcing tolerance: a nonzero interior step
    with the model decrease of a CG iterate, not p = 0 reported as a boundary step."""
    g = G * 1e80
    res = tr.steihaug(g, A_SPD, 1e80)
    assert res.status is SubproblemStatus.INTERIOR
    assert 0.0 < np.linalg.norm(res.p) < 1e80
    assert res.model_decrease == pytest.approx(-(g @ res.p + 0.5 * res.p @ A_SPD @ res.p),
                                               rel=1e-12)
    exact = tr.exact(g, A_SPD, 1e80)
    assert exact.status is SubproblemStatus.INTERIOR  # the region does not bind
    assert res.model_decrease >= 0.5 * exact.model_decrease


@pytest.mark.parametrize(
    ("pPp", "pPd", "dPd", "Delta2", "expected"),
    [
        (0.0, 0.0, 5e160, 1e160, np.sqrt(0.2)),  # 4ac overflows
        (0.0, 0.0, 1e-180, 1e-180, 1.0),  # 4ac underflows to 0
        (0.0, 0.0, 4.0, 1.0, 0.5),  # ordinary: the fast formula
    ],
)
def test_boundary_roots_survive_over_and_underflow(pPp, pPd, dPd, Delta2, expected):
    """From p = 0 the crossings of ||tau d|| = Delta are tau = +-Delta / ||d||, however large
    or small the squares are."""
    tau_lo, tau_hi = _boundary_taus(pPp, pPd, dPd, Delta2)
    assert tau_lo == pytest.approx(-expected, rel=1e-15)
    assert tau_hi == pytest.approx(expected, rel=1e-15)


def test_dense_non_symmetric_hessian_is_refused():
    """A dense H (or M) must be symmetric, tested as the dense subproblem solvers test it."""
    N = np.array([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="^H must be symmetric"):
        tr.steihaug(G, N, 1.0)
    with pytest.raises(ValueError, match="^M must be symmetric"):
        tr.steihaug(G, A_SPD, 1.0, M=N)


@pytest.mark.parametrize(
    ("kwargs", "name", "message"),
    [
        ({"g": G + 1j}, "g", "must be real"),
        ({"H": A_SPD.astype(complex)}, "H", "must be real"),
        ({"g": np.zeros(0), "H": np.zeros((0, 0))}, "g", "must have at least one entry"),
        ({"H": lambda v: np.ones(3)}, "H", "returned an array of shape"),
        ({"radius": np.array([1.0])}, "radius", "must be a positive real number"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, name, message):
    """Complex or empty input and wrong-size products are refused with the argument named."""
    args = {"g": G, "H": A_SPD, "radius": 1.0} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} {message}"):
        tr.steihaug(args["g"], args["H"], args["radius"])


def test_zero_dimensional_arrays_are_accepted_as_scalar_options():
    """radius, rtol and atol given as 0-d numpy arrays act like the numbers."""
    plain = tr.steihaug(G, A_SPD, 0.5, rtol=1e-3, atol=0.0)
    wrapped = tr.steihaug(G, A_SPD, np.array(0.5), rtol=np.array(1e-3), atol=np.array(0.0))
    np.testing.assert_array_equal(wrapped.p, plain.p)


def test_interior_message_says_what_was_checked():
    """INTERIOR is a CG iterate inside the region that met the tolerance; the message says
    so rather than claiming the subproblem's solution."""
    res = tr.steihaug(G, A_SPD, 10.0)
    assert res.status is SubproblemStatus.INTERIOR
    assert "tolerance" in res.message and "the solution lies" not in res.message


# ---------------------------------------------------------------------------------------------
# long paths on SPD problems: many interior steps, then the boundary or the Newton step


@pytest.mark.parametrize("preconditioned", [False, True])
@given(data=st.data())
def test_long_spd_paths_reach_the_boundary_or_the_newton_step(preconditioned, data):
    """On SPD H (and SPD M) Steihaug's iterates stay interior until they cross
    ||p||_{M^{-1}} = Delta (Steihaug 1983, Thm. 2.1), so: with Delta below the Newton step's
    norm the result is BOUNDARY with ||p||_{M^{-1}} = Delta, reached after interior
    iterates and improving the model on the last of them; with Delta above it the result
    is INTERIOR and equal to the Newton step -H^{-1} g within the CG tolerance. Never
    BREAKDOWN, NON_FINITE or NEGATIVE_CURVATURE. Tolerances: 100 n kappa(M) eps on the
    norm; kappa(H) rtol on the Newton step."""
    g, H, Delta, M, c = data.draw(long_path_subproblems(preconditioned=preconditioned))
    n = g.shape[0]
    Minv = np.eye(n) if M is None else np.linalg.inv(M)
    kappa_M = 1.0 if M is None else np.linalg.cond(M)

    def m_norm(p):
        return np.sqrt(p @ Minv @ p)

    rtol = 1e-12
    res = tr.steihaug(g, H, Delta, M=M, rtol=rtol)
    path, _ = steihaug_path(g, H, Delta, M=M, rtol=rtol)
    np.testing.assert_array_equal(res.p, path[-1])
    assert res.nit == len(path) - 1
    interior = path[:-1]
    assert all(m_norm(p) < Delta * (1 + 100 * n * kappa_M * EPS) for p in interior)
    tol = model_tolerance(g, H, res.p, Delta) * kappa_M
    if c < 1.0:
        assert res.status is SubproblemStatus.BOUNDARY and res.hits_boundary
        assert m_norm(res.p) == pytest.approx(Delta, rel=100 * n * kappa_M * EPS)
        assert model(g, H, res.p) <= model(g, H, interior[-1]) + tol
    else:
        assert res.status is SubproblemStatus.INTERIOR and not res.hits_boundary
        newton = -np.linalg.solve(H, g)
        kappa_H = np.linalg.cond(H)
        assert np.linalg.norm(res.p - newton) <= 100 * kappa_H * kappa_M * rtol * (
            np.linalg.norm(newton))
    assert res.model_decrease == pytest.approx(-model(g, H, res.p), rel=1e-9, abs=tol)
