"""The natural-gradient step of NPG / TRPO (Schulman et al. 2015, App. C; Kakade 2001),
checked numerically: the step lies on the quadratic KL boundary, its direction is
F^{-1} g, and that direction does not depend on the parameterisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import (
    finite_floats,
    nonzero_vectors,
    orthogonal_matrices,
    spd_matrices,
    spd_with_spectrum,
    vectors,
)
from trustregion.result import CGStatus, StepStatus

EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------------------
# strategies








max_kls = finite_floats(-4.0, 0.0).map(lambda e: 10.0**e)


@st.composite
def fisher_problems(draw, *, max_n=12, max_log10_cond=6.0):
    """``(g, F, kappa)``: ``F`` SPD with condition number ``kappa``, ``g != 0``."""
    F, lam, _ = draw(spd_with_spectrum(max_n=max_n, max_log10_cond=max_log10_cond))
    return draw(nonzero_vectors(F.shape[0])), F, lam.max() / lam.min()


@st.composite
def reparameterisations(draw, n):
    """An invertible ``A = Q1 diag(s) Q2^T`` with singular values ``s`` in ``[1/2, 2]``."""
    Q1 = draw(orthogonal_matrices(n))
    Q2 = draw(orthogonal_matrices(n))
    s = draw(vectors(n, min_value=0.5, max_value=2.0))
    return (Q1 * s) @ Q2.T


# ---------------------------------------------------------------------------------------------
# the theorems


def curvature_rounding(d, F, g):
    """Rounding bound for d^T F d computed as d^T (g - (g - F d)) or as d^T (F d):
    100 n eps |d|^T (|g| + |F| |d|), relative to d^T F d (Higham 2002, Sec. 3.1)."""
    d_abs = np.abs(d)
    bound = 100 * d.shape[0] * EPS * d_abs @ (np.abs(g) + np.abs(F) @ d_abs)
    return bound / (d @ F @ d)


@given(fisher_problems(), max_kls)
def test_quadratic_kl_equals_max_kl(problem, max_kl):
    """beta = sqrt(2 delta / d^T F d) puts the step on the boundary: 1/2 s^T F s = delta
    (Schulman et al. 2015, App. C), for the truncated (10-iteration) CG direction too."""
    g, F, _ = problem
    res = tr.natural_step(g, F, max_kl)
    assert res.status is StepStatus.OK
    assert res.success
    assert res.quadratic_kl == pytest.approx(max_kl, rel=10 * EPS)
    np.testing.assert_array_equal(res.step, res.beta * res.direction)
    dense_kl = 0.5 * res.step @ F @ res.step
    assert dense_kl == pytest.approx(max_kl, rel=curvature_rounding(res.direction, F, g))


@given(fisher_problems(), max_kls)
def test_curvature_is_d_F_d_and_improvement_is_positive(problem, max_kl):
    """curvature = d^T F d (taken from CG's true residual, F d = g - r, with no extra
    product), and the predicted improvement g^T s is positive."""
    g, F, _ = problem
    res = tr.natural_step(g, F, max_kl)
    d = res.direction
    assert res.curvature == pytest.approx(d @ F @ d, rel=curvature_rounding(d, F, g))
    assert res.expected_improvement > 0.0


@given(fisher_problems(max_log10_cond=0.5), max_kls)
def test_expected_improvement_follows_from_the_galerkin_condition(problem, max_kl):
    """For CG from d_0 = 0 the residual is orthogonal to d_k (Galerkin), so g^T d = d^T F d
    and g^T s = beta d^T F d = sqrt(2 delta d^T F d) (Schulman et al. 2015, App. C).
    Checked where finite-precision CG keeps orthogonality (kappa <= 10^0.5), to 100 n kappa eps."""
    g, F, kappa = problem
    res = tr.natural_step(g, F, max_kl)
    assert res.expected_improvement == pytest.approx(
        np.sqrt(2 * max_kl * res.curvature), rel=100 * g.shape[0] * kappa * EPS
    )


@given(fisher_problems(max_log10_cond=4.0), max_kls)
def test_direction_is_the_natural_gradient(problem, max_kl):
    """Run to convergence, the direction is d = F^{-1} g (to kappa (rtol + 100 n eps))."""
    g, F, kappa = problem
    n = g.shape[0]
    res = tr.natural_step(g, F, max_kl, rtol=1e-12, maxiter=10 * n)
    assert res.cg.status is CGStatus.CONVERGED
    d_star = np.linalg.solve(F, g)
    err = np.linalg.norm(res.direction - d_star)
    assert err <= kappa * (1e-12 + 100 * n * EPS) * np.linalg.norm(d_star)


@st.composite
def reparameterised_problems(draw):
    g, F, kappa = draw(fisher_problems(max_n=8, max_log10_cond=3.0))
    return g, F, kappa, draw(reparameterisations(g.shape[0]))


@given(reparameterised_problems(), max_kls)
def test_natural_gradient_is_invariant_under_linear_reparameterisation(problem, max_kl):
    """theta = A phi gives g_phi = A^T g and F_phi = A^T F A, so
    d_phi = F_phi^{-1} g_phi = A^{-1} F^{-1} g: A d_phi = d_theta, the same step
    (A s_phi = s_theta) and the same predicted improvement and KL (Kakade 2001)."""
    g, F, kappa, A = problem
    n = g.shape[0]
    F_phi = A.T @ F @ A
    F_phi = 0.5 * (F_phi + F_phi.T)
    theta = tr.natural_step(g, F, max_kl, rtol=1e-13, maxiter=10 * n)
    phi = tr.natural_step(A.T @ g, F_phi, max_kl, rtol=1e-13, maxiter=10 * n)
    kappa_phi = kappa * np.linalg.cond(A) ** 2
    tol = 1e3 * n * kappa_phi * EPS
    np.testing.assert_allclose(
        A @ phi.direction, theta.direction, rtol=0, atol=tol * np.linalg.norm(theta.direction)
    )
    np.testing.assert_allclose(
        A @ phi.step, theta.step, rtol=0, atol=tol * np.linalg.norm(theta.step)
    )
    assert phi.expected_improvement == pytest.approx(theta.expected_improvement, rel=tol)
    assert phi.quadratic_kl == pytest.approx(theta.quadratic_kl, rel=10 * EPS)


@st.composite
def rotated_problems(draw):
    g, F, kappa = draw(fisher_problems(max_n=10, max_log10_cond=3.0))
    return g, F, kappa, draw(orthogonal_matrices(g.shape[0]))


@given(rotated_problems(), max_kls)
def test_truncated_step_is_invariant_under_rotations(problem, max_kl):
    """For an orthogonal reparameterisation theta = Q phi the Krylov spaces rotate with it
    (K_k(Q^T F Q, Q^T g) = Q^T K_k(F, g)), so even a truncated CG step (3 iterations)
    satisfies Q s_phi = s_theta."""
    g, F, kappa, Q = problem
    n = g.shape[0]
    F_phi = Q.T @ F @ Q
    F_phi = 0.5 * (F_phi + F_phi.T)
    theta = tr.natural_step(g, F, max_kl, maxiter=3)
    phi = tr.natural_step(Q.T @ g, F_phi, max_kl, maxiter=3)
    tol = 1e3 * n * kappa * EPS * np.linalg.norm(theta.step)
    np.testing.assert_allclose(Q @ phi.step, theta.step, rtol=0, atol=tol)


# ---------------------------------------------------------------------------------------------
# no step, statuses and counts


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(spd_matrices(n), nonzero_vectors(n))), max_kls)
def test_negative_definite_fisher_gives_no_step(problem, max_kl):
    """F < 0: g^T F g < 0 on CG's first direction, so there is no direction and no step
    (status NONPOSITIVE_CURVATURE, step 0), never a step scaled by a fudged curvature."""
    F, g = problem
    res = tr.natural_step(g, -F, max_kl)
    assert res.status is StepStatus.NONPOSITIVE_CURVATURE
    assert not res.success
    np.testing.assert_array_equal(res.step, np.zeros_like(g))
    assert res.beta == 0.0
    assert res.expected_improvement == 0.0
    assert res.quadratic_kl == 0.0


def test_zero_fisher_gives_no_step():
    """F = 0 (d^T F d = 0): no step, status NONPOSITIVE_CURVATURE."""
    res = tr.natural_step(np.ones(3), np.zeros((3, 3)), 0.01)
    assert res.status is StepStatus.NONPOSITIVE_CURVATURE
    np.testing.assert_array_equal(res.step, np.zeros(3))


def test_later_negative_curvature_keeps_the_positive_curvature_direction():
    """If CG meets p^T F p <= 0 after its first iteration, the last iterate is a combination
    of directions of positive curvature and is used (d^T F d > 0)."""
    F = np.diag([4.0, -1.0])
    g = np.array([1.0, 0.5])
    res = tr.natural_step(g, F, 0.01)
    assert res.cg.status is CGStatus.NONPOSITIVE_CURVATURE
    assert res.cg.nit == 1
    assert res.status is StepStatus.OK
    assert res.curvature > 0
    assert res.quadratic_kl == pytest.approx(0.01)


def test_zero_gradient_gives_no_step():
    """g = 0: nothing to improve, status ZERO_GRADIENT, no products with F."""
    res = tr.natural_step(np.zeros(4), np.eye(4), 0.01)
    assert res.status is StepStatus.ZERO_GRADIENT
    assert res.cg.nmatvec == 0
    np.testing.assert_array_equal(res.step, np.zeros(4))


def test_non_finite_fisher_product_gives_no_step():
    """NaN from F: status NON_FINITE and no step."""
    res = tr.natural_step(np.ones(2), lambda v: np.full(2, np.nan), 0.01)
    assert res.status is StepStatus.NON_FINITE
    np.testing.assert_array_equal(res.step, np.zeros(2))


@given(fisher_problems(), max_kls)
def test_truncated_cg_is_normal_and_costs_one_product_per_iteration(problem, max_kl):
    """At most maxiter = 10 CG iterations (Schulman et al. 2015); stopping on the limit is
    still a step, and d^T F d comes from CG's own true residual: nit + 1 products."""
    g, F, _ = problem
    res = tr.natural_step(g, F, max_kl)
    assert res.cg.nit <= 10
    assert res.status is StepStatus.OK
    assert res.cg.nmatvec == res.cg.nit + 1


