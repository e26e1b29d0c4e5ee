"""Conjugate gradient: the theorems of Nocedal & Wright (2006), Chapter 5, checked numerically.

Tolerances scale with ``n * kappa * eps``. Global orthogonality of CG residuals is an
exact-arithmetic theorem that finite-precision CG keeps only until a Ritz value
converges (Greenbaum & Strakos 1992; Meurant & Strakos 2006), so it is checked on
well-conditioned systems, while the local relations (consecutive residuals and
directions), which rounding cannot destroy (Paige 1980), are checked up to
``kappa = 1e6``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import assume, given
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import (
    finite_floats,
    indefinite_matrices,
    indefinite_with_negative_component,
    nonzero_vectors,
    spd_matrices,
    spd_with_distinct_eigenvalues,
    spd_with_spectrum,
    vectors,
)
from trustregion.conjugate_gradient import _cg_iterations, _CGLog
from trustregion.result import CGStatus

EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------------------
# strategies and helpers








@st.composite
def spd_systems(draw, *, max_n=12, max_log10_cond=6.0):
    """``(A, b, kappa)`` with ``A`` SPD of condition number ``kappa`` and ``b != 0``."""
    A, lam, _ = draw(spd_with_spectrum(max_n=max_n, max_log10_cond=max_log10_cond))
    b = draw(nonzero_vectors(A.shape[0]))
    return A, b, lam.max() / lam.min()


def indefinite_systems(max_n=8):
    """``(A, b)`` with ``b`` reaching a negative eigenvector of ``A``."""
    return indefinite_with_negative_component(max_n)


def cg_trajectory(A, b, *, M=None, rtol=1e-10, maxiter=None):
    """Residuals ``r_0..r_k``, directions ``p_0..p_{k-1}``, iterates ``x_0..x_k`` (``x_0 = 0``)."""
    n = b.shape[0]
    log = _CGLog()
    x = np.zeros(n)
    r = b.copy()
    xs, rs, ps = [x.copy()], [r.copy()], []
    psolve = None if M is None else M.dot
    tol = rtol * np.linalg.norm(b)
    maxiter = 10 * n if maxiter is None else maxiter
    for xk, rk, pk in _cg_iterations(A.dot, x, r, psolve=psolve, tol=tol, maxiter=maxiter, log=log):
        xs.append(xk.copy())
        rs.append(rk.copy())
        ps.append(pk.copy())
    return xs, rs, ps, log


def max_pairwise(vectors_, inner, *, local=False):
    """``max |<u_i, u_j>| / (||u_i|| ||u_j||)`` weighted by ``min(||u_i||, ||u_j||) / ||u_0||``.

    The weight turns the cosine into an absolute error relative to the first vector:
    a vector that has converged to rounding level has no meaningful direction.
    """
    norms = [np.sqrt(inner(u, u)) for u in vectors_]
    worst = 0.0
    for i in range(len(vectors_)):
        for j in [i - 1] if local else range(i):
            if j < 0 or norms[i] == 0.0 or norms[j] == 0.0:
                continue
            cos = abs(inner(vectors_[i], vectors_[j])) / (norms[i] * norms[j])
            worst = max(worst, cos * min(norms[i], norms[j]) / norms[0])
    return worst


# ---------------------------------------------------------------------------------------------
# the theorems of CG


@given(spd_systems(max_log10_cond=0.5))
def test_residuals_orthogonal_and_directions_conjugate(system):
    """N&W Thm. 5.3: at every iteration k, r_k^T r_j = 0 and p_k^T A p_j = 0 for all j < k.

    Checked on well-conditioned A (kappa <= 10^0.5), where finite-precision CG keeps
    global orthogonality, to 10 n kappa eps (relative to ||r_0||).
    """
    A, b, kappa = system
    n = b.shape[0]
    _, rs, ps, _ = cg_trajectory(A, b)
    tol = 10 * n * kappa * EPS
    assert max_pairwise(rs, np.dot) <= tol
    assert max_pairwise(ps, lambda u, v: u @ A @ v) <= tol


@given(spd_systems(max_log10_cond=6.0))
def test_consecutive_residuals_orthogonal_when_ill_conditioned(system):
    """N&W eq. (5.16)-(5.17) locally: r_{k+1}^T r_k = 0 and p_{k+1}^T A p_k = 0.

    Rounding cannot destroy local orthogonality (Paige 1980), so this holds up to
    kappa = 1e6 to 100 n kappa eps (relative to ||r_0||).
    """
    A, b, kappa = system
    n = b.shape[0]
    _, rs, ps, _ = cg_trajectory(A, b)
    tol = 100 * n * kappa * EPS
    assert max_pairwise(rs, np.dot, local=True) <= tol
    assert max_pairwise(ps, lambda u, v: u @ A @ v, local=True) <= tol


@st.composite
def preconditioned_systems(draw):
    n = draw(st.integers(1, 10))
    A, lam_A, _ = draw(spd_with_spectrum(n, max_log10_cond=0.25))
    M, lam_M, _ = draw(spd_with_spectrum(n, max_log10_cond=0.25))
    M = M / draw(finite_floats(0.1, 10.0))  # M need not be scaled like A^{-1}
    b = draw(nonzero_vectors(n))
    return A, M, b, (lam_A.max() / lam_A.min()) * (lam_M.max() / lam_M.min())


@given(preconditioned_systems())
def test_preconditioned_residuals_orthogonal_and_directions_conjugate(system):
    """N&W Alg. 5.3: r_i^T z_j = r_i^T M r_j = 0 and p_i^T A p_j = 0 for i != j.

    Preconditioned CG is CG on M^{1/2} A M^{1/2}; tolerance 10 n kappa(A) kappa(M) eps.
    """
    A, M, b, kappa = system
    n = b.shape[0]
    _, rs, ps, _ = cg_trajectory(A, b, M=M)
    tol = 10 * n * kappa * EPS
    assert max_pairwise(rs, lambda u, v: u @ M @ v) <= tol
    assert max_pairwise(ps, lambda u, v: u @ A @ v) <= tol


@st.composite
def few_distinct_eigenvalues(draw):
    k = draw(st.integers(1, 5))
    n = draw(st.integers(k, 12))
    # eigenvalues are multiples of 0.1 (the filter drops a degenerate Q)
    A = draw(
        spd_with_distinct_eigenvalues(n, k).filter(lambda A: np.linalg.eigvalsh(A).min() > 0.05)
    )
    return A, draw(nonzero_vectors(n)), k


@given(few_distinct_eigenvalues())
def test_converges_within_k_iterations_for_k_distinct_eigenvalues(system):
    """N&W Thm. 5.4: if A has k distinct eigenvalues, CG converges in at most k iterations.

    The residual polynomial after k steps is P_k(t) = prod_i (1 - t / lambda_i) over the
    distinct eigenvalues. Finite-precision CG acts like exact CG with each eigenvalue
    spread by O(eps ||A||) (Greenbaum 1989), so the k-th residual is zero to
    O(eps ||A|| max_j |P_k'(lambda_j)| ||b||).
    """
    A, b, k = system
    n = b.shape[0]
    distinct = np.unique(np.round(np.linalg.eigvalsh(A), 6))
    assert len(distinct) == k

    def dP(lam_j):  # P_k'(lambda_j) = -(1 / lambda_j) prod_{i != j} (1 - lambda_j / lambda_i)
        others = distinct[distinct != lam_j]
        return -np.prod(1.0 - lam_j / others) / lam_j

    amplification = np.linalg.norm(A, 2) * max(abs(dP(lam_j)) for lam_j in distinct)
    res = tr.cg(A, b, rtol=10 * n * EPS * (1.0 + amplification), maxiter=k)
    assert res.status is CGStatus.CONVERGED
    assert res.nit <= k


@given(spd_systems(max_log10_cond=4.0))
def test_exact_inverse_preconditioner_converges_in_one_iteration(system):
    """With M = A^{-1}, z_0 = x*, alpha_0 = 1 and x_1 = A^{-1} b: PCG ends after one iteration."""
    A, b, kappa = system
    n = b.shape[0]
    Ainv = np.linalg.inv(A)
    Ainv = 0.5 * (Ainv + Ainv.T)
    res = tr.cg(A, b, M=Ainv, rtol=100 * n * kappa * EPS)
    assert res.status is CGStatus.CONVERGED
    assert res.nit == 1


@given(preconditioned_systems(), st.integers(-30, 30))
def test_scaling_preconditioner_by_power_of_two_gives_identical_iterates(system, e):
    """M -> c M scales z_k, rho_k and p_k by c and alpha_k by 1/c, so x_k is unchanged.

    For c = 2^e every one of these scalings is exact in binary floating point as long as
    no iterate enters the subnormal range (where scaling rounds), so the iterates agree
    bit for bit.
    """
    A, M, b, _ = system
    xs, _, _, _ = cg_trajectory(A, b, M=M)
    xs_c, _, _, _ = cg_trajectory(A, b, M=np.ldexp(M, e))
    assert len(xs) == len(xs_c)
    margin = np.finfo(np.float64).tiny * 2.0**64  # far from subnormal after any 2^±30 scaling
    assume(all(np.all((x == 0) | (np.abs(x) >= margin)) for x in xs + xs_c))
    for x, x_c in zip(xs, xs_c, strict=True):
        np.testing.assert_array_equal(x, x_c)


@given(preconditioned_systems(), finite_floats(1e-3, 1e3))
def test_scaling_preconditioner_leaves_iterates_unchanged(system, c):
    """M -> c M leaves every iterate x_k unchanged (to 100 n kappa eps ||x_k||), any c > 0."""
    A, M, b, kappa = system
    n = b.shape[0]
    xs, rs, _, _ = cg_trajectory(A, b, M=M)
    xs_c, _, _, _ = cg_trajectory(A, b, M=c * M)
    tol = 100 * n * kappa * EPS
    for x, x_c, r in zip(xs, xs_c, rs, strict=False):
        if np.linalg.norm(r) < np.sqrt(EPS) * np.linalg.norm(b):
            break  # past this point the iterates only differ by rounding of the solution
        assert np.linalg.norm(x - x_c) <= tol * max(np.linalg.norm(x), np.linalg.norm(xs[-1]))


@given(indefinite_systems())
def test_indefinite_matrix_reports_nonpositive_curvature(system):
    """If b has a component on an eigenvector of negative eigenvalue, the Krylov space holds
    a direction of negative curvature, so CG cannot converge with all p_k^T A p_k > 0
    (they would be an A-conjugate basis making A positive definite on it): it stops with
    NONPOSITIVE_CURVATURE, never success, and returns a finite iterate."""
    A, b = system
    res = tr.cg(A, b, rtol=1e-12)
    assert res.status is CGStatus.NONPOSITIVE_CURVATURE
    assert not res.success
    assert np.all(np.isfinite(res.x))
    assert res.curvatures[-1] <= 0.0
    assert np.all(res.curvatures[:-1] > 0.0)
    assert len(res.residual_norms) == res.nit + 1


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(indefinite_matrices(n), vectors(n))))
def test_success_is_never_claimed_falsely_on_symmetric_matrices(system):
    """On any symmetric (possibly indefinite) A, success implies the true residual meets the
    tolerance up to rounding, and failure returns a finite iterate and a reason."""
    A, b = system
    n = b.shape[0]
    x_norms = [0.0]
    res = tr.cg(A, b, rtol=1e-8, callback=lambda xk: x_norms.append(np.linalg.norm(xk)))
    assert np.all(np.isfinite(res.x))
    if res.success:
        # true minus recurrence residual: O(k eps (||b|| + ||A|| max_j ||x_j||)) (Greenbaum 1997)
        A_norm = np.linalg.norm(A, 2)
        slack = 100 * n * max(res.nit, 1) * EPS * (np.linalg.norm(b) + A_norm * max(x_norms))
        assert res.residual_norm <= 1e-8 * np.linalg.norm(b) + slack
    else:
        assert res.status in (
            CGStatus.NONPOSITIVE_CURVATURE,
            CGStatus.MAX_ITERATIONS,
            CGStatus.NON_FINITE,
        )


@given(spd_systems(max_log10_cond=6.0), finite_floats(-10.0, -2.0))
def test_true_residual_meets_tolerance_when_converged(system, log10_rtol):
    """CONVERGED means ||b - A x|| <= rtol ||b|| up to the gap between the true and the
    recurrence residual, O(k kappa eps ||b||) (Greenbaum 1997)."""
    A, b, kappa = system
    n = b.shape[0]
    rtol = 10.0**log10_rtol
    res = tr.cg(A, b, rtol=rtol)
    assert res.status is CGStatus.CONVERGED
    gap = 10 * n * max(res.nit, 1) * kappa * EPS * np.linalg.norm(b)
    assert res.residual_norms[-1] <= rtol * np.linalg.norm(b)
    assert res.residual_norm <= rtol * np.linalg.norm(b) + gap
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - A @ res.x), rel=1e-12, abs=0)


@given(spd_systems(max_log10_cond=3.0))
def test_history_and_counts_are_consistent(system):
    """residual_norms has nit + 1 entries starting at ||b||; callback runs once per
    iteration; nmatvec = nit + 1 (one product per iteration plus the true residual)."""
    A, b, _ = system
    seen = []
    res = tr.cg(A, b, rtol=1e-8, callback=lambda xk: seen.append(xk.copy()))
    assert len(res.residual_norms) == res.nit + 1
    assert res.residual_norms[0] == np.linalg.norm(b)
    assert len(seen) == res.nit
    assert len(res.curvatures) == res.nit
    assert res.nmatvec == res.nit + 1
    np.testing.assert_array_equal(seen[-1], res.x)


@given(spd_systems(max_log10_cond=6.0), finite_floats(-10.0, -2.0))
def test_same_iterates_as_scipy_and_never_more_iterations(system, log10_rtol):
    """Without M, cg performs the floating-point operations of scipy.sparse.linalg.cg with
    the test ||r|| <= tol (scipy: < tol): identical iterates, never more iterations."""
    A, b, _ = system
    rtol = 10.0**log10_rtol
    scipy_iterates = []
    x_scipy, _ = spla.cg(A, b, rtol=rtol, callback=lambda xk: scipy_iterates.append(xk.copy()))
    ours = []
    res = tr.cg(A, b, rtol=rtol, callback=lambda xk: ours.append(xk.copy()))
    assert res.nit <= len(scipy_iterates)
    for x, y in zip(ours, scipy_iterates, strict=False):
        np.testing.assert_array_equal(x, y)
    if res.nit == len(scipy_iterates):
        np.testing.assert_array_equal(res.x, x_scipy)


# ---------------------------------------------------------------------------------------------
# edge cases and statuses


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(spd_matrices(n), vectors(n))))
def test_zero_rhs_returns_zero_without_iterating(system):
    """A x = 0 has the solution x = 0: returned at once (nit 0, converged), whatever x0."""
    A, x0 = system
    n = x0.shape[0]
    res = tr.cg(A, np.zeros(n), x0=x0)
    assert res.status is CGStatus.CONVERGED
    assert res.nit == 0
    assert res.nmatvec == 0
    np.testing.assert_array_equal(res.x, np.zeros(n))
    np.testing.assert_array_equal(res.residual_norms, [0.0])


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(spd_matrices(n), vectors(n), vectors(n))))
def test_x0_is_not_modified(system):
    """The starting guess is copied: cg never writes into x0."""
    A, b, x0 = system
    before = x0.copy()
    res = tr.cg(A, b, x0=x0, rtol=1e-8)
    np.testing.assert_array_equal(x0, before)
    assert res.x is not x0


@given(spd_systems(max_log10_cond=4.0))
def test_warm_start_at_the_solution_needs_no_iteration(system):
    """x0 = A^{-1} b (to rounding) satisfies the test ||b - A x0|| <= rtol ||b|| at k = 0."""
    A, b, _ = system
    x0 = np.linalg.solve(A, b)
    res = tr.cg(A, b, x0=x0, rtol=1e-6)
    assert res.nit == 0
    assert res.status is CGStatus.CONVERGED


@given(spd_systems(max_log10_cond=4.0))
def test_dense_sparse_operator_and_callable_agree(system):
    """The operator is the same whatever its form: a LinearOperator or a callable wrapping
    the dense matrix gives bit-identical results; a sparse copy agrees to rounding."""
    A, b, kappa = system
    n = b.shape[0]
    dense = tr.cg(A, b, rtol=1e-10)
    for form in (spla.aslinearoperator(A), lambda v: A @ v):
        other = tr.cg(form, b, rtol=1e-10)
        assert other.nit == dense.nit
        np.testing.assert_array_equal(other.x, dense.x)
    sparse = tr.cg(sp.csr_array(A), b, rtol=1e-10)
    assert sparse.status is dense.status
    x_star = np.linalg.solve(A, b)
    tol = kappa * (2e-10 + 100 * n * EPS) * np.linalg.norm(x_star)
    assert np.linalg.norm(sparse.x - x_star) <= tol
    assert np.linalg.norm(dense.x - x_star) <= tol


@given(spd_systems(max_log10_cond=3.0), st.sampled_from([-700, -400, 400, 700]))
def test_scaling_b_by_a_power_of_two_scales_the_solution_exactly(system, e):
    """CG is equivariant under b -> 2^e b (x_k -> 2^e x_k exactly), also when r^T r would
    underflow or overflow: a tiny right-hand side is solved, not declared converged at x = 0.
    (Exactly only while b, x and the residual norms themselves scale without overflow or
    loss of bits to the subnormal range: entries spread over 300 decades cannot.)"""
    A, b, _ = system
    res = tr.cg(A, b, rtol=1e-8)

    def scales_exactly(v):
        with np.errstate(over="ignore"):
            s = np.ldexp(v, e)
        return bool(np.all(np.isfinite(s)) and np.array_equal(np.ldexp(s, -e), v))

    assume(all(scales_exactly(v) for v in (b, res.x, np.asarray(res.residual_norms))))
    scaled = tr.cg(A, np.ldexp(b, e), rtol=1e-8)
    assert scaled.nit == res.nit
    assert scaled.status is res.status
    np.testing.assert_array_equal(scaled.x, np.ldexp(res.x, e))
    np.testing.assert_array_equal(scaled.residual_norms, np.ldexp(res.residual_norms, e))


def test_maxiter_stops_with_status():
    """After maxiter iterations without meeting the test: MAX_ITERATIONS, not success."""
    A = np.diag(np.arange(1.0, 11.0))
    res = tr.cg(A, np.ones(10), rtol=1e-12, maxiter=3)
    assert res.status is CGStatus.MAX_ITERATIONS
    assert not res.success
    assert res.nit == 3
    assert len(res.residual_norms) == 4


def test_default_maxiter_is_ten_n():
    """maxiter=None means 10 n iterations, as in scipy: on the 5 x 5 Hilbert matrix with
    rtol = atol = 0 the residual never reaches exactly zero, so the run uses all 50."""
    from scipy.linalg import hilbert

    n = 5
    res = tr.cg(hilbert(n), np.ones(n), rtol=0.0, atol=0.0)
    assert res.status is CGStatus.MAX_ITERATIONS
    assert res.nit == 10 * n


def test_indefinite_preconditioner_reports_breakdown():
    """r^T z <= 0 with r != 0 means M is not positive definite: BREAKDOWN, no division."""
    A = np.diag([1.0, 2.0, 3.0])
    res = tr.cg(A, np.ones(3), M=-np.eye(3))
    assert res.status is CGStatus.BREAKDOWN
    assert not res.success
    np.testing.assert_array_equal(res.x, np.zeros(3))


def test_non_finite_operator_output_reports_status_and_finite_iterate():
    """NaN from A ends the solve with NON_FINITE and the last finite iterate."""
    A = np.diag([1.0, 2.0, 3.0, 4.0])
    calls = {"n": 0}

    def matvec(v):
        calls["n"] += 1
        out = A @ v
        if calls["n"] == 3:
            out[0] = np.nan
        return out

    res = tr.cg(matvec, np.ones(4), rtol=1e-12)
    assert res.status is CGStatus.NON_FINITE
    assert not res.success
    assert res.nit == 2
    assert np.all(np.isfinite(res.x))


def test_zero_curvature_is_not_divided_by():
    """p^T A p = 0 (A singular, b in its null space) stops with NONPOSITIVE_CURVATURE."""
    res = tr.cg(np.diag([0.0, 1.0]), np.array([1.0, 0.0]))
    assert res.status is CGStatus.NONPOSITIVE_CURVATURE
    assert res.curvatures.tolist() == [0.0]
    np.testing.assert_array_equal(res.x, np.zeros(2))


# ---------------------------------------------------------------------------------------------
# bad input


A2 = np.eye(2)
b2 = np.ones(2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"A": np.ones((2, 3)), "b": b2}, "A"),
        ({"A": np.eye(3), "b": b2}, "A"),
        ({"A": np.array([[1.0, np.inf], [0.0, 1.0]]), "b": b2}, "A"),
        ({"A": np.eye(2) * 1j, "b": b2}, "A"),
        ({"A": "not a matrix", "b": b2}, "A"),
        ({"A": sp.csr_array(np.eye(3)), "b": b2}, "A"),
        ({"A": A2, "b": np.ones((2, 1))}, "b"),
        ({"A": A2, "b": np.array([1.0, np.nan])}, "b"),
        ({"A": A2, "b": "ab"}, "b"),
        ({"A": A2, "b": b2, "x0": np.ones(3)}, "x0"),
        ({"A": A2, "b": b2, "x0": np.array([np.inf, 0.0])}, "x0"),
        ({"A": A2, "b": b2, "M": np.eye(3)}, "M"),
        ({"A": A2, "b": b2, "M": "identity"}, "M"),
        ({"A": A2, "b": b2, "rtol": -1.0}, "rtol"),
        ({"A": A2, "b": b2, "rtol": np.nan}, "rtol"),
        ({"A": A2, "b": b2, "atol": -1e-3}, "atol"),
        ({"A": A2, "b": b2, "maxiter": -1}, "maxiter"),
        ({"A": A2, "b": b2, "maxiter": 2.5}, "maxiter"),
        ({"A": A2, "b": b2, "callback": 3}, "callback"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, name):
    """Invalid input is rejected before any work with a ValueError that names the argument.

    The parametrized dict is shared by every run of this test in the process (pytest
    reruns, mutation testing), so it is read, never modified."""
    options = {k: v for k, v in kwargs.items() if k not in ("A", "b")}
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        tr.cg(kwargs["A"], kwargs["b"], **options)


def test_tiny_b_with_a_normal_sized_x0_is_not_rescaled_into_overflow():
    """The power-of-two rescaling looks at b and x0 together: a tiny b with x0 = O(1)
    leaves the residual O(1), so nothing is scaled and nothing overflows."""
    A = np.diag([1e6, 2.0, 3.0])
    b = np.array([1e-300, 0.0, 0.0])
    x0 = np.array([5.0, -3.0, 7.0])
    with np.errstate(over="raise"):
        res = tr.cg(A, b, x0=x0, rtol=0.0, atol=1e-8)  # rtol ||b|| would be below rounding
    assert res.status is CGStatus.CONVERGED
    assert np.all(np.isfinite(res.x)) and res.residual_norm <= 1e-8 * (1 + 1e-6)


# ---------------------------------------------------------------------------------------------
# input conversion, scale and reporting


A_SPD = np.array([[4.0, 1.0], [1.0, 3.0]])


@pytest.mark.parametrize(
    "b",
    [[1.0, 2.0], (1, 2), np.array([1, 2]), np.array([1.0, 2.0], dtype=np.float32)],
    ids=["list", "tuple", "int64", "float32"],
)
def test_right_hand_side_is_converted_to_float64_like_scipy(b):
    """Lists, integer and float32 arrays are converted to float64, as scipy does, and give
    exactly the float64 answer."""
    reference = tr.cg(A_SPD, np.array([1.0, 2.0]), rtol=1e-12)
    res = tr.cg(A_SPD, b, rtol=1e-12)
    assert res.status is CGStatus.CONVERGED
    np.testing.assert_array_equal(res.x, reference.x)
    x, info = spla.cg(A_SPD, np.asarray(b, dtype=np.float64), rtol=1e-12)
    assert info == 0 and np.allclose(res.x, x, rtol=1e-10, atol=0)


def test_subnormal_right_hand_side_is_scaled_without_overflow():
    """b = (5e-324, 0), the smallest subnormal: the power-of-two rescaling needs 2^1073,
    beyond what a float scale factor can hold; the solution is the rescaled one."""
    b = np.array([5e-324, 0.0])
    res = tr.cg(A_SPD, b)
    assert res.status is CGStatus.CONVERGED
    e = np.frexp(5e-324)[1]  # b = 2^e * (1/2, 0)
    unit = tr.cg(A_SPD, np.array([0.5, 0.0]))
    np.testing.assert_array_equal(res.x, np.ldexp(unit.x, e))
    assert res.nit == unit.nit


def test_overflowing_iterate_returns_the_last_finite_iterate():
    """A singular A with b outside its range: CG's iterates grow until they overflow. The
    solve stops with NON_FINITE and returns the last iterate that was finite, with a
    residual history of finite values, one per iteration plus the initial one."""
    with np.errstate(over="ignore", invalid="ignore"):
        res = tr.cg(np.diag([1.0, 2.0, 0.0]), np.ones(3), rtol=1e-12)
    assert res.status is CGStatus.NON_FINITE and not res.success
    assert np.all(np.isfinite(res.x))
    assert np.all(np.isfinite(res.residual_norms))
    assert len(res.residual_norms) == res.nit + 1
    assert np.isfinite(res.residual_norm)


def test_converged_message_describes_the_recurrence_residual():
    """CONVERGED is decided on the recurrence residual; on an ill-conditioned system (five
    eigenvalues from 1 to 1e12) the true residual ||b - A x|| stays far above the
    tolerance while the recurrence residual meets it, so the message must not claim a
    bound on ||b - A x||."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    A = (Q * np.repeat(np.logspace(0, 12, 5), 4)) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.standard_normal(20)
    res = tr.cg(A, b, rtol=1e-8)
    tol = 1e-8 * np.linalg.norm(b)
    assert res.status is CGStatus.CONVERGED
    assert res.residual_norms[-1] <= tol < res.residual_norm  # the recurrence met it; b - A x not
    assert "recurrence" in res.message
    assert "||b - A x|| <=" not in res.message


with warnings.catch_warnings():  # np.matrix warns that it is discouraged, on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    _NONSYMMETRIC_MATRIX = np.matrix([[4.0, 1.0], [0.0, 3.0]])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"A": np.array([[4.0, 1.0], [0.0, 3.0]])}, "A"),
        ({"A": _NONSYMMETRIC_MATRIX}, "A"),
        ({"A": [[4.0, 1.0], [0.0, 3.0]]}, "A"),
        ({"M": np.array([[1.0, 0.5], [0.0, 1.0]])}, "M"),
    ],
)
def test_dense_non_symmetric_matrix_is_refused(kwargs, name):
    """A dense A or M must be symmetric, tested as the dense subproblem solvers test H."""
    args = {"A": A_SPD, "b": np.ones(2)} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} must be symmetric"):
        tr.cg(args.pop("A"), args.pop("b"), **args)


