"""The numbers and claims of docs/exercises.rst (N&W Exercises 4.1-4.10 and 5.1-5.10).

The tables are read from the page and recomputed, so the page cannot drift from the code;
the proofs that make a numerical claim are checked on random instances.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.linalg as sla
from autograd import grad
from hypothesis import given
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import finite_floats, nonzero_vectors, spd_matrices, spd_with_spectrum

PAGE = Path(__file__).resolve().parents[2] / "docs" / "exercises.rst"
EPS = np.finfo(np.float64).eps


def page_table(name: str) -> list[list[str]]:
    """The body rows of the simple table ``:name: name`` of the page, cells split on 2+
    spaces."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f":name: {name}")
    rules = [i for i in range(start, len(lines)) if re.fullmatch(r"\s*=+(\s+=+)*\s*", lines[i])]
    body = lines[rules[1] + 1: rules[2]]
    return [re.split(r"\s{2,}", line.strip()) for line in body if line.strip()]


# ----------------------------------------------------------------------------- chapter 4
def _f41(x):
    return 10.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2


def test_exercise_4_1_model_and_solution_paths():
    """At (0, -1): g = (-2, -20), B = diag(42, 20), ||p_N|| = 1.00113, the Newton step for
    Delta >= ||p_N|| and a boundary solution with lambda > 0 below. At (0, 0.5): g = (-2, 10),
    B = diag(-18, 20), every solution on the boundary with lambda > 18 and
    p = (2/(lambda-18), -10/(lambda+20))."""
    from autograd import hessian

    for x, g_expected, B_expected in [((0.0, -1.0), (-2.0, -20.0), np.diag([42.0, 20.0])),
                                      ((0.0, 0.5), (-2.0, 10.0), np.diag([-18.0, 20.0]))]:
        x = np.array(x)
        np.testing.assert_allclose(grad(_f41)(x), g_expected, rtol=1e-14)
        np.testing.assert_allclose(hessian(_f41)(x), B_expected, rtol=1e-14, atol=1e-14)
    g, B = np.array([-2.0, -20.0]), np.diag([42.0, 20.0])
    p_newton = -np.linalg.solve(B, g)
    assert np.linalg.norm(p_newton) == pytest.approx(1.00113, abs=5e-6)
    for Delta in (1.1, 1.5, 2.0):
        res = tr.exact(g, B, Delta)
        assert not res.hits_boundary
        np.testing.assert_allclose(res.p, p_newton, rtol=1e-12)
    for Delta in (0.1, 0.5, 1.0):
        res = tr.exact(g, B, Delta)
        assert res.hits_boundary and res.lam > 0.0
    g, B = np.array([-2.0, 10.0]), np.diag([-18.0, 20.0])
    for Delta in (0.1, 0.5, 1.0, 2.0):
        res = tr.exact(g, B, Delta)
        assert res.hits_boundary and res.lam > 18.0
        lam = res.lam
        np.testing.assert_allclose(res.p, [2.0 / (lam - 18.0), -10.0 / (lam + 20.0)], rtol=1e-8)
        assert np.linalg.norm(res.p) == pytest.approx(Delta, rel=1e-8)


def _rosen(x):
    return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2


_RULES = {
    "default": {},
    "eta = 0": {"eta": 0.0},
    "initial_radius = 0.1": {"initial_radius": 0.1},
    "initial_radius = 10, max_radius = 100": {"initial_radius": 10.0, "max_radius": 100.0},
}


def test_exercise_4_2_table():
    """Every row of the 4.2 table: iterations, rejected steps, and convergence to (1, 1)."""
    rows = page_table("exercise-4-2")
    assert len(rows) == 7
    for subproblem, rule, nit, nrejected, converged in rows:
        res = tr.minimize(_rosen, np.array([-1.2, 1.0]), subproblem=subproblem, gtol=1e-8,
                          **_RULES[rule])
        assert (res.nit, res.nrejected) == (int(nit), int(nrejected)), (subproblem, rule)
        at_solution = bool(res.success and np.allclose(res.x, 1.0, rtol=0, atol=1e-6))
        assert at_solution == (converged == "yes"), (subproblem, rule)


def _extended_rosenbrock(x):
    return anp.sum((1.0 - x[0::2]) ** 2 + 10.0 * (x[1::2] - x[0::2] ** 2) ** 2)