def test_x0_is_not_modified():
    """A warm start is copied, never written into."""
    x0 = np.array([0.5, -0.5])
    before = x0.copy()
    tr.natural_step(np.ones(2), np.diag([1.0, 2.0]), 0.01, x0=x0)
    np.testing.assert_array_equal(x0, before)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_kl": 0.0}, "max_kl"),
        ({"max_kl": -0.01}, "max_kl"),
        ({"max_kl": np.inf}, "max_kl"),
        ({"max_kl": None}, "max_kl"),
        ({"g": np.array([1.0, np.nan])}, "g"),
        ({"g": np.ones(3)}, "F"),
        ({"F": np.ones((2, 3))}, "F"),
        ({"x0": np.ones(3)}, "x0"),
        ({"maxiter": -1}, "maxiter"),
        ({"rtol": -1.0}, "rtol"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, name):
    """Invalid input is rejected before any work with a ValueError naming the argument."""
    args = {"g": np.ones(2), "F": np.eye(2), "max_kl": 0.01}
    args.update(kwargs)
    g, F, max_kl = args.pop("g"), args.pop("F"), args.pop("max_kl")
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        tr.natural_step(g, F, max_kl, **args)


# ---------------------------------------------------------------------------------------------
# input conversion, scale and options


F_SPD = np.array([[4.0, 1.0], [1.0, 3.0]])