def test_nearly_symmetric_dense_matrix_and_operators_are_not_checked():
    """Asymmetry at rounding level passes, and operators are used as given (not formed)."""
    A = A_SPD + np.array([[0.0, 1e-12], [0.0, 0.0]])
    assert tr.cg(A, np.ones(2)).success
    assert tr.cg(spla.aslinearoperator(A_SPD), np.ones(2)).success


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"b": np.array([1.0 + 1j, 2.0])}, "b"),
        ({"x0": np.array([1.0 + 1j, 0.0])}, "x0"),
        ({"A": spla.aslinearoperator(A_SPD.astype(complex))}, "A"),
        ({"A": [[4 + 1j, 1], [1, 3]]}, "A"),
        ({"A": sp.csr_array(A_SPD.astype(complex))}, "A"),
        ({"M": np.eye(2, dtype=complex)}, "M"),
    ],
)
def test_complex_input_is_refused_naming_the_argument(kwargs, name):
    """Complex values are refused up front; the imaginary part is never silently dropped."""
    args = {"A": A_SPD, "b": np.ones(2)} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} must be real"):
        tr.cg(args.pop("A"), args.pop("b"), **args)


def test_callable_returning_complex_values_is_refused():
    with pytest.raises(ValueError, match=r"^A returned complex values"):
        tr.cg(lambda v: (1 + 1j) * v, np.ones(2))