def test_exercise_4_3_table():
    """Every row of the 4.3 table: iterations and how each Steihaug call ended."""
    rows = page_table("exercise-4-3")
    assert [r[0] for r in rows] == ["10", "50"]
    for n, nit, interior, boundary, negative in rows:
        ended = Counter()

        def subproblem(g, H, radius, ended=ended):
            res = tr.steihaug(g, H, radius)
            ended[res.status.name] += 1
            return res

        res = tr.minimize(_extended_rosenbrock, np.tile([-1.2, 1.0], int(n) // 2),
                          subproblem=subproblem, gtol=1e-8)
        assert res.success and np.allclose(res.x, 1.0, atol=1e-6)
        assert res.nit == int(nit)
        assert (ended["INTERIOR"], ended["BOUNDARY"], ended["NEGATIVE_CURVATURE"]) == (
            int(interior), int(boundary), int(negative))


@given(spd_with_spectrum(max_log10_cond=4.0), st.data())
def test_exercise_4_6_gamma_at_most_one(spd, data):
    """gamma = ||g||^4 / ((g^T B g)(g^T B^-1 g)) <= 1 for SPD B, = 1 for an eigenvector."""
    B, lam, Q = spd
    n = B.shape[0]
    g = data.draw(nonzero_vectors(n))
    gamma = (g @ g) ** 2 / ((g @ B @ g) * (g @ np.linalg.solve(B, g)))
    kappa = lam.max() / lam.min()
    assert gamma <= 1.0 + 16 * n * kappa * EPS
    v = Q[:, data.draw(st.integers(0, n - 1))]
    gamma_v = 1.0 / ((v @ B @ v) * (v @ np.linalg.solve(B, v)))
    assert gamma_v == pytest.approx(1.0, rel=16 * n * kappa * EPS)


@given(spd_matrices(max_n=8, max_log10_cond=3.0), st.data())
def test_exercise_4_7_double_dogleg_path_grows(B, data):
    """||p|| increases along 0 -> p^C -> gamma_bar p^B -> p^B for gamma < gamma_bar <= 1;
    on the middle segment h'(0) = 2 (g^T g g^T B^-1 g / g^T B g)(gamma_bar - gamma)."""
    n = B.shape[0]
    g = data.draw(nonzero_vectors(n))
    gBg, gg, gBinvg = g @ B @ g, g @ g, g @ np.linalg.solve(B, g)
    gamma = gg**2 / (gBg * gBinvg)
    gamma_bar = gamma + (1.0 - gamma) * data.draw(finite_floats(0.01, 1.0))
    pC, pB = -(gg / gBg) * g, -np.linalg.solve(B, g)
    points = [np.zeros(n), pC, gamma_bar * pB, pB]
    ts = np.linspace(0.0, 1.0, 21)
    norms = [np.linalg.norm(a + t * (b - a))
             for a, b in zip(points[:-1], points[1:], strict=True) for t in ts]
    scale = np.linalg.norm(pB) * 64 * n * EPS * (1 + np.linalg.cond(B))
    assert all(b >= a - scale for a, b in zip(norms[:-1], norms[1:], strict=True))
    h0 = 2 * pC @ (gamma_bar * pB - pC)
    assert h0 == pytest.approx(2 * gg * gBinvg / gBg * (gamma_bar - gamma),
                               rel=1e-8, abs=scale * np.linalg.norm(pB))


@given(spd_with_spectrum(max_n=6, max_log10_cond=2.0), st.data())
def test_exercise_4_8_newton_step_on_phi2(spd, data):
    """N&W (4.43) = (4.44): lambda - phi2/phi2' = lambda + (||p||/||q||)^2 (||p|| - Delta)/Delta
    with q = R^-T p, B + lambda I = R^T R, phi2' by autograd."""
    B, lam, _ = spd
    n = B.shape[0]
    g = data.draw(nonzero_vectors(n))
    shift = data.draw(finite_floats(0.0, 10.0))
    Delta = data.draw(finite_floats(0.1, 10.0))

    def phi2(mu):
        p = -anp.linalg.solve(B + mu * anp.eye(n), g)
        return 1.0 / Delta - 1.0 / anp.sqrt(anp.dot(p, p))

    p = -np.linalg.solve(B + shift * np.eye(n), g)
    R = np.linalg.cholesky(B + shift * np.eye(n)).T
    q = sla.solve_triangular(R, p, trans="T")
    newton = shift - phi2(shift) / grad(phi2)(shift)
    closed = shift + (np.linalg.norm(p) / np.linalg.norm(q)) ** 2 * (
        np.linalg.norm(p) - Delta) / Delta
    kappa = (lam.max() + shift) / (lam.min() + shift)
    assert newton == pytest.approx(closed, rel=1e4 * kappa * EPS, abs=1e4 * kappa * EPS)


@given(spd_matrices(max_n=8, max_log10_cond=3.0), st.data())
def test_exercise_4_9_subspace_step_beats_dogleg(B, data):
    """The minimizer of m over span{g, B^-1 g} in the ball (the 2-D problem solved by
    tr.exact in an orthonormal basis) is the Newton step when it is inside, lies in the
    ball, and is no worse than the dogleg step, itself no worse than the Cauchy point."""
    n = B.shape[0]
    g = data.draw(nonzero_vectors(n))
    Delta = data.draw(finite_floats(0.01, 10.0))
    newton = -np.linalg.solve(B, g)

    def m(p):
        return g @ p + 0.5 * p @ B @ p

    Q, _ = np.linalg.qr(np.column_stack([g, newton]))
    if np.linalg.matrix_rank(np.column_stack([g, newton])) < 2:  # g an eigenvector: 1-D
        Q = Q[:, :1]
    sub = tr.exact(Q.T @ g, Q.T @ B @ Q, Delta)
    p = Q @ sub.p
    scale = 64 * n * np.linalg.cond(B) * EPS * (1 + abs(m(newton)) + np.linalg.norm(g) * Delta)
    assert np.linalg.norm(p) <= Delta * (1 + 1e-10)
    if np.linalg.norm(newton) <= Delta * (1 - 1e-8):
        np.testing.assert_allclose(p, newton, rtol=1e-6, atol=1e-9 * np.linalg.norm(newton))
    dog = tr.dogleg(g, B, Delta).p
    cauchy = tr.cauchy_point(g, B, Delta).p
    assert m(p) <= m(dog) + scale
    assert m(dog) <= m(cauchy) + scale


# ----------------------------------------------------------------------------- chapter 5
def test_exercise_5_1_table():
    """CG on Hilbert matrices, b = 1, x0 = 0, stopping at ||r|| <= 1e-6."""
    rows = page_table("exercise-5-1")
    assert [r[0] for r in rows] == ["5", "8", "12", "20"]
    for n, nit in rows:
        res = tr.cg(sla.hilbert(int(n)), np.ones(int(n)), rtol=0.0, atol=1e-6, maxiter=10**5)
        assert res.success and res.nit == int(nit), n


def _spectra(n, rng):
    five = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], n // 5)
    return {
        "5 distinct": five,
        "5 clusters of width 1e-3": five * (1 + 1e-3 * rng.uniform(-1, 1, n)),
        "5 clusters of width 1e-1": five * (1 + 1e-1 * rng.uniform(-1, 1, n)),
        "uniform in [1, 5]": np.linspace(1.0, 5.0, n),
        "uniform in [1, 1000]": np.linspace(1.0, 1000.0, n),
        "95 at 1, 5 outliers up to 1000": np.r_[np.ones(n - 5), [10.0, 100.0, 300.0, 600.0,
                                                                  1000.0]],
    }