def test_gradient_given_as_a_list_is_converted():
    """A list (or integer array) gradient gives exactly the float64 answer."""
    reference = tr.natural_step(np.array([1.0, 2.0]), F_SPD, 0.01)
    for g in ([1.0, 2.0], np.array([1, 2])):
        np.testing.assert_array_equal(tr.natural_step(g, F_SPD, 0.01).step, reference.step)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300])
def test_step_is_scale_invariant_at_extreme_scales(scale):
    """beta d does not depend on the scale of g (beta ~ 1 / ||g||). Where d^T F d under- or
    overflows the step must still be the one at ordinary scale, with the KL on the boundary."""
    g = np.array([1.0, -1.0])
    reference = tr.natural_step(g, F_SPD, 0.01)
    res = tr.natural_step(g * scale, F_SPD, 0.01)
    assert res.status is StepStatus.OK
    np.testing.assert_allclose(res.step, reference.step, rtol=1e-14)
    assert res.quadratic_kl == pytest.approx(0.01, rel=1e-14)
    assert res.expected_improvement == pytest.approx(reference.expected_improvement * scale,
                                                     rel=1e-14)


def test_dense_non_symmetric_fisher_is_refused():
    """A dense F must be symmetric, tested as the dense subproblem solvers test H."""
    with pytest.raises(ValueError, match="^F must be symmetric"):
        tr.natural_step(np.ones(2), np.array([[1.0, 2.0], [0.0, 1.0]]), 0.01)