def test_complex_products_message_says_what_the_matvec_must_do():
    """The refusal of complex products from a real-declared operator names it and says
    what to return."""
    A = spla.LinearOperator((2, 2), matvec=lambda v: v + 0j, dtype=np.float64)
    with pytest.raises(ValueError, match=r"^A returned complex values; its matvec must map "
                                         r"real vectors to real vectors \(return the real part "
                                         r"if the imaginary part is rounding noise\)$"):
        tr.cg(A, np.ones(2))


def test_real_declared_operator_returning_complex_values_is_refused():
    """A LinearOperator declared float64 whose matvec computes in complex arithmetic is
    refused by name in every solver that applies it (cg's A and M, steihaug's H,
    natural_step's F), instead of a numpy casting error deep inside the iteration."""
    op = spla.LinearOperator((2, 2), matvec=lambda v: A_SPD @ v + 0j, dtype=np.float64)
    g = np.ones(2)
    calls = [("A", lambda: tr.cg(op, g)), ("M", lambda: tr.cg(A_SPD, g, M=op)),
             ("H", lambda: tr.steihaug(g, op, 1.0)), ("F", lambda: tr.natural_step(g, op, 0.01))]
    for name, call in calls:
        with pytest.raises(ValueError, match=rf"^{name} returned complex values"):
            call()