def test_exercise_5_8_table():
    """CG iterations to rtol = 1e-6 on n = 100 systems with the table's spectra (one random
    orthogonal Q and b from seed 0, the cluster offsets drawn in the table's order)."""
    n = 100
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    b = rng.standard_normal(n)
    spectra = _spectra(n, rng)
    rows = page_table("exercise-5-8")
    assert [r[0] for r in rows] == list(spectra)
    for name, nit in rows:
        A = (Q * spectra[name]) @ Q.T
        res = tr.cg(0.5 * (A + A.T), b, rtol=1e-6, maxiter=10**4)
        assert res.success and res.nit == int(nit), name


@given(spd_matrices(max_n=10, max_log10_cond=2.0), st.data())
def test_exercise_5_3_to_5_6_cg_formulas(A, data):
    """Along CG (N&W's sign, r = A x - b): alpha_k = -r_k^T p_k / p_k^T A p_k minimizes phi on
    the line and equals r_k^T r_k / p_k^T A p_k; beta_{k+1} = r_{k+1}^T A p_k / p_k^T A p_k =
    r_{k+1}^T r_{k+1} / r_k^T r_k; the Hessian P^T A P of h(sigma) is positive definite, and
    diagonal (consecutive directions conjugate)."""
    n = A.shape[0]
    b = data.draw(nonzero_vectors(n))
    x = np.zeros(n)
    r = A @ x - b
    p = -r
    P, scale = [], 256 * n * np.linalg.cond(A) * EPS
    for _ in range(n):
        if np.linalg.norm(r) <= 1e-8 * np.linalg.norm(b):
            break
        Ap = A @ p
        alpha = -(r @ p) / (p @ Ap)
        assert alpha == pytest.approx((r @ r) / (p @ Ap), rel=scale)
        assert (A @ (x + alpha * p) - b) @ p == pytest.approx(0.0, abs=scale * np.linalg.norm(
            b) * np.linalg.norm(p))  # phi'(alpha) = 0
        x = x + alpha * p
        r_next = r + alpha * Ap
        beta = (r_next @ Ap) / (p @ Ap)
        assert beta == pytest.approx((r_next @ r_next) / (r @ r), rel=scale,
                                     abs=scale * (1 + np.linalg.norm(r_next) / np.linalg.norm(r)))
        P.append(p)
        r, p = r_next, -r_next + beta * p
    P = np.column_stack(P)
    H = P.T @ A @ P
    d = np.sqrt(np.diag(H))
    # positive definite, to rounding: once the residual is at rounding level the last
    # directions are nearly dependent, and the smallest eigenvalue is then ~eps
    assert np.min(np.linalg.eigvalsh(H / np.outer(d, d))) >= -1e3 * scale
    # consecutive directions are conjugate to rounding (global conjugacy decays in floating
    # point, the loss Exercise 5.1 shows)
    off = np.diag(H / np.outer(d, d), k=1)
    assert np.max(np.abs(off), initial=0.0) <= 1e3 * scale


