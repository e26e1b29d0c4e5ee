"""Theorems about the action distributions: normalisation, closed forms, KL, Fisher.

References: Cover & Thomas, *Elements of Information Theory* (entropy, KL, Gibbs'
inequality); Amari (1998) for the Fisher information as the Hessian of the KL.
"""

from __future__ import annotations

import itertools

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special
import scipy.stats
from autograd import hessian, jacobian
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.distributions import Bernoulli, Categorical, DiagGaussian, Distribution, MultiCategorical
from tests.strategies import finite_floats

EPS = np.finfo(np.float64).eps
NVEC = (2, 3, 1)  # a MultiDiscrete action with a one-choice sub-action among the blocks


# -- strategies -------------------------------------------------------------------------
@st.composite
def logits(draw, *, max_rows=4, max_actions=5, scale=10.0, shape=None):
    """Logits of shape (N, A), entries in [-scale, scale]."""
    if shape is None:
        shape = (draw(st.integers(1, max_rows)), draw(st.integers(1, max_actions)))
    return draw(hnp.arrays(np.float64, shape, elements=finite_floats(-scale, scale)))


@st.composite
def gaussian_params(draw, *, max_rows=4, max_dim=3, shape=None):
    """[mean, log_std] of shape (N, 2d): mean in [-5, 5], log_std in [-2, 2]."""
    if shape is None:
        shape = (draw(st.integers(1, max_rows)), draw(st.integers(1, max_dim)))
    mean = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-5.0, 5.0)))
    log_std = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-2.0, 2.0)))
    return np.concatenate([mean, log_std], axis=1)


@st.composite
def logit_pairs(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)))
    return draw(logits(shape=shape)), draw(logits(shape=shape))