def test_empty_right_hand_side_is_refused():
    """n = 0 is refused like the dense solvers refuse it."""
    with pytest.raises(ValueError, match="^b must have at least one entry"):
        tr.cg(np.zeros((0, 0)), np.zeros(0))


@pytest.mark.parametrize(
    "A",
    [
        lambda v: np.ones(3),
        spla.LinearOperator((2, 2), matvec=lambda v: np.ones(3), dtype=np.float64),
    ],
    ids=["callable", "LinearOperator"],
)
def test_product_of_the_wrong_size_is_reported_by_name(A):
    """A product of the wrong length names the argument and the expected length."""
    with pytest.raises(ValueError, match=r"^A returned an array .*length 2"):
        tr.cg(A, np.ones(2))


def test_zero_dimensional_arrays_are_accepted_as_scalar_options():
    """rtol, atol and maxiter given as 0-d numpy arrays act like the numbers, as in scipy."""
    b = np.array([1.0, 2.0])
    plain = tr.cg(A_SPD, b, rtol=1e-5, atol=1e-9, maxiter=5)
    wrapped = tr.cg(A_SPD, b, rtol=np.array(1e-5), atol=np.array(1e-9), maxiter=np.array(5))
    np.testing.assert_array_equal(wrapped.x, plain.x)
    assert wrapped.nit == plain.nit