def test_maxiter_zero_is_refused():
    """No CG iteration means no direction: maxiter = 0 is an input error, not a curvature
    status."""
    with pytest.raises(ValueError, match=r"^maxiter must be an integer >= 1 or None; got 0 "
                                         r"\(the direction d ~= F\^\{-1\} g needs at least "
                                         r"one CG iteration\)$"):
        tr.natural_step(np.ones(2), F_SPD, 0.01, maxiter=0)


def test_complex_gradient_is_refused():
    with pytest.raises(ValueError, match="^g must be real"):
        tr.natural_step(np.array([1.0 + 1j, 0.0]), F_SPD, 0.01)


def test_warm_start_that_leaves_a_descent_direction_takes_no_step():
    """A warm start x0 can leave CG (here after one iteration) at a d with g^T d < 0: the
    step would lower the linear model it is meant to raise, so there is no step and the
    status says why; from zero, or from a good warm start, the same problem steps."""
    F = np.diag([1.0, 100.0])
    g = np.array([1.0, 1.0])
    res = tr.natural_step(g, F, 0.01, x0=[-3.0, 0.0], maxiter=1)
    assert float(g @ res.direction) < 0.0
    assert res.status is StepStatus.NOT_ASCENT and not res.success
    np.testing.assert_array_equal(res.step, np.zeros(2))
    assert res.expected_improvement == 0.0 and "warm start" in res.status.message
    for x0 in (None, [3.0, 0.0]):
        ok = tr.natural_step(g, F, 0.01, x0=x0, maxiter=1)
        assert ok.status is StepStatus.OK and ok.expected_improvement > 0.0


# ------------------------------------------------------- the arguments passed through to CG
def test_preconditioner_is_used_an_exact_inverse_solves_in_one_iteration():
    """M ~ F^{-1} reaches CG: with M = F^{-1} one iteration gives d = F^{-1} g exactly (to
    rounding), where plain CG on four distinct eigenvalues needs four; the step is the
    same natural step either way."""
    F = np.diag([1.0, 4.0, 9.0, 16.0])
    g = np.array([1.0, -1.0, 2.0, 0.5])
    exact = np.linalg.solve(F, g)
    pre = tr.natural_step(g, F, 0.01, M=np.linalg.inv(F), maxiter=1)
    plain = tr.natural_step(g, F, 0.01, maxiter=1)
    assert pre.cg.nit == 1 and pre.status is StepStatus.OK
    np.testing.assert_allclose(pre.direction, exact, rtol=8 * EPS, atol=0)
    assert np.linalg.norm(plain.direction - exact) > 0.1 * np.linalg.norm(exact)
    full = tr.natural_step(g, F, 0.01, maxiter=4, rtol=0.0)
    np.testing.assert_allclose(pre.step, full.step, rtol=1e-13)