@st.composite
def gaussian_pairs(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    return draw(gaussian_params(shape=shape)), draw(gaussian_params(shape=shape))


# -- Categorical ----------------------------------------------------------------------
@given(logits())
def test_categorical_probabilities_normalised_and_equal_softmax(l):
    """Σ_a p_a = 1 and log p = log_softmax(l) (scipy.special.log_softmax).

    Rounding: each log p_a is a difference of O(|l|) numbers, error ≤ c·eps·(1 + max|l|).
    """
    d = Categorical(l)
    N, A = l.shape
    tol = 8 * A * EPS * (1.0 + np.abs(l).max())
    assert np.allclose(d.probs().sum(axis=1), 1.0, rtol=0, atol=8 * A * EPS)
    ref = scipy.special.log_softmax(l, axis=1)
    assert np.allclose(d.log_probs(), ref, rtol=0, atol=tol)
    a = np.arange(N) % A
    assert np.allclose(d.log_prob(a), ref[np.arange(N), a], rtol=0, atol=tol)


@given(logits(), st.floats(-700.0, 700.0))
def test_categorical_log_prob_is_shift_invariant_and_finite(l, c):
    """softmax(l + c) = softmax(l): the log-sum-exp is stable even when exp(l + c) overflows."""
    shifted = Categorical(l + c).log_probs()
    assert np.all(np.isfinite(shifted))
    tol = 8 * l.shape[1] * EPS * (1.0 + np.abs(l).max() + abs(c))
    assert np.allclose(shifted, Categorical(l).log_probs(), rtol=0, atol=tol)


@given(logits())
def test_categorical_entropy_matches_scipy(l):
    """H(p) = −Σ p_a log p_a equals scipy.stats.entropy (Cover & Thomas eq. 2.1)."""
    p = scipy.special.softmax(l, axis=1)
    ref = scipy.stats.entropy(p, axis=1)
    tol = 16 * l.shape[1] * EPS * (1.0 + np.abs(l).max())
    assert np.allclose(Categorical(l).entropy(), ref, rtol=0, atol=tol)


@given(logit_pairs())
def test_categorical_kl_matches_scipy_is_nonnegative_and_zero_on_self(pair):
    """KL(p‖q) = Σ p log(p/q) ≥ 0 (Gibbs' inequality), KL(p‖p) = 0, and it equals
    scipy.stats.entropy(p, q)."""
    l1, l2 = pair
    p, q = Categorical(l1), Categorical(l2)
    tol = 32 * l1.shape[1] * EPS * (1.0 + np.abs(l1).max() + np.abs(l2).max())
    kl = p.kl(q)
    ref = scipy.stats.entropy(scipy.special.softmax(l1, 1), scipy.special.softmax(l2, 1), axis=1)
    assert kl.shape == (l1.shape[0],)
    assert np.all(kl >= -tol)
    assert np.allclose(kl, ref, rtol=1e-9, atol=tol)
    assert np.allclose(p.kl(p), 0.0, rtol=0, atol=tol)


@given(logits(max_actions=5, scale=3.0))
def test_categorical_sample_frequencies_match_probabilities(l):
    """Empirical frequencies of M inverse-CDF draws are within 5 binomial standard errors
    sqrt(p(1 − p)/M) of p (the logits are bounded so every M p ≥ 10)."""
    M = 20_000
    p = scipy.special.softmax(l[0])
    d = Categorical(np.repeat(l[:1], M, axis=0))
    a = d.sample(np.random.default_rng(0))
    assert a.shape == (M,) and a.min() >= 0 and a.max() < l.shape[1]
    freq = np.bincount(a, minlength=l.shape[1]) / M
    se = np.sqrt(p * (1.0 - p) / M)
    assert np.all(np.abs(freq - p) <= 5.0 * se + 1.0 / M)


@given(logits())
def test_categorical_sample_with_log_prob_and_mode(l):
    """sample_with_log_prob returns log p(a) of the drawn a; the mode is the argmax of l."""
    d = Categorical(l)
    a, log_p = d.sample_with_log_prob(np.random.default_rng(1))
    tol = 8 * l.shape[1] * EPS * (1.0 + np.abs(l).max())
    assert np.allclose(log_p, d.log_prob(a), rtol=0, atol=tol)
    assert np.array_equal(d.mode(), np.argmax(l, axis=1))


def test_categorical_sample_is_reproducible():
    """Same generator seed, same actions (randomness is explicit)."""
    d = Categorical(np.zeros((50, 4)))
    a1 = d.sample(np.random.default_rng(3))
    a2 = d.sample(np.random.default_rng(3))
    assert np.array_equal(a1, a2)


# -- DiagGaussian ----------------------------------------------------------------------
@given(gaussian_params(), st.integers(0, 2**32 - 1))
def test_gaussian_log_prob_matches_scipy_norm(params, seed):
    """log p(x) = Σ_i log N(x_i; μ_i, σ_i²) (scipy.stats.norm.logpdf), σ = exp(log_std)."""
    d = DiagGaussian(params)
    mu, sigma = d.mean, np.exp(d.log_std)
    x = mu + sigma * np.random.default_rng(seed).standard_normal(mu.shape) * 3.0
    ref = scipy.stats.norm.logpdf(x, mu, sigma).sum(axis=1)
    assert np.allclose(d.log_prob(x), ref, rtol=1e-12, atol=1e-12)


@given(gaussian_params())
def test_gaussian_entropy_matches_scipy(params):
    """H = Σ_i log σ_i + (d/2)(1 + log 2π) (Cover & Thomas Thm. 8.4.1), as scipy.stats.norm."""
    d = DiagGaussian(params)
    ref = scipy.stats.norm(d.mean, np.exp(d.log_std)).entropy().sum(axis=1)
    assert np.allclose(d.entropy(), ref, rtol=1e-12, atol=1e-12)


@given(gaussian_pairs())
def test_gaussian_kl_is_nonnegative_and_zero_on_self(pair):
    """KL(p‖q) ≥ 0 with equality iff p = q (Gibbs' inequality); KL(p‖p) is exactly 0."""
    p, q = DiagGaussian(pair[0]), DiagGaussian(pair[1])
    assert np.all(p.kl(q) >= 0.0)
    assert np.array_equal(p.kl(p), np.zeros(len(p)))


@given(gaussian_pairs())
def test_gaussian_kl_matches_textbook_closed_form(pair):
    """KL = Σ_i [log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − ½] (Duchi 2007)."""
    p, q = DiagGaussian(pair[0]), DiagGaussian(pair[1])
    sp, sq = np.exp(p.log_std), np.exp(q.log_std)
    ref = np.sum(np.log(sq / sp) + (sp**2 + (p.mean - q.mean) ** 2) / (2 * sq**2) - 0.5, axis=1)
    # the textbook form cancels: its rounding error is ~ eps times its largest term
    terms = np.abs(np.log(sq / sp)) + (sp**2 + (p.mean - q.mean) ** 2) / (2 * sq**2) + 0.5
    scale = terms.sum(axis=1)
    assert np.allclose(p.kl(q), ref, rtol=0, atol=float(64 * EPS * scale.max()))


@pytest.mark.parametrize(
    "params_p, params_q",
    [
        ([[0.0, 0.0]], [[1.0, 0.5]]),
        ([[0.3, -1.0, -0.5, 0.2]], [[0.0, 0.5, 0.1, -0.3]]),
        ([[2.0, 0.0, -1.0, 0.4, -0.2, 0.0]], [[1.5, 0.3, -1.0, 0.0, 0.0, 0.5]]),
    ],
)
def test_gaussian_kl_closed_form_matches_monte_carlo(params_p, params_q):
    """KL(p‖q) = E_{x∼p}[log p(x) − log q(x)]: the closed form lies within 4 standard errors
    of the Monte Carlo mean over M = 200 000 draws (fixed seed); SE = std/√M."""
    M = 200_000
    p = DiagGaussian(np.repeat(np.array(params_p), M, axis=0))
    q = DiagGaussian(np.repeat(np.array(params_q), M, axis=0))
    x = p.sample(np.random.default_rng(12345))
    w = p.log_prob(x) - q.log_prob(x)
    se = w.std(ddof=1) / np.sqrt(M)
    kl = DiagGaussian(np.array(params_p)).kl(DiagGaussian(np.array(params_q)))[0]
    assert abs(w.mean() - kl) <= 4.0 * se


@given(gaussian_params(max_rows=1), st.integers(0, 2**32 - 1))
def test_gaussian_sample_moments_and_log_prob(params, seed):
    """Draws have mean μ and variance σ² (sample mean within 5 SE σ/√M, sample variance within
    5 SE σ²√(2/(M−1))); sample_with_log_prob returns log p of its draw; the mode is μ."""
    M = 20_000
    d1 = DiagGaussian(params)
    d = DiagGaussian(np.repeat(params, M, axis=0))
    x, log_p = d.sample_with_log_prob(np.random.default_rng(seed))
    mu, var = d1.mean[0], np.exp(2 * d1.log_std[0])
    assert np.all(np.abs(x.mean(axis=0) - mu) <= 5.0 * np.sqrt(var / M))
    assert np.all(np.abs(x.var(axis=0, ddof=1) - var) <= 5.0 * var * np.sqrt(2.0 / (M - 1)))
    assert np.allclose(log_p, d.log_prob(x), rtol=1e-12, atol=1e-12)
    assert np.array_equal(d1.mode(), d1.mean)


@given(gaussian_params(max_rows=3), hnp.arrays(np.float64, 3, elements=finite_floats(-2, 2)))
def test_from_mean_log_std_broadcasts(params, shared):
    """from_mean_log_std(mean, s) with s of shape (d,) gives the rows [mean_i, s]."""
    d = params.shape[1] // 2
    mean = params[:, :d]
    g = DiagGaussian.from_mean_log_std(mean, shared[:d])
    assert np.array_equal(g.params, np.concatenate([mean, np.tile(shared[:d], (len(mean), 1))], 1))
    assert np.array_equal(DiagGaussian.from_mean_log_std(mean, params[:, d:]).params, params)


# -- Fisher information ----------------------------------------------------------------
def _kl_hessian(dist_class, y):
    """Dense Hessian of y' ↦ Σ_i KL(p_{y_i} ‖ p_{y'_i}) at y' = y, shape (N·P, N·P)."""
    shape = y.shape

    def kl_sum(flat):
        return anp.sum(dist_class(y).kl(dist_class(anp.reshape(flat, shape))))

    return hessian(kl_sum)(y.ravel())


@pytest.mark.parametrize("dist_class, strategy", [
    (Categorical, logits(max_rows=3, max_actions=4)),
    (DiagGaussian, gaussian_params(max_rows=3, max_dim=2)),
    (MultiCategorical.for_nvec(NVEC), st.integers(1, 3).flatmap(
        lambda n: logits(shape=(n, sum(NVEC))))),
    (Bernoulli, logits(max_rows=3, max_actions=4)),
])
@given(data=st.data())
def test_fisher_vector_equals_hessian_of_kl(dist_class, strategy, data):
    """F(y) u = ∇²_{y'} KL(p_y ‖ p_{y'})|_{y'=y} u (Amari 1998): the analytic fisher_vector
    against the autograd Hessian, for every row at once (the Hessian is block diagonal)."""
    y = data.draw(strategy)
    u = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats(-1.0, 1.0)))
    H = _kl_hessian(dist_class, y)
    Fu = dist_class.fisher_vector(y, u)
    assert Fu.shape == y.shape
    tol = 64 * y.size * EPS * (1.0 + np.abs(H).max()) * (1.0 + np.abs(u).max())
    assert np.allclose(Fu.ravel(), H @ u.ravel(), rtol=0, atol=tol)