def test_large_dense_matrices_are_checked_for_symmetry_by_probes():
    """Above 128 rows a dense A is checked by two random products: a matrix symmetric up
    to rounding (Q diag Q^T) passes, a small but real asymmetry (1e-6 relative) fails."""
    rng = np.random.default_rng(7)
    n = 300
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.linspace(1.0, 10.0, n)) @ Q.T  # symmetric only to rounding
    assert not np.array_equal(A, A.T)
    b = rng.standard_normal(n)
    assert tr.cg(A, b, rtol=1e-10).success
    B = A + 1e-6 * np.max(np.abs(A)) * np.triu(rng.standard_normal((n, n)), 1)
    with pytest.raises(ValueError, match="A must be symmetric"):
        tr.cg(B, b)


# ---------------------------------------------------------------------------------------------
# edge cases of the stopping test, the preconditioner, the cost count and the replay


def test_exact_convergence_meets_a_zero_tolerance():
    """With rtol = atol = 0 the test ||r_k|| <= 0 is met only by an exactly zero residual:
    b an eigenvector of A (in exact binary arithmetic) converges in one iteration."""
    A = np.diag([4.0, 2.0, 1.0])
    b = np.array([0.0, 2.0, 0.0])
    res = tr.cg(A, b, rtol=0.0, atol=0.0)
    assert res.status is CGStatus.CONVERGED and res.success
    assert res.nit == 1 and res.residual_norm == 0.0
    np.testing.assert_array_equal(res.x, [0.0, 1.0, 0.0])
    # met exactly on the last iteration allowed, it is still CONVERGED
    res = tr.cg(A, b, rtol=0.0, atol=0.0, maxiter=1)
    assert res.status is CGStatus.CONVERGED and res.nit == 1
    # one ulp away from an eigenvector the zero tolerance is not met in one iteration
    res = tr.cg(A, b + np.array([0.0, 0.0, 2.0**-40]), rtol=0.0, atol=0.0, maxiter=1)
    assert res.status is CGStatus.MAX_ITERATIONS


