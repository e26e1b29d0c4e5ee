"""The Kronecker-factored operator: dense agreement, symmetry, definiteness, exact inverse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import finite_floats, spd_matrices, vectors

EPS = np.finfo(np.float64).eps


@st.composite
def factored_blocks(draw):
    """1-3 blocks, each an (A, G) pair of SPD factors or a dense SPD block, and their size."""
    blocks, n = [], 0
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            A = draw(spd_matrices(max_n=4, max_log10_cond=3.0))
            G = draw(spd_matrices(max_n=4, max_log10_cond=3.0))
            blocks.append((A, G))
            n += A.shape[0] * G.shape[0]
        else:
            B = draw(spd_matrices(max_n=4, max_log10_cond=3.0))
            blocks.append(B)
            n += B.shape[0]
    return blocks, n


def _dense(blocks, lam=0.0, pi_damping=True):
    """The damped matrix assembled independently with numpy.kron."""
    mats = []
    for b in blocks:
        if isinstance(b, tuple):
            A, G = b
            pi = 1.0
            if pi_damping:
                pi = np.sqrt((np.trace(A) / len(A)) / (np.trace(G) / len(G)))
            r = np.sqrt(lam)
            mats.append(np.kron(A + pi * r * np.eye(len(A)), G + r / pi * np.eye(len(G))))
        else:
            mats.append(b + lam * np.eye(len(b)))
    n = sum(len(m) for m in mats)
    M, o = np.zeros((n, n)), 0
    for m in mats:
        M[o:o + len(m), o:o + len(m)] = m
        o += len(m)
    return M


@given(factored_blocks(), st.sampled_from([0.0, 1e-3, 0.1]), st.booleans(), st.data())
@settings(max_examples=40)
def test_kronecker_operator_matches_the_dense_matrix(blocks_n, lam, pi_damping, data):
    """K v = (blockdiag of (A + pi sqrt(l) I) kron (G + sqrt(l)/pi I) and B + l I) v, the
    matrix built with numpy.kron; todense() is that matrix; the row-major vec identity
    (A kron G) vec(V) = vec(A V G) is what makes the product cheap."""
    blocks, n = blocks_n
    K = tr.kronecker_factored_operator(blocks, damping=lam, pi_damping=pi_damping)
    M = _dense(blocks, lam, pi_damping)
    v = data.draw(vectors(n))
    scale = np.linalg.norm(M, 2) * np.linalg.norm(v) + 1.0
    assert K.shape == (n, n)
    np.testing.assert_allclose(K @ v, M @ v, rtol=0, atol=64 * n * EPS * scale)
    np.testing.assert_allclose(K.todense(), M, rtol=0, atol=64 * n * EPS * np.abs(M).max())


@given(factored_blocks(), st.sampled_from([0.0, 1e-2]), st.data())
@settings(max_examples=40)
def test_kronecker_inverse_inverts_the_forward_product(blocks_n, lam, data):
    """K (K^{-1} v) = v and K^{-1} (K v) = v to kappa eps; K^{-1} equals inv(dense K)."""
    blocks, n = blocks_n
    K = tr.kronecker_factored_operator(blocks, damping=lam)
    Kinv = K.inverse()
    M = K.todense()
    kappa = np.linalg.cond(M)
    v = data.draw(vectors(n))
    tol = 64 * n * EPS * kappa * (np.linalg.norm(v) + 1.0)
    np.testing.assert_allclose(K @ (Kinv @ v), v, rtol=0, atol=tol)
    np.testing.assert_allclose(Kinv @ (K @ v), v, rtol=0, atol=tol)
    np.testing.assert_allclose(Kinv @ v, np.linalg.solve(M, v), rtol=0,
                               atol=tol * np.linalg.norm(np.linalg.inv(M), 2))


@given(st.integers(1, 4), st.integers(1, 4), finite_floats(1e-4, 1.0), st.data())
@settings(max_examples=30)
def test_damping_makes_singular_factors_positive_definite(a, g, lam, data):
    """Rank-one factors u u^T and w w^T (singular unless 1x1): with damping lam > 0 the
    operator is symmetric positive definite, its smallest eigenvalue at least lam (the
    pi-split damping contains lam I, plus PSD cross terms), and its inverse exists."""
    u = data.draw(vectors(a, min_value=-2.0, max_value=2.0))
    w = data.draw(vectors(g, min_value=-2.0, max_value=2.0))
    K = tr.kronecker_factored_operator([(np.outer(u, u), np.outer(w, w))], damping=lam)
    M = K.todense()
    np.testing.assert_array_equal(M, M.T)
    eig = np.linalg.eigvalsh(M)
    assert eig[0] >= lam * (1 - 1e-9) - 64 * a * g * EPS * max(1.0, eig[-1])
    x = data.draw(vectors(a * g))
    assert float(x @ (K.inverse() @ x)) >= 0.0


@pytest.mark.parametrize("w", [6.63643492e-155, 1e-160, 1e100])
def test_pi_damping_with_a_trace_at_the_edge_of_the_float_range(w):
    """A factor whose trace is subnormal (w^2 for w = 6.6e-155, as a randomized run found)
    or huge: the pi split neither overflows nor loses the damping; the smallest
    eigenvalue is still at least lam and the inverse undoes the product."""
    lam = 1.0
    K = tr.kronecker_factored_operator([(np.ones((1, 1)), np.array([[w * w]]))], damping=lam)
    M = K.todense()
    assert np.all(np.isfinite(M))
    assert np.linalg.eigvalsh(M)[0] >= lam * (1 - 1e-12)
    x = np.ones(1)
    np.testing.assert_allclose(K @ (K.inverse() @ x), x, rtol=1e-12)


def test_an_undamped_singular_factor_has_no_inverse():
    """Without damping a singular factor cannot be inverted: a clear error, asked up front."""
    K = tr.kronecker_factored_operator([(np.zeros((2, 2)), np.eye(2))], damping=0.0)
    with pytest.raises(ValueError, match="damping > 0"):
        K.inverse()


@pytest.mark.parametrize("blocks,kw,match", [
    ([(np.array([[1.0, 2.0], [0.0, 1.0]]), np.eye(1))], {}, "symmetric"),
    ([(np.eye(2), np.ones((2, 3)))], {}, "square"),
    ([np.eye(2)], {"damping": -1.0}, "damping"),
    ([np.eye(2)], {"pi_damping": "yes"}, "pi_damping"),
    ([], {}, "at least one entry"),
    (np.eye(2), {}, "sequence"),
])
def test_kronecker_operator_rejects_bad_input(blocks, kw, match):
    with pytest.raises(ValueError, match=match):
        tr.kronecker_factored_operator(blocks, **kw)