@given(logits(max_rows=3, max_actions=5), st.data())
def test_categorical_fisher_equals_expected_score_outer_product(l, data):
    """F(l) = E_{a∼p}[∇_l log p_a ∇_l log p_a^T], the exact finite sum, with scores from
    autograd (Fisher's definition; Cover & Thomas §11.10)."""
    u = data.draw(hnp.arrays(np.float64, l.shape, elements=finite_floats(-1.0, 1.0)))
    for i in range(l.shape[0]):
        scores = jacobian(lambda row: Categorical(row[None, :]).log_probs()[0])(l[i])  # (A, A)
        p = scipy.special.softmax(l[i])
        F = (scores.T * p) @ scores
        Fu = Categorical.fisher_vector(l[i : i + 1], u[i : i + 1])[0]
        assert np.allclose(Fu, F @ u[i], rtol=0, atol=64 * l.shape[1] * EPS)


@given(gaussian_params(max_rows=1, max_dim=2), st.data())
def test_gaussian_fisher_equals_expected_score_outer_product(y, data):
    """F(μ, s) = E_{x∼p}[∇ log p(x) ∇ log p(x)^T]. The score is a polynomial of degree ≤ 2 in
    x, so the expectation is computed exactly by tensor Gauss–Hermite quadrature with
    5 nodes per dimension (exact for degree ≤ 9; Abramowitz & Stegun 25.4.46)."""
    u = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats(-1.0, 1.0)))
    d = y.shape[1] // 2
    nodes, weights = np.polynomial.hermite_e.hermegauss(5)  # weight exp(-z²/2)
    weights = weights / np.sqrt(2 * np.pi)
    mu, sigma = y[0, :d], np.exp(y[0, d:])

    def log_p(params, x):
        return DiagGaussian(params[None, :]).log_prob(x[None, :])[0]

    score = jacobian(log_p)
    F = np.zeros((2 * d, 2 * d))
    for idx in itertools.product(range(len(nodes)), repeat=d):
        z = nodes[list(idx)]
        g = score(y[0], mu + sigma * z)
        F += np.prod(weights[list(idx)]) * np.outer(g, g)
    Fu = DiagGaussian.fisher_vector(y, u)[0]
    scale = np.abs(F).max() * (1.0 + np.abs(u).max())
    assert np.allclose(Fu, F @ u[0], rtol=0, atol=1e3 * EPS * scale)


