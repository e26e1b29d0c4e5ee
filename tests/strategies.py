"""Hypothesis strategies that build valid inputs by construction.

SPD matrices are ``Q diag(lam) Q^T`` with ``Q`` orthogonal (from a drawn matrix's
QR factorisation) and a drawn spectrum; random MDPs have drawn non-negative
weights normalised into probabilities. No random number generator is used
inside a strategy: every number is drawn by Hypothesis, so failures shrink.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "finite_floats",
    "vectors",
    "orthogonal_matrices",
    "spd_matrices",
    "spd_with_distinct_eigenvalues",
    "symmetric_matrices",
    "indefinite_matrices",
    "random_mdps",
    "stochastic_matrices",
    "nonzero_vectors",
    "spd_with_spectrum",
    "indefinite_with_negative_component",
    "long_path_subproblems",
]


def finite_floats(min_value=-10.0, max_value=10.0):
    """Bounded floats without NaN, inf or subnormals."""
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


def vectors(n, *, min_value=-10.0, max_value=10.0):
    return hnp.arrays(np.float64, (n,), elements=finite_floats(min_value, max_value))


@st.composite
def orthogonal_matrices(draw, n):
    """An orthogonal ``n x n`` matrix: the Q factor of a drawn, well-conditioned matrix."""
    G = draw(hnp.arrays(np.float64, (n, n), elements=finite_floats(-1.0, 1.0)))
    G = G + 3.0 * np.eye(n)  # keep it comfortably nonsingular so QR is well defined
    Q, R = np.linalg.qr(G)
    # Householder Q is orthogonal even when R is singular; fix the signs without zeroing
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


@st.composite
def spd_matrices(draw, n=None, *, max_n=12, max_log10_cond=6.0, return_spectrum=False):
    """``A = Q diag(lam) Q^T`` with eigenvalues log-uniform in ``[1, 10**max_log10_cond]``."""
    if n is None:
        n = draw(st.integers(1, max_n))
    Q = draw(orthogonal_matrices(n))
    logs = draw(hnp.arrays(np.float64, (n,), elements=finite_floats(0.0, max_log10_cond)))
    lam = 10.0**logs
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    return (A, lam, Q) if return_spectrum else A


@st.composite
def spd_with_distinct_eigenvalues(draw, n, k):
    """SPD ``n x n`` matrix whose spectrum has exactly ``k`` distinct values (``k <= n``)."""
    Q = draw(orthogonal_matrices(n))
    values = draw(st.lists(st.integers(1, 1000), min_size=k, max_size=k, unique=True))
    counts = draw(st.lists(st.integers(1, n), min_size=k, max_size=k))
    # distribute n eigenvalues among the k distinct values, each used at least once
    mult = np.ones(k, dtype=int)
    extra = n - k
    for i in range(extra):
        mult[counts[i % k] % k] += 1
    lam = np.repeat(np.asarray(values, dtype=np.float64) / 10.0, mult)
    A = (Q * lam) @ Q.T
    return 0.5 * (A + A.T)


@st.composite
def symmetric_matrices(draw, n, *, scale=10.0):
    Q = draw(orthogonal_matrices(n))
    lam = draw(hnp.arrays(np.float64, (n,), elements=finite_floats(-scale, scale)))
    A = (Q * lam) @ Q.T
    return 0.5 * (A + A.T)


@st.composite
def indefinite_matrices(draw, n):
    """Symmetric with at least one eigenvalue <= -0.1 (``n >= 1``)."""
    Q = draw(orthogonal_matrices(n))
    lam = draw(hnp.arrays(np.float64, (n,), elements=finite_floats(-10.0, 10.0)))
    i = draw(st.integers(0, n - 1))
    lam[i] = -draw(finite_floats(0.1, 10.0))
    A = (Q * lam) @ Q.T
    return 0.5 * (A + A.T)


@st.composite
def stochastic_matrices(draw, rows, cols, *, min_weight=0.0):
    """Row-stochastic ``rows x cols`` matrix from drawn non-negative weights."""
    W = draw(hnp.arrays(np.float64, (rows, cols), elements=finite_floats(0.0, 1.0)))
    W = W + min_weight + 1e-3
    return W / W.sum(axis=1, keepdims=True)


@st.composite
def random_mdps(draw, *, max_states=5, max_actions=3, min_gamma=0.5, max_gamma=0.95):
    """Arguments ``(P, R, gamma, mu0)`` of a random tabular MDP with full support."""
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(1, max_actions))
    P = draw(stochastic_matrices(S * A, S)).reshape(S, A, S)
    R = draw(hnp.arrays(np.float64, (S, A), elements=finite_floats(-1.0, 1.0)))
    gamma = draw(finite_floats(min_gamma, max_gamma))
    mu0 = draw(stochastic_matrices(1, S))[0]
    return P, R, gamma, mu0


def nonzero_vectors(n, *, min_norm=1e-3):
    """Vectors with ``||v|| >= min_norm`` and no entry below 1e-100 in magnitude."""
    return (
        vectors(n)
        .map(lambda v: np.where(np.abs(v) < 1e-100, 0.0, v))
        .filter(lambda v: np.linalg.norm(v) >= min_norm)
    )


def spd_with_spectrum(n=None, **kwargs):
    """``(A, lam, Q)``: an SPD matrix with its eigenvalues and orthogonal eigenvectors."""
    return spd_matrices(n, return_spectrum=True, **kwargs)


@st.composite
def indefinite_with_negative_component(draw, max_n=8):
    """``(A, v)``: ``A`` symmetric with eigenvalues ``|lambda| in [0.1, 10]``, at least one
    negative, and ``v`` with a component of size >= 1 on a negative eigenvector while the
    others are <= 1 (so CG or Steihaug on ``A`` must meet the negative curvature)."""
    n = draw(st.integers(1, max_n))
    Q = draw(orthogonal_matrices(n))
    mags = draw(vectors(n, min_value=0.1, max_value=10.0))
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    i = draw(st.integers(0, n - 1))
    signs[i] = -1.0
    w = draw(vectors(n, min_value=-1.0, max_value=1.0))
    w[i] = draw(st.sampled_from([-1.0, 1.0])) * draw(finite_floats(1.0, 10.0))
    A = (Q * (signs * mags)) @ Q.T
    return 0.5 * (A + A.T), Q @ w


@st.composite
def long_path_subproblems(draw, *, min_n=4, max_n=10, max_log10_cond=3.0,
                          preconditioned=False):
    """``(g, H, Delta, M, c)`` on which truncated CG takes many steps before it stops.

    ``H = Q diag(lam) Q^T`` is SPD with eigenvalues log-uniform in ``[1, 10**max_log10_cond]``
    and ``g = Q w`` has every component ``|w_i| >= 0.1``, so CG needs about ``n`` iterations
    to reach the Newton step ``p_N = -H^{-1} g``. The radius is ``Delta = c ||p_N||_M`` (the
    ``M^{-1}``-norm of ``p_N`` when preconditioned, else the Euclidean one) with ``c`` in
    ``[0.3, 0.99]`` (the path crosses the boundary after several interior steps) or in
    ``[1.01, 3]`` (the Newton step is interior). ``M`` is SPD with ``kappa(M) <= 10`` and a
    drawn scale, or ``None``.
    """
    n = draw(st.integers(min_n, max_n))
    Q = draw(orthogonal_matrices(n))
    logs = draw(hnp.arrays(np.float64, (n,), elements=finite_floats(0.0, max_log10_cond)))
    lam = 10.0**logs
    H = (Q * lam) @ Q.T
    H = 0.5 * (H + H.T)
    mags = draw(vectors(n, min_value=0.1, max_value=10.0))
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    g = Q @ (signs * mags)
    M = None
    if preconditioned:
        M = draw(spd_matrices(n, max_log10_cond=1.0)) / draw(finite_floats(0.1, 10.0))
    p_newton = -np.linalg.solve(H, g)
    norm = np.sqrt(p_newton @ np.linalg.solve(M, p_newton)) if preconditioned else \
        np.linalg.norm(p_newton)
    c = draw(st.one_of(finite_floats(0.3, 0.99), finite_floats(1.01, 3.0)))
    return g, H, c * norm, M, c
