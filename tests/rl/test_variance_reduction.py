"""Variance reduction, measured against exact answers on random tabular MDPs.

The single-sample score-function estimator draws :math:`s \\sim d_\\pi`,
:math:`a \\sim \\pi(\\cdot|s)` and returns :math:`\\hat g = \\nabla_\\theta \\log
\\pi_\\theta(a|s)\\,(Q_\\pi(s, a) - b(s))`; its mean and total variance are finite sums
over :math:`(s, a)`, computed exactly here. GAE's mean and variance from a state-action
pair are solutions of two linear systems (first and second moments of
:math:`X = \\delta + \\gamma\\lambda X'`), checked once against sampled trajectories run
through :func:`rl.advantages.gae`.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import jacobian
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.advantages import gae
from rl.mdp import TabularMDP, random_mdp
from tests.strategies import finite_floats, random_mdps

EPS = np.finfo(np.float64).eps


def _log_softmax(theta, shape):
    z = anp.reshape(theta, shape)
    z = z - anp.max(z, axis=1, keepdims=True)
    return z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))


@st.composite
def mdp_and_theta(draw, scale=3.0):
    P, R, gamma, mu0 = draw(random_mdps(max_states=4, max_actions=3))
    mdp = TabularMDP(P, R, gamma, mu0)
    n = mdp.num_states * mdp.num_actions
    theta = draw(hnp.arrays(np.float64, (n,), elements=finite_floats(-scale, scale)))
    return mdp, theta


def _scores(mdp, theta):
    """``(pi, G)``: the policy and its scores ``G[s, a] = grad_theta log pi(a|s)``."""
    shape = (mdp.num_states, mdp.num_actions)
    log_pi = _log_softmax(theta, shape)
    G = jacobian(lambda th: _log_softmax(th, shape))(theta)
    return np.exp(log_pi), G


def _moments(mdp, theta, b):
    """Exact mean and total variance tr Cov of g = score (Q - b(s)) under s ~ d, a ~ pi."""
    pi, G = _scores(mdp, theta)
    d = mdp.visitation(pi, normalized=True)
    weight = d[:, None] * pi  # P(s, a)
    signal = mdp.q_values(pi) - np.broadcast_to(np.asarray(b, dtype=float).reshape(-1, 1),
                                                 pi.shape)
    mean = np.einsum("sa,san->n", weight * signal, G)
    second = np.sum(weight * signal**2 * np.sum(G**2, axis=2))
    return mean, second - mean @ mean


# ----------------------------------------------------------------------------- baselines
@given(mdp_and_theta(), st.lists(finite_floats(-5.0, 5.0), min_size=4, max_size=4))
def test_baseline_adds_no_bias_to_the_score_function_estimator(args, b):
    """E_{a~pi(.|s)}[grad log pi(a|s) b(s)] = sum_a grad pi(a|s) b(s) = 0 at every state
    (eq. baseline-unbiased), so the estimator's exact mean is (1 - gamma) grad eta with
    any state baseline b(s), the true V_pi included. Tolerance: rounding of sums of
    O(|b|) terms."""
    mdp, theta = args
    S, A = mdp.num_states, mdp.num_actions
    b = np.asarray(b[:S])
    pi, G = _scores(mdp, theta)
    per_state = np.einsum("sa,san->sn", pi, G) * b[:, None]
    assert np.max(np.abs(per_state)) <= 16 * A * EPS * (1 + np.max(np.abs(b)))

    def policy(th):
        return anp.exp(_log_softmax(th, (S, A)))

    exact = (1 - mdp.gamma) * mdp.policy_gradient(policy, theta)
    scale = 1 + np.max(np.abs(mdp.R)) / (1 - mdp.gamma) + np.max(np.abs(b))
    kappa = (1 + mdp.gamma) / (1 - mdp.gamma)
    tol = 64 * S * A * kappa * EPS * scale
    V = mdp.value(pi)
    for baseline in (np.zeros(S), b, V):
        mean, _ = _moments(mdp, theta, baseline)
        np.testing.assert_allclose(mean, exact, rtol=0, atol=tol)


@given(mdp_and_theta(), st.lists(finite_floats(-20.0, 20.0), min_size=5, max_size=5))
def test_optimal_constant_baseline_minimises_the_variance_among_constants(args, others):
    """b* = E[|g|^2 Q] / E[|g|^2] (variance_reduction.rst, the derivation of b*):
    tr Cov(b) = tr Cov(b*) + E[|g|^2] (b - b*)^2 exactly, so b* attains the minimum over
    all constants (zero and the mean return included). Tolerance: rounding of the
    second moment, O(eps) relative to E[|g|^2 (Q - b)^2]."""
    mdp, theta = args
    pi, G = _scores(mdp, theta)
    d = mdp.visitation(pi, normalized=True)
    weight = d[:, None] * pi
    g2 = np.sum(G**2, axis=2)
    Q = mdp.q_values(pi)
    if np.sum(weight * g2) == 0.0:  # a deterministic policy to rounding: no variance at all
        return
    b_star = np.sum(weight * g2 * Q) / np.sum(weight * g2)
    _, var_star = _moments(mdp, theta, b_star)
    eta_mean = float(np.sum(weight * Q))  # E[Q], the plain mean-return baseline
    for b in [0.0, eta_mean, *others]:
        _, var_b = _moments(mdp, theta, b)
        gap = np.sum(weight * g2) * (b - b_star) ** 2
        scale = np.sum(weight * g2 * (np.abs(Q) + abs(b)) ** 2) + 1.0
        assert var_b == pytest.approx(var_star + gap, abs=256 * EPS * scale)
        assert var_star <= var_b + 256 * EPS * scale


@pytest.mark.parametrize("seed", range(6))
def test_value_baseline_removes_the_variance_a_reward_offset_adds(seed):
    """Adding c to every reward adds c/(1-gamma) to every Q: without a baseline the
    variance grows by E[|g|^2 (Q + c')^2] - E[|g|^2 Q^2] (quadratic in c'), with b = V_pi
    it does not change at all (A_pi is unchanged), and the mean is the same either way.
    For an offset as large as the rewards' spread the value baseline is the smaller."""
    base = random_mdp(4, 3, gamma=0.9, seed=seed)
    theta = np.random.default_rng(seed).normal(size=12)
    means, var_none, var_value = [], [], []
    for c in (0.0, 1.0, 10.0):
        mdp = TabularMDP(base.P, base.R + c, base.gamma, base.mu0)
        pi, _ = _scores(mdp, theta)
        m0, v0 = _moments(mdp, theta, 0.0)
        mV, vV = _moments(mdp, theta, mdp.value(pi))
        means += [m0, mV]
        var_none.append(v0)
        var_value.append(vV)
    for m in means[1:]:
        np.testing.assert_allclose(m, means[0], rtol=0, atol=1e-12 * 100)
    assert var_value == pytest.approx([var_value[0]] * 3, rel=1e-10)
    assert var_none[0] < var_none[1] < var_none[2]
    assert var_value[0] < var_none[2]


# ----------------------------------------------------------------------------- GAE
def _gae_moments(mdp, pi, V_hat, lam):
    """Exact mean and variance of GAE(gamma, lam) at t = 0 given (s_0, a_0) = (s, a),
    over infinite trajectories, as (S, A) arrays.

    X = delta(s, a, s') + kappa X(s', a'), kappa = gamma lam, with delta = R(s, a) +
    gamma V_hat(s') - V_hat(s) and (s', a') ~ P(.|s, a) pi(.|s'), so with the pair
    kernel T[(s, a), (s', a')] = P(s'|s, a) pi(a'|s'):
    M1 = m + kappa T M1 and M2 = c + kappa^2 T M2, c = E[delta^2 + 2 kappa delta M1'].
    """
    S, A = mdp.num_states, mdp.num_actions
    kappa = mdp.gamma * lam
    delta = mdp.R[:, :, None] + mdp.gamma * V_hat[None, None, :] - V_hat[:, None, None]
    T = (mdp.P[:, :, :, None] * pi[None, None, :, :]).reshape(S * A, S * A)
    m = np.sum(mdp.P * delta, axis=2).reshape(-1)
    M1 = np.linalg.solve(np.eye(S * A) - kappa * T, m)
    next_mean = np.sum(pi * M1.reshape(S, A), axis=1)  # E[X' | s']
    c = np.sum(mdp.P * (delta**2 + 2 * kappa * delta * next_mean[None, None, :]), axis=2)
    M2 = np.linalg.solve(np.eye(S * A) - kappa**2 * T, c.reshape(-1))
    return M1.reshape(S, A), (M2 - M1**2).reshape(S, A)


def _policy_and_critic(seed):
    mdp = random_mdp(4, 3, gamma=0.9, seed=seed)
    rng = np.random.default_rng(seed)
    pi = np.exp(_log_softmax(rng.normal(size=12), (4, 3)))
    V = mdp.value(pi)
    V_hat = V + rng.normal(scale=0.5 * np.std(V) + 0.1, size=4)  # an imperfect critic
    return mdp, pi, V, V_hat


def test_exact_gae_moments_match_sampled_gae():
    """The linear-solve moments of GAE agree with rl.advantages.gae on 4000 sampled
    trajectories of 80 steps from one (s, a) (truncation bias (gamma lam)^80 < 1e-4 of
    the scale): mean within 4 standard errors, variance within 4 standard errors of the
    sample variance (its SE from the fourth moment)."""
    mdp, pi, _, V_hat = _policy_and_critic(0)
    lam, N, H, s0, a0 = 0.9, 4000, 80, 1, 2
    rng = np.random.default_rng(0)
    S, A = mdp.num_states, mdp.num_actions
    states = np.empty((H + 1, N), dtype=int)
    actions = np.empty((H, N), dtype=int)
    states[0] = s0
    for t in range(H):
        s = states[t]
        actions[t] = a0 if t == 0 else (rng.random(N)[:, None] > np.cumsum(pi[s], axis=1)).sum(1)
        cdf = np.cumsum(mdp.P[s, actions[t]], axis=1)
        states[t + 1] = np.minimum((rng.random(N)[:, None] > cdf).sum(1), S - 1)
    actions = np.minimum(actions, A - 1)
    rewards = mdp.R[states[:-1], actions]
    no = np.zeros((H, N), dtype=bool)
    last = no.copy()
    last[-1] = True  # the rollout is cut at H: bootstrap from V_hat(s_H)
    adv = gae(rewards, V_hat[states[:-1]], V_hat[states[1:]], no, last, mdp.gamma, lam)[0]
    M1, var = _gae_moments(mdp, pi, V_hat, lam)
    se_mean = np.std(adv) / np.sqrt(N)
    centred = adv - adv.mean()
    se_var = np.sqrt((np.mean(centred**4) - np.var(adv) ** 2) / N)
    assert abs(adv.mean() - M1[s0, a0]) <= 4 * se_mean
    assert abs(np.var(adv) - var[s0, a0]) <= 4 * se_var


@pytest.mark.parametrize("seed", range(4))
def test_gae_variance_falls_and_bias_grows_as_lambda_decreases(seed):
    """GAE paper §3 [Schulman2016]: lambda trades variance for bias. Exactly, on random
    MDPs with an imperfect critic V_hat = V + noise: with the true V every lambda is
    unbiased for A_pi; with V_hat the d pi-weighted mean variance falls and the RMS of
    the action-dependent bias (the part that biases the policy gradient; lambda = 1 has
    none) grows as lambda goes 1 -> 0.95 -> 0.8 -> 0.5 -> 0."""
    mdp, pi, V, V_hat = _policy_and_critic(seed)
    A_true = mdp.advantages(pi)
    weight = mdp.visitation(pi, normalized=True)[:, None] * pi
    kappa = (1 + mdp.gamma) / (1 - mdp.gamma)
    tol = 64 * 12 * kappa * EPS * (1 + np.max(np.abs(mdp.R)) / (1 - mdp.gamma))
    variances, biases = [], []
    for lam in (1.0, 0.95, 0.8, 0.5, 0.0):
        mean_true, _ = _gae_moments(mdp, pi, V, lam)
        np.testing.assert_allclose(mean_true, A_true, rtol=0, atol=tol)
        mean, var = _gae_moments(mdp, pi, V_hat, lam)
        bias = mean - A_true
        action_bias = bias - np.sum(pi * bias, axis=1, keepdims=True)
        variances.append(float(np.sum(weight * var)))
        biases.append(float(np.sqrt(np.sum(weight * action_bias**2))))
    assert biases[0] <= tol
    assert all(b > a for a, b in zip(variances[1:], variances[:-1], strict=True)), variances
    assert all(b > a + tol for a, b in zip(biases[:-1], biases[1:], strict=True)), biases