@pytest.mark.parametrize("dist_class, strategy", [
    (Categorical, logits()),
    (DiagGaussian, gaussian_params()),
    (MultiCategorical.for_nvec(NVEC), st.integers(1, 4).flatmap(
        lambda n: logits(shape=(n, sum(NVEC))))),
    (Bernoulli, logits()),
])
@given(data=st.data())
def test_fisher_vector_is_symmetric_positive_semidefinite(dist_class, strategy, data):
    """F(y) is symmetric PSD: the dense matrix built column by column from fisher_vector has
    F = Fᵀ and eigenvalues ≥ −tol (a covariance of scores)."""
    y = data.draw(strategy)
    n = y.size
    cols = [dist_class.fisher_vector(y, e.reshape(y.shape)).ravel() for e in np.eye(n)]
    F = np.array(cols).T
    tol = 16 * n * EPS * (1.0 + np.abs(F).max())
    assert np.allclose(F, F.T, rtol=0, atol=tol)
    assert np.linalg.eigvalsh(0.5 * (F + F.T)).min() >= -tol


# -- bad input --------------------------------------------------------------------------
def test_bad_shapes_raise_clear_errors():
    """Wrong shapes are ValueErrors that name the argument and the expected shape."""
    with pytest.raises(ValueError, match="logits must be a 2-D array"):
        Categorical(np.zeros(3))
    with pytest.raises(ValueError, match="even number of columns"):
        DiagGaussian(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"actions must have shape \(2,\)"):
        Categorical(np.zeros((2, 3))).log_prob(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 1\)"):
        DiagGaussian(np.zeros((2, 2))).log_prob(np.zeros(2))
    with pytest.raises(ValueError, match="other must be a Categorical"):
        Categorical(np.zeros((2, 2))).kl(DiagGaussian(np.zeros((2, 2))))
    with pytest.raises(ValueError, match="other.params must have the shape"):
        Categorical(np.zeros((2, 2))).kl(Categorical(np.zeros((3, 2))))
    with pytest.raises(ValueError, match="log_std shape"):
        DiagGaussian.from_mean_log_std(np.zeros((2, 3)), np.zeros(2))