def test_atol_stops_cg_once_the_residual_is_below_it():
    """atol reaches CG's stopping test ||g - F d|| <= max(rtol ||g||, atol): a loose atol
    stops after fewer iterations than atol = 0 and the residual then meets it; the
    step is still on the KL boundary."""
    F = np.diag([1.0, 2.0, 5.0, 10.0, 20.0])
    g = np.ones(5)
    tight = tr.natural_step(g, F, 0.02, rtol=0.0, atol=0.0, maxiter=50)
    loose = tr.natural_step(g, F, 0.02, rtol=0.0, atol=0.5, maxiter=50)
    assert loose.cg.nit < tight.cg.nit
    assert loose.cg.residual_norms[-1] <= 0.5 < loose.cg.residual_norms[-2]
    assert loose.quadratic_kl == pytest.approx(0.02, rel=1e-14)


def test_callback_sees_every_cg_iterate_and_the_last_is_the_direction():
    """callback reaches CG: called once per iteration with d_k, the last one being the
    direction of the step (warm start x0 included)."""
    F = np.diag([1.0, 3.0, 7.0])
    g = np.array([1.0, 2.0, -1.0])
    for x0 in (None, np.array([0.5, 0.5, 0.0])):
        seen = []
        res = tr.natural_step(g, F, 0.01, x0=x0, maxiter=3, rtol=0.0,
                              callback=lambda d, seen=seen: seen.append(d.copy()))
        assert len(seen) == res.cg.nit >= 1
        np.testing.assert_array_equal(seen[-1], res.direction)


def test_warm_start_at_the_natural_gradient_needs_no_iteration():
    """x0 = F^{-1} g (exactly, in binary arithmetic) leaves a zero residual: CG stops at
    once and the step is beta x0 on the KL boundary, as from a cold start."""
    F = np.diag([2.0, 4.0])
    g = np.array([1.0, 2.0])
    x0 = np.array([0.5, 0.5])
    res = tr.natural_step(g, F, 0.01, x0=x0)
    assert res.cg.nit == 0 and res.status is StepStatus.OK
    np.testing.assert_array_equal(res.direction, x0)
    cold = tr.natural_step(g, F, 0.01)
    np.testing.assert_allclose(res.step, cold.step, rtol=1e-14)
    assert res.quadratic_kl == pytest.approx(0.01, rel=1e-14)


@pytest.mark.parametrize("scale", [2.0**-560, 2.0**560])
def test_rescaled_step_reports_beta_curvature_and_improvement_exactly(scale):
    """Where d^T F d leaves the float range the step is formed on scaled copies; the
    reported beta, curvature and expected improvement are then the unscaled ones times
    the exact powers of two (beta ~ 1/scale, d ~ scale, g^T step ~ scale), and
    quadratic_kl = 1/2 beta^2 d^T F d is still max_kl."""
    F = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([1.0, -1.0])
    ref = tr.natural_step(g, F, 0.01)
    res = tr.natural_step(g * scale, F, 0.01)
    assert res.status is StepStatus.OK
    assert res.beta == pytest.approx(ref.beta / scale, rel=1e-14)
    assert res.expected_improvement == pytest.approx(ref.expected_improvement * scale,
                                                     rel=1e-14)
    # d^T F d ~ 2^(+-1120) is outside the float range: its rounding, 0 or inf, is reported
    assert res.curvature == (0.0 if scale < 1 else np.inf)
    np.testing.assert_allclose(res.direction, ref.direction * scale, rtol=1e-14)
    assert res.quadratic_kl == pytest.approx(0.01, rel=1e-14)