def test_preconditioner_returning_nan_reports_non_finite_and_a_finite_iterate():
    """NaN from M ends the solve with NON_FINITE, like NaN from A, and the iterate
    returned is the last finite one: here that of the first iteration, not x0 = 0."""
    A = np.diag([1.0, 2.0, 3.0, 4.0])
    calls = {"n": 0}
    seen = []

    def psolve(r):
        calls["n"] += 1
        return np.full_like(r, np.nan) if calls["n"] == 2 else r.copy()

    res = tr.cg(A, np.ones(4), M=psolve, rtol=1e-12, callback=lambda xk: seen.append(xk.copy()))
    assert res.status is CGStatus.NON_FINITE and not res.success
    assert np.all(np.isfinite(res.x)) and res.x.any()
    np.testing.assert_array_equal(res.x, seen[0])
    assert res.nit == 1


def test_singular_psd_preconditioner_breaks_down_after_its_range_is_solved():
    """M = diag(1, 0) is positive semidefinite, not definite: CG solves the first
    component, then z = M r = 0 with r != 0 (r^T z = 0) is a BREAKDOWN, not a division
    by zero, and the iterate solved so far is returned."""
    res = tr.cg(np.diag([2.0, 3.0]), np.array([4.0, 3.0]), M=np.diag([1.0, 0.0]))
    assert res.status is CGStatus.BREAKDOWN and not res.success
    np.testing.assert_array_equal(res.x, [2.0, 0.0])
    assert res.nit == 1
    assert res.residual_norm == pytest.approx(3.0)