@pytest.mark.parametrize("dist_class", [Categorical, DiagGaussian])
@given(data=st.data())
def test_fisher_product_equals_weighted_fisher_vector(dist_class, data):
    """``fisher_product(y, w)(u) = w ⊙ fisher_vector(y, u)`` for every u, with the softmax /
    variances precomputed once (the products a CG solve takes at fixed parameters)."""
    n = data.draw(st.integers(1, 6))
    k = data.draw(st.integers(1, 4))
    cols = k if dist_class is Categorical else 2 * k
    floats = st.floats(-8.0, 8.0, allow_nan=False)
    y = data.draw(hnp.arrays(np.float64, (n, cols), elements=floats))
    w = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.0, 3.0)))
    product = dist_class.fisher_product(y, w)
    for _ in range(2):  # the closure is reused
        u = data.draw(hnp.arrays(np.float64, (n, cols), elements=floats))
        expected = w[:, None] * dist_class.fisher_vector(y, u)
        np.testing.assert_allclose(product(u), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dist_class.fisher_product(y)(u), dist_class.fisher_vector(y, u),
                               rtol=1e-12, atol=1e-12)
    # the base-class default (no precomputation) gives the same products
    np.testing.assert_allclose(Distribution.fisher_product.__func__(dist_class, y, w)(u),
                               expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        dist_class.fisher_product(y, np.ones(n + 1))


@given(data=st.data())
def test_categorical_fisher_product_keeps_relative_accuracy_near_a_deterministic_policy(data):
    """With one logit far above the others, ``F u = p ⊙ (u − p·u)`` is a small difference of
    order-one numbers; ``fisher_product`` must still give every entry to ~1e-13 relative
    accuracy. The reference ``p_a Σ_b p_b (u_a − u_b)`` has no cancellation."""
    a = data.draw(st.integers(2, 5))
    gap = data.draw(st.floats(8.0, 30.0))
    l = np.zeros((1, a))
    l[0, data.draw(st.integers(0, a - 1))] = gap
    l += data.draw(hnp.arrays(np.float64, (1, a), elements=st.floats(-1.0, 1.0)))
    u = data.draw(hnp.arrays(np.float64, (1, a), elements=st.floats(-2.0, 2.0)))
    p = np.exp(l - scipy.special.logsumexp(l))
    reference = p * np.sum(p[:, None, :] * (u[:, :, None] - u[:, None, :]), axis=-1)
    got = Categorical.fisher_product(l)(u)
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-300)


def test_categorical_log_prob_requires_integer_actions_in_range():
    """Float actions (silently truncated before), negative ones (wrapped around) and ones
    past the last action are ValueErrors naming the valid range; integers of any width
    are accepted."""
    d = Categorical(np.log([[0.2, 0.8], [0.5, 0.5]]))
    for actions in (np.array([0.7, 1.2]), np.array([0, -1]), np.array([2, 0]),
                    np.array([True, False])):
        with pytest.raises(ValueError, match=r"actions must be integers in \[0, 2\)"):
            d.log_prob(actions)
    for dtype in (np.int8, np.uint32, np.int64):
        assert np.allclose(np.exp(d.log_prob(np.array([1, 0], dtype=dtype))), [0.8, 0.5])


# -- masked actions (logit -inf) --------------------------------------------------------
@st.composite
def masked_logits(draw, shape=None):
    """Logits (N, A) with some entries -inf and at least one finite entry per row."""
    l = draw(logits(max_actions=5, shape=shape))
    mask = draw(hnp.arrays(bool, l.shape))
    mask[np.arange(l.shape[0]), draw(hnp.arrays(np.int64, l.shape[0],
                                                elements=st.integers(0, l.shape[1] - 1)))] = False
    return np.where(mask, -np.inf, l)


@given(masked_logits(), st.data())
def test_categorical_entropy_and_kl_with_masked_actions(l, data):
    """With logits -inf (probability 0) the terms ``0 log 0`` count as 0: entropy and
    ``KL(p ‖ q)`` match scipy (finite where the support of p is inside that of q, +inf
    where it is not), and their gradients in the logits are finite."""
    p = np.exp(l - scipy.special.logsumexp(l, axis=1, keepdims=True))
    d = Categorical(l)
    h = d.entropy()
    assert np.allclose(h, scipy.stats.entropy(p, axis=1), rtol=1e-12, atol=1e-12)
    assert np.array_equal(d.kl(d), np.zeros(l.shape[0]))
    other = data.draw(masked_logits(shape=l.shape))
    q = np.exp(other - scipy.special.logsumexp(other, axis=1, keepdims=True))
    expected = scipy.special.rel_entr(p, q).sum(axis=1)
    kl = d.kl(Categorical(other))
    assert np.array_equal(np.isinf(kl), np.isinf(expected))
    finite = np.isfinite(expected)
    assert np.allclose(kl[finite], expected[finite], rtol=1e-9, atol=1e-12)
    grad_h = jacobian(lambda x: anp.sum(Categorical(x).entropy()))(l)
    grad_kl = jacobian(lambda x: anp.sum(d.kl(Categorical(x))))(np.where(np.isinf(l), -1.0, l))
    assert np.all(np.isfinite(grad_h[np.isfinite(l)])) and np.all(np.isfinite(grad_kl))


def _plain_entropy(l):
    logp = Categorical(l).log_probs()
    return -anp.sum(anp.exp(logp) * logp, axis=-1)


def _plain_kl(l, m):
    logp = Categorical(l).log_probs()
    return anp.sum(anp.exp(logp) * (logp - Categorical(m).log_probs()), axis=-1)