@given(spd_with_spectrum(max_n=8, max_log10_cond=1.0),
       st.lists(finite_floats(-1.0, 1.0), min_size=1, max_size=4))
def test_exercise_5_7_eigenpairs(spd, coefficients):
    """[I + P_k(A) A]^T A [I + P_k(A) A] v_i = lambda_i (1 + lambda_i P_k(lambda_i))^2 v_i."""
    A, lam, Q = spd
    n = A.shape[0]
    PA = sum(c * np.linalg.matrix_power(A, j) for j, c in enumerate(coefficients))
    K = np.eye(n) + PA @ A
    M = K.T @ A @ K
    expected = lam * (1 + lam * np.polyval(coefficients[::-1], lam)) ** 2
    scale = 1e-10 * (1 + np.max(np.abs(expected)))
    np.testing.assert_allclose(M @ Q, Q * expected, rtol=0, atol=scale)


@given(spd_matrices(max_n=10, max_log10_cond=2.0), st.data())
def test_exercise_5_10_beta_formulas_agree(A, data):
    """Nonlinear CG on phi(x) = 1/2 x^T A x - b^T x with exact line searches: the
    Polak-Ribiere and Hestenes-Stiefel betas equal the Fletcher-Reeves one."""
    _check_beta_formulas(A, data.draw(nonzero_vectors(A.shape[0])))


def test_exercise_5_10_with_a_nearly_repeated_eigenvalue():
    """The case a randomized run found: CG converges in two steps to a residual that is
    small but not negligible, whose orthogonality to g_k holds only to rounding."""
    _check_beta_formulas(np.diag([1.0, 1.00002303, 1.00002303]), np.ones(3))


def _check_beta_formulas(A, b):
    n = A.shape[0]
    x = np.zeros(n)
    g = A @ x - b
    p = -g
    scale = 256 * n * np.linalg.cond(A) * EPS
    for _ in range(n - 1):
        if np.linalg.norm(g) <= 1e-6 * np.linalg.norm(b):
            break
        alpha = -(g @ p) / (p @ A @ p)  # the exact line search on the quadratic
        x = x + alpha * p
        g_next = A @ x - b
        fr = (g_next @ g_next) / (g @ g)
        pr = g_next @ (g_next - g) / (g @ g)
        hs = g_next @ (g_next - g) / ((g_next - g) @ p)
        # PR - FR = -g_{k+1}^T g_k / ||g_k||^2: zero in exact arithmetic; otherwise the
        # rounding of g_{k+1} = A x - b, ~ n eps (||A|| ||x|| + ||b||), over ||g_k||
        noise = 16 * n * EPS * (np.linalg.norm(A, 2) * np.linalg.norm(x) + np.linalg.norm(b))
        tol = scale + 4 * noise / np.linalg.norm(g)
        assert pr == pytest.approx(fr, rel=scale, abs=tol)
        assert hs == pytest.approx(fr, rel=scale, abs=tol)
        g, p = g_next, -g_next + fr * p