@given(spd_systems(max_log10_cond=2.0), st.booleans())
def test_nmatvec_counts_every_product_with_a(system, warm):
    """nmatvec is the number of products with A: one per iteration, one for the
    initial residual b - A x0 when x0 != 0, one for the final true residual (when the
    returned x is nonzero)."""
    A, b, _ = system
    calls = {"n": 0}

    def matvec(v):
        calls["n"] += 1
        return A @ v

    x0 = np.linalg.solve(A, b) * 0.5 if warm else None
    res = tr.cg(matvec, b, x0=x0, rtol=1e-8)
    assert res.nmatvec == calls["n"]
    assert res.nmatvec == res.nit + int(warm) + int(res.x.any())


@pytest.mark.parametrize("e", [-600, 600])
def test_atol_is_rescaled_with_the_problem(e):
    """For b and x far outside the safe range CG runs on 2^-e b; atol must be rescaled
    with it: tr.cg(A, 2^e b, atol=2^e a) takes the iterations of tr.cg(A, b, atol=a) and
    returns 2^e times its solution, exactly, with the residual 2^e times as large."""
    A = np.diag([1.0, 3.0, 10.0, 30.0])
    b = np.array([1.0, -1.0, 0.5, 2.0])
    atol = 1.3  # ||r_k|| = 2.5, 1.62, 1.21, ...: met at the second iteration
    unit = tr.cg(A, b, rtol=0.0, atol=atol)
    big = tr.cg(A, np.ldexp(b, e), rtol=0.0, atol=float(np.ldexp(atol, e)))
    assert unit.nit == 2  # atol decides, well before the exact solution
    assert big.nit == unit.nit and big.status is unit.status is CGStatus.CONVERGED
    np.testing.assert_array_equal(big.x, np.ldexp(unit.x, e))
    assert big.residual_norm == pytest.approx(float(np.ldexp(unit.residual_norm, e)), rel=1e-15)