@given(logit_pairs(), st.sampled_from([1.0, 100.0]))
def test_categorical_entropy_and_kl_are_bitwise_the_plain_formulas_for_finite_logits(pair, s):
    """For finite logits (probabilities that underflow to 0 included, scale 100) entropy,
    KL and their gradients are bit for bit those of ``-Σ p log p`` and ``Σ p (log p - log
    q)``: the handling of p = 0 changes nothing the algorithms compute."""
    l, m = s * pair[0], s * pair[1]
    assert np.array_equal(Categorical(l).entropy(), _plain_entropy(l))
    assert np.array_equal(Categorical(l).kl(Categorical(m)), _plain_kl(l, m))
    grad = jacobian(lambda x: anp.sum(Categorical(x).entropy()))
    assert np.array_equal(grad(l), jacobian(lambda x: anp.sum(_plain_entropy(x)))(l))
    in_q = jacobian(lambda x: anp.sum(Categorical(l).kl(Categorical(x))))(m)
    assert np.array_equal(in_q, jacobian(lambda x: anp.sum(_plain_kl(l, x)))(m))
    in_p = jacobian(lambda x: anp.sum(Categorical(x).kl(Categorical(m))))(l)
    assert np.array_equal(in_p, jacobian(lambda x: anp.sum(_plain_kl(x, m)))(l))


def test_reprs_are_short_summaries():
    """Distributions show their batch size and dimension, not an object address."""
    assert repr(Categorical(np.zeros((3, 4)))) == "Categorical(N=3, num_actions=4)"
    assert repr(DiagGaussian(np.zeros((5, 4)))) == "DiagGaussian(N=5, dim=2)"


# -- MultiCategorical and Bernoulli ----------------------------------------------------------
@st.composite
def multi_problems(draw, *, max_rows=3, scale=6.0):
    """``(dist_class, y, all_actions)``: a MultiCategorical with a drawn nvec (1 to 3 blocks of
    1 to 3 choices) or a Bernoulli of 1 to 3 bits, parameters y of shape (N, P) with entries in
    [-scale, scale], and every action of the space as an (M, K) integer array."""
    n = draw(st.integers(1, max_rows))
    if draw(st.booleans()):
        nvec = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
        dist_class, width = MultiCategorical.for_nvec(nvec), sum(nvec)
    else:
        nvec = (2,) * draw(st.integers(1, 3))
        dist_class, width = Bernoulli, len(nvec)
    y = draw(logits(shape=(n, width), scale=scale))
    actions = np.array(list(itertools.product(*[range(k) for k in nvec])), dtype=np.int64)
    return dist_class, y, actions


def _enumerated(dist_class, y, actions):
    """log p(a | y_i) for every row i and every action a, shape (N, M), by the public
    log_prob of one row repeated M times."""
    M = len(actions)
    return np.stack([dist_class(np.repeat(y[i:i + 1], M, axis=0)).log_prob(actions)
                     for i in range(y.shape[0])])


@given(multi_problems(), st.data())
def test_multi_distributions_exact_expectations_over_every_action(problem, data):
    """Summing over every action of the space (exact expectations, no sampling):
    Σ_a p(a) = 1; the score has mean zero, E_a[∇_y log p(a|y)] = 0; the Fisher is the score
    covariance, F(y) = E_a[∇ log p ∇ log pᵀ]; H = −E_a[log p]; KL(p‖q) = E_a[log p − log q].
    Scores are autograd's gradients of log_prob; tolerances are eps times the number of
    terms and the size of the logs."""
    dist_class, y, actions = problem
    q = data.draw(logits(shape=y.shape, scale=6.0))
    log_p, log_q = _enumerated(dist_class, y, actions), _enumerated(dist_class, q, actions)
    p = np.exp(log_p)
    M, P = len(actions), y.shape[1]
    tol = 64 * M * P * EPS * (1.0 + np.abs(log_p).max() + np.abs(log_q).max())
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=tol)
    d = dist_class(y)
    np.testing.assert_allclose(d.entropy(), -(p * log_p).sum(axis=1), rtol=0, atol=tol)
    np.testing.assert_allclose(d.kl(dist_class(q)), (p * (log_p - log_q)).sum(axis=1),
                               rtol=0, atol=tol)
    u = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats(-1.0, 1.0)))
    for i in range(y.shape[0]):
        row = y[i:i + 1]
        scores = np.stack([
            jacobian(lambda r, a=a: dist_class(r).log_prob(a[None, :])[0])(row)[0]
            for a in actions])  # (M, P)
        np.testing.assert_allclose(p[i] @ scores, np.zeros(P), rtol=0, atol=tol)
        F = (scores.T * p[i]) @ scores
        np.testing.assert_allclose(dist_class.fisher_vector(row, u[i:i + 1])[0], F @ u[i],
                                   rtol=0, atol=tol)


@given(multi_problems(max_rows=4))
def test_multi_distributions_kl_is_zero_on_self_and_nonnegative(problem):
    """KL(p‖p) = 0 exactly (the log-ratios cancel term by term) and KL(p‖q) ≥ 0 (Gibbs)."""
    dist_class, y, _ = problem
    d = dist_class(y)
    assert np.array_equal(d.kl(d), np.zeros(len(d)))
    other = dist_class(y[::-1] + 1.0)
    assert np.all(d.kl(other) >= -8 * y.shape[1] * EPS * (1.0 + np.abs(y).max()))