# ------------------------------------------------------- what a step not taken reports
def _assert_no_step(res, status, n):
    """No step: the status, a zero step of the problem's shape, zero gain and KL, beta 0,
    and CG's result kept for inspection."""
    assert res.status is status and not res.success
    assert res.step.shape == (n,) and not res.step.any()
    assert res.beta == 0.0 and res.expected_improvement == 0.0 and res.quadratic_kl == 0.0
    assert isinstance(res.cg, tr.CGResult)


def test_no_step_results_report_the_curvature_they_saw():
    """Each way of not stepping reports d^T F d as it was found: 0 for a zero gradient
    (nothing was computed), NaN when F gave NaN, and the nonpositive value itself when CG
    stepped along positive curvature into a direction of negative d^T F d (here a warm
    start on an indefinite F, one iteration)."""
    res = tr.natural_step(np.zeros(3), np.eye(3), 0.01)
    _assert_no_step(res, StepStatus.ZERO_GRADIENT, 3)
    assert res.curvature == 0.0
    res = tr.natural_step(np.ones(2), lambda v: np.full(2, np.nan), 0.01)
    _assert_no_step(res, StepStatus.NON_FINITE, 2)
    assert np.isnan(res.curvature)
    F = np.diag([4.0, -1.0])
    res = tr.natural_step(np.array([1.0, 0.0]), F, 0.01, x0=[0.0, 1.0], maxiter=1)
    _assert_no_step(res, StepStatus.NONPOSITIVE_CURVATURE, 2)
    assert res.cg.nit == 1  # the first direction had positive curvature
    d = res.direction
    np.testing.assert_allclose(d, [2.0 / 3.0, 5.0 / 3.0], rtol=1e-15)
    assert res.curvature == pytest.approx(float(d @ F @ d), rel=1e-14)
    assert res.curvature < 0.0


@pytest.mark.parametrize("e", [-600, 600])
def test_rescaled_path_refuses_as_the_plain_one_does(e):
    """Where d^T F d leaves the float range the same refusals hold, with the same
    statuses and directions: negative curvature after a positive first step, and a warm
    start that leaves a descent direction (g^T d < 0)."""
    s = 2.0**e
    F = np.diag([4.0, -1.0])
    plain = tr.natural_step(np.array([1.0, 0.0]), F, 0.01, x0=[0.0, 1.0], maxiter=1)
    res = tr.natural_step(np.array([s, 0.0]), F, 0.01, x0=[0.0, s], maxiter=1)
    _assert_no_step(res, StepStatus.NONPOSITIVE_CURVATURE, 2)
    np.testing.assert_array_equal(res.direction, plain.direction * s)
    assert res.curvature <= 0.0
    F = np.diag([1.0, 100.0])
    plain = tr.natural_step(np.array([1.0, 1.0]), F, 0.01, x0=[-3.0, 0.0], maxiter=1)
    res = tr.natural_step(np.array([s, s]), F, 0.01, x0=[-3.0 * s, 0.0], maxiter=1)
    _assert_no_step(res, StepStatus.NOT_ASCENT, 2)
    assert plain.status is StepStatus.NOT_ASCENT
    d = plain.direction
    assert plain.curvature == pytest.approx(float(d @ F @ d), rel=1e-14)
    np.testing.assert_array_equal(res.direction, plain.direction * s)
    assert res.curvature == (0.0 if e < 0 else np.inf)


def test_a_radius_too_large_for_floats_is_no_step_not_an_infinite_one():
    """max_kl = 1e308: 2 delta overflows, so beta = sqrt(2 delta / d^T F d) is not finite;
    the result is NON_FINITE with no step (and the curvature that was found), on the
    plain path and on the rescaled one."""
    F = np.diag([2.0, 1.0])
    for scale in (1.0, 2.0**600):
        res = tr.natural_step(np.array([1.0, 1.0]) * scale, F, 1e308)
        _assert_no_step(res, StepStatus.NON_FINITE, 2)
        np.testing.assert_array_equal(res.direction, np.array([0.5, 1.0]) * scale)
        if scale == 1.0:
            assert res.curvature == pytest.approx(1.5, rel=1e-15)