def test_overflow_replay_returns_the_last_finite_iterate_not_x0():
    """A singular A with b outside its range: the iterates grow until they overflow. The
    replay returns the last iterate the callback saw that is finite with a finite
    residual (far from x0), and nit counts the iterations up to it."""
    A = np.diag([1.0, 2.0, 0.0])
    seen = []
    with np.errstate(over="ignore", invalid="ignore"):
        res = tr.cg(A, np.ones(3), rtol=1e-12, callback=lambda xk: seen.append(xk.copy()))
    assert res.status is CGStatus.NON_FINITE
    finite = [x for x in seen if np.isfinite(x).all() and np.isfinite(np.ones(3) - A @ x).all()]
    assert finite and np.max(np.abs(finite[-1])) > 1.0
    assert res.nit == len(finite)
    np.testing.assert_array_equal(res.x, finite[-1])


def test_mismatched_x0_names_what_it_must_match():
    """A wrong-length x0 is refused with a message giving the length and its source, b."""
    with pytest.raises(ValueError, match=r"^x0 must have length 2 to match b; got length 3$"):
        tr.cg(np.eye(2), np.ones(2), x0=np.ones(3))


def test_callback_that_is_not_callable_is_named_with_its_type():
    with pytest.raises(ValueError, match=r"^callback must be callable as callback\(xk\) or None; "
                                         r"got int$"):
        tr.cg(np.eye(2), np.ones(2), callback=3)


@pytest.mark.parametrize("e", [-600, 600])
def test_warm_start_is_rescaled_with_the_problem(e):
    """b and x0 both far outside the safe range are rescaled together: the iterates are
    2^e times those of the unit problem from the unit x0, exactly."""
    A = np.diag([1.0, 3.0, 10.0])
    b = np.array([1.0, -1.0, 0.5])
    x0 = np.array([0.25, 0.5, -0.25])
    unit = tr.cg(A, b, x0=x0, rtol=1e-10)
    res = tr.cg(A, np.ldexp(b, e), x0=np.ldexp(x0, e), rtol=1e-10)
    assert res.nit == unit.nit and res.status is unit.status
    np.testing.assert_array_equal(res.x, np.ldexp(unit.x, e))


def test_huge_atol_on_a_tiny_problem_converges_at_once_without_overflow_warnings():
    """atol is rescaled with a tiny b (2^-600): atol = 1e300 then overflows to inf, which
    must stay silent (no floating-point error) and means every residual is small enough."""
    with np.errstate(all="raise"):
        res = tr.cg(np.eye(3), np.ldexp(np.ones(3), -600), atol=1e300)
    assert res.status is CGStatus.CONVERGED and res.nit == 0


@pytest.mark.parametrize("e", [-600, 600])
def test_rescaled_run_reports_in_the_callers_scale(e):
    """With b far outside the safe range the callback sees the iterates of the caller's
    problem (2^e times the unit problem's, exactly), and the history is scaled back:
    residual norms by 2^e and curvatures p^T A p by 2^(2e) (rounded to the float range);
    nothing raises under np.errstate(all="raise")."""
    A = np.diag([1.0, 3.0, 10.0])
    b = np.array([1.0, -1.0, 0.5])
    seen_unit, seen = [], []
    unit = tr.cg(A, b, rtol=1e-10, callback=lambda xk: seen_unit.append(xk.copy()))
    with np.errstate(all="raise"):
        res = tr.cg(A, np.ldexp(b, e), rtol=1e-10, callback=lambda xk: seen.append(xk.copy()))
    assert len(seen) == len(seen_unit) == res.nit == unit.nit
    for x, x_unit in zip(seen, seen_unit, strict=True):
        np.testing.assert_array_equal(x, np.ldexp(x_unit, e))
    np.testing.assert_array_equal(res.residual_norms, np.ldexp(unit.residual_norms, e))
    with np.errstate(over="ignore", under="ignore"):
        expected = np.ldexp(unit.curvatures, 2 * e)
    np.testing.assert_array_equal(res.curvatures, expected)


def test_zero_iterations_allowed_is_max_iterations_at_x0():
    """maxiter = 0: no iteration, status MAX_ITERATIONS, x = x0 (unless b = 0)."""
    x0 = np.array([0.5, 0.25])
    res = tr.cg(np.diag([2.0, 3.0]), np.ones(2), x0=x0, maxiter=0)
    assert res.status is CGStatus.MAX_ITERATIONS and res.nit == 0 and not res.success
    np.testing.assert_array_equal(res.x, x0)