@pytest.mark.parametrize("dist_class, y_p, y_q", [
    (MultiCategorical.for_nvec((3, 2)), [[0.5, -1.0, 0.2, 1.0, 0.0]], [[0.0, 0.3, -0.4, 0.0, 0.8]]),
    (Bernoulli, [[1.5, -0.5, 0.0]], [[0.2, 0.7, -1.2]]),
])
def test_multi_distributions_kl_closed_form_matches_monte_carlo(dist_class, y_p, y_q):
    """KL(p‖q) = E_{a∼p}[log p(a) − log q(a)]: the closed form lies within 4 standard errors
    of the Monte Carlo mean over M = 200 000 draws of the sampler (fixed seed), and the draws'
    sample_with_log_prob equals log_prob."""
    M = 200_000
    p = dist_class(np.repeat(np.array(y_p), M, axis=0))
    q = dist_class(np.repeat(np.array(y_q), M, axis=0))
    a, log_p = p.sample_with_log_prob(np.random.default_rng(2024))
    np.testing.assert_allclose(log_p, p.log_prob(a), rtol=0, atol=1e-13)
    w = log_p - q.log_prob(a)
    se = w.std(ddof=1) / np.sqrt(M)
    kl = dist_class(np.array(y_p)).kl(dist_class(np.array(y_q)))[0]
    assert abs(w.mean() - kl) <= 4.0 * se


@given(multi_problems(max_rows=1, scale=3.0))
def test_multi_distributions_sample_frequencies_and_mode(problem):
    """Every joint action is drawn with frequency within 5 binomial standard errors of p(a)
    (M = 20 000 draws; logits bounded so no p(a) is vanishingly small), and the mode is the
    most probable joint action (the sub-actions are independent)."""
    dist_class, y, actions = problem
    M = 20_000
    p = np.exp(_enumerated(dist_class, y, actions))[0]
    a = dist_class(np.repeat(y, M, axis=0)).sample(np.random.default_rng(5))
    assert a.shape == (M, actions.shape[1]) and a.dtype == np.int64
    index = {tuple(row): k for k, row in enumerate(actions.tolist())}
    freq = np.bincount([index[tuple(row)] for row in a.tolist()], minlength=len(actions)) / M
    assert np.all(np.abs(freq - p) <= 5.0 * np.sqrt(p * (1.0 - p) / M) + 1.0 / M)
    mode = dist_class(y).mode()[0]
    assert p[index[tuple(mode.tolist())]] >= p.max() * (1.0 - 1e-12)


@given(logits(max_rows=4, max_actions=5))
def test_multicategorical_of_one_block_is_the_categorical(l):
    """With nvec = (A,) a MultiCategorical is the Categorical of its logits: log-probabilities,
    entropy, KL and Fisher products bit for bit."""
    A = l.shape[1]
    mc, cat = MultiCategorical(l, nvec=[A]), Categorical(l)
    a = np.arange(l.shape[0]) % A
    other = l[::-1]
    assert np.array_equal(mc.log_prob(a[:, None]), cat.log_prob(a))
    assert np.array_equal(mc.entropy(), cat.entropy())
    assert np.array_equal(mc.kl(MultiCategorical(other, [A])), cat.kl(Categorical(other)))
    assert np.array_equal(MultiCategorical.fisher_vector(l, other, nvec=[A]),
                          Categorical.fisher_vector(l, other))


@given(logits(max_rows=4, max_actions=4), st.data())
def test_bernoulli_bit_is_the_two_action_categorical(l, data):
    """Bit i of a Bernoulli with logit l_i is the Categorical with logits (0, l_i): same
    log-probabilities, entropy and KL; its Fisher p(1 − p) is the pull-back Jᵀ F_cat J with
    J = ∂(0, l)/∂l = (0, 1)ᵀ, i.e. the (1, 1) entry of diag(p) − p pᵀ."""
    n, d = l.shape
    m = data.draw(logits(shape=l.shape))
    x = data.draw(hnp.arrays(np.int64, l.shape, elements=st.integers(0, 1)))
    pairs = np.stack([np.zeros_like(l), l], axis=-1).reshape(n * d, 2)
    pairs_m = np.stack([np.zeros_like(m), m], axis=-1).reshape(n * d, 2)
    cat, cat_m = Categorical(pairs), Categorical(pairs_m)
    b = Bernoulli(l)
    tol = 32 * d * EPS * (1.0 + np.abs(l).max() + np.abs(m).max())
    np.testing.assert_allclose(b.log_prob(x), cat.log_prob(x.ravel()).reshape(n, d).sum(1),
                               rtol=0, atol=tol)
    np.testing.assert_allclose(b.entropy(), cat.entropy().reshape(n, d).sum(1), rtol=0, atol=tol)
    np.testing.assert_allclose(b.kl(Bernoulli(m)), cat.kl(cat_m).reshape(n, d).sum(1),
                               rtol=1e-12, atol=tol)
    e1 = np.tile([0.0, 1.0], (n * d, 1))
    F11 = Categorical.fisher_vector(pairs, e1)[:, 1].reshape(n, d)
    # the Categorical's p − p² cancels when p ≈ 1 (absolute error ~ eps); the Bernoulli's
    # exp(−softplus(l) − softplus(−l)) does not, so the two agree to an absolute few eps
    np.testing.assert_allclose(Bernoulli.fisher_vector(l, np.ones_like(l)), F11, rtol=0,
                               atol=8 * EPS)