@pytest.mark.parametrize("scale", [2.0**-560, 2.0**560])
def test_extreme_scales_work_under_strict_floating_point_errors(scale):
    """The rescaled path under np.errstate(all="raise"): every over- and underflow it
    expects is confined to its own errstate, so a caller who makes floating-point errors
    raise gets the same step, and the CG result with it."""
    F = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([1.0, -1.0])
    ref = tr.natural_step(g, F, 0.01)
    with np.errstate(all="raise"):
        res = tr.natural_step(g * scale, F, 0.01)
    assert res.status is StepStatus.OK
    np.testing.assert_allclose(res.step, ref.step, rtol=1e-14)
    assert isinstance(res.cg, tr.CGResult) and res.cg.nit == ref.cg.nit


def test_exactly_zero_curvature_is_nonpositive_not_a_division():
    """A warm start at a solution of F d = g with d^T F d = 0 exactly (F indefinite,
    d = (1, 1), F d = (1, -1)): CG stops at once, the curvature is 0, and the result is
    NONPOSITIVE_CURVATURE (beta = sqrt(2 delta / 0) is never formed), not NOT_ASCENT."""
    F = np.diag([1.0, -1.0])
    res = tr.natural_step(np.array([1.0, -1.0]), F, 0.01, x0=[1.0, 1.0])
    assert res.cg.nit == 0
    _assert_no_step(res, StepStatus.NONPOSITIVE_CURVATURE, 2)
    assert res.curvature == 0.0
    np.testing.assert_array_equal(res.direction, [1.0, 1.0])


def test_gradient_normalization_divides_by_g_dot_d_and_agrees_with_curvature_when_cg_is_exact():
    rng = np.random.default_rng(7)
    B = rng.standard_normal((6, 6))
    F = B @ B.T + 0.1 * np.eye(6)
    g = rng.standard_normal(6)
    # truncated CG: the step is sqrt(2 delta / g^T d) d, bit for bit
    trunc = tr.natural_step(g, F, 0.02, maxiter=2, normalization="gradient")
    d = tr.cg(F, g, maxiter=2, rtol=1e-10).x
    assert np.array_equal(trunc.direction, d)
    assert trunc.beta == np.sqrt(2.0 * 0.02 / float(g @ d))
    assert np.array_equal(trunc.step, trunc.beta * d)
    # CG from zero: g^T d_k = d_k^T F d_k in exact arithmetic, so the two normalisations
    # agree to rounding, truncated or converged
    for maxiter in (2, 50):
        by_g = tr.natural_step(g, F, 0.02, maxiter=maxiter, normalization="gradient")
        by_c = tr.natural_step(g, F, 0.02, maxiter=maxiter)
        np.testing.assert_allclose(by_g.step, by_c.step, rtol=1e-9)
    # from a warm start they differ: g^T d is no longer d^T F d
    x0 = 0.5 * np.linalg.solve(F, g) + 0.3 * rng.standard_normal(6)
    by_g = tr.natural_step(g, F, 0.02, maxiter=1, x0=x0, normalization="gradient")
    by_c = tr.natural_step(g, F, 0.02, maxiter=1, x0=x0)
    assert by_g.success and by_c.success
    d0 = by_c.direction
    assert by_g.beta == np.sqrt(2.0 * 0.02 / float(g @ d0))
    assert abs(float(g @ d0) - by_c.curvature) > 1e-3 * abs(by_c.curvature)


def test_an_unknown_normalization_names_the_argument():
    with pytest.raises(ValueError, match="normalization"):
        tr.natural_step(np.ones(2), np.eye(2), 0.01, normalization="fisher")