@pytest.mark.parametrize("dist_class", [MultiCategorical.for_nvec(NVEC), Bernoulli])
@given(data=st.data())
def test_multi_fisher_product_equals_weighted_fisher_vector(dist_class, data):
    """``fisher_product(y, w)(u) = w ⊙ fisher_vector(y, u)``, the closure reused, and the
    base class's generic product agrees (the block and diagonal precomputations change
    nothing but the cost)."""
    n, width = data.draw(st.integers(1, 6)), sum(NVEC) if dist_class is not Bernoulli else 4
    floats = st.floats(-8.0, 8.0, allow_nan=False)
    y = data.draw(hnp.arrays(np.float64, (n, width), elements=floats))
    w = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.0, 3.0)))
    product = dist_class.fisher_product(y, w)
    for _ in range(2):
        u = data.draw(hnp.arrays(np.float64, (n, width), elements=floats))
        expected = w[:, None] * dist_class.fisher_vector(y, u)
        np.testing.assert_allclose(product(u), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Distribution.fisher_product.__func__(dist_class, y, w)(u),
                                   expected, rtol=1e-12, atol=1e-12)


def test_bernoulli_is_finite_and_accurate_at_extreme_logits():
    """At |l| = 800 (p rounds to 0 or 1) log-probabilities, entropy, KL and the Fisher stay
    finite; p(1 − p) = e^{−|l|}(1 + O(e^{−|l|})) keeps full relative accuracy at |l| = 40."""
    l = np.array([[800.0, -800.0, 40.0, -40.0]])
    d = Bernoulli(l)
    assert np.all(np.isfinite(d.log_prob(np.array([[1, 0, 1, 0]]))))
    assert np.isfinite(d.entropy()).all() and np.isfinite(d.kl(Bernoulli(-l))).all()
    F = Bernoulli.fisher_vector(l, np.ones_like(l))
    np.testing.assert_allclose(F[0, 2:], np.exp(-40.0), rtol=1e-14)
    assert np.array_equal(d.kl(d), [0.0])


def test_multi_distributions_reject_bad_input():
    """Wrong shapes, a missing or bad nvec, out-of-range or non-integer actions and a KL
    against another kind of distribution are ValueErrors naming the argument and the fix."""
    with pytest.raises(ValueError, match="nvec is required"):
        MultiCategorical(np.zeros((2, 5)))
    for bad in ([], [2, 0], [[2, 3]], [2.5], "ab", [True, 2]):
        with pytest.raises(ValueError, match="nvec must be a non-empty 1-D sequence"):
            MultiCategorical.for_nvec(bad)
    with pytest.raises(ValueError, match=r"logits must have sum\(nvec\) = 5 columns"):
        MultiCategorical(np.zeros((2, 4)), nvec=[2, 3])
    mc = MultiCategorical.for_nvec([2, 3])(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 2\)"):
        mc.log_prob(np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"actions must be integers in \[0, 3\)"):
        mc.log_prob(np.array([[0, 3], [1, 0]]))
    with pytest.raises(ValueError, match=r"other must be a MultiCategorical with nvec \(2, 3\)"):
        mc.kl(MultiCategorical(np.zeros((2, 5)), nvec=[3, 2]))
    with pytest.raises(ValueError, match="other.params must have the shape"):
        mc.kl(MultiCategorical.for_nvec([2, 3])(np.zeros((3, 5))))
    assert MultiCategorical.for_nvec([2, 3]) is MultiCategorical.for_nvec(np.array([2, 3]))
    with pytest.raises(ValueError, match="logits must be a 2-D array"):
        Bernoulli(np.zeros(3))
    b = Bernoulli(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 3\)"):
        b.log_prob(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="actions must hold only 0 and 1"):
        b.log_prob(np.full((2, 3), 2))
    with pytest.raises(ValueError, match="actions must be integers or bools"):
        b.log_prob(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="other must be a Bernoulli"):
        b.kl(Categorical(np.zeros((2, 3))))
    assert repr(b) == "Bernoulli(N=2, dim=3)" and repr(mc) == "MultiCategorical(N=2, nvec=(2, 3))"
