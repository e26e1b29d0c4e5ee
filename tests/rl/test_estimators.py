"""Sampled estimators converge to the exact tabular answers.

Data come from the real sampling path (:class:`~rl.sampling.SinglePathSampler` on a
:class:`~rl.mdp.TabularMDP` with a horizon), the estimates from the code the algorithms
use (:class:`~rl.algorithms.objective.PolicyObjective`, :func:`~rl.advantages.compute_advantages`).
Episodes are independent, so each test forms one number (or vector) per episode and
compares the mean with the exact value within ``Z`` standard errors of that mean.
``Z = 5`` makes a false alarm of a correct estimator a <1e-6 event per component, at a
fixed seed a deterministic pass; a biased estimator (e.g. a missing discount, a wrong
visitation weighting) is off by many standard errors at these sample sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

from rl.advantages import compute_advantages
from rl.algorithms.objective import PolicyObjective
from rl.envs import make_vector_env
from rl.mdp import random_mdp
from rl.policies import TabularSoftmax
from rl.sampling import SinglePathSampler

Z = 5.0
S, A, GAMMA, H = 4, 3, 0.7, 40  # gamma^H ~ 6e-7: the horizon cut is far below the SEs
EPISODES_PER_ENV, NUM_ENVS = 125, 8  # 1000 independent episodes


@pytest.fixture(scope="module")
def setting():
    mdp = random_mdp(S, A, gamma=GAMMA, seed=7, horizon=H)
    policy = TabularSoftmax(S, A)
    policy.theta = np.random.default_rng(1).normal(size=S * A)
    venv = make_vector_env(mdp, NUM_ENVS, seed=3)
    batch = SinglePathSampler(venv, policy, H * EPISODES_PER_ENV, seed=5).sample()
    venv.close()
    assert batch.truncated.sum() == NUM_ENVS * EPISODES_PER_ENV  # episodes align with H
    return mdp, policy, batch


def _episode_ids(batch):
    T, N = batch.rewards.shape
    return (np.arange(T)[:, None] // H) * N + np.arange(N)[None, :]


def _scores(policy, states, actions):
    """grad_theta log pi(a|s) of a tabular softmax: e_{s,a} - pi(.|s) in block s."""
    pi = policy.probs(policy.theta)
    g = np.zeros((states.size, S, A))
    g[np.arange(states.size), states] = -pi[states]
    g[np.arange(states.size), states, actions] += 1.0
    return g.reshape(states.size, S * A)


def _per_episode_sums(values, ids):
    out = np.zeros((ids.max() + 1,) + values.shape[1:])
    np.add.at(out, ids, values)
    return out


def _assert_within_se(per_episode, exact):
    mean = per_episode.mean(axis=0)
    se = per_episode.std(axis=0, ddof=1) / np.sqrt(per_episode.shape[0])
    assert np.all(np.abs(mean - exact) <= Z * se + 1e-12), (mean, exact, se)
    return mean


def test_sampled_policy_gradient_converges_to_the_exact_gradient(setting):
    """E[sum_t gamma^t grad log pi(a_t|s_t) A_pi(s_t, a_t)] = grad eta (policy-gradient
    theorem, Sutton et al. 2000); the discounted-weight PolicyObjective gradient is that
    estimator normalised, and its per-episode mean is within Z SE of mdp.policy_gradient."""
    mdp, policy, batch = setting
    s, a = batch.flat("observations"), batch.flat("actions")
    t, ids = batch.flat("timesteps"), _episode_ids(batch).reshape(-1)
    adv = np.asarray(mdp.advantages(policy.probs(policy.theta)))[s, a]
    disc = GAMMA ** t
    per_episode = _per_episode_sums(disc[:, None] * adv[:, None] * _scores(policy, s, a), ids)
    exact = np.asarray(mdp.policy_gradient(policy.probs, policy.theta))
    mean = _assert_within_se(per_episode, exact)
    # the objective the algorithms step on computes the same estimator (normalised weights)
    obj = PolicyObjective(policy, s, a, adv, batch.flat("log_probs"), batch.flat("dist_params"),
                          weights=disc / disc.sum())
    g_obj = obj.gradient() * disc.sum() / per_episode.shape[0]
    np.testing.assert_allclose(g_obj, mean, rtol=1e-10, atol=1e-12)


def test_sampled_fisher_vector_products_converge_to_the_exact_fisher(setting):
    """(1 - gamma) E[sum_t gamma^t F(s_t)] v = sum_s d_pi(s) F(s) v = F v: the
    discounted-weight Fisher operator of PolicyObjective is within Z SE of mdp.fisher @ v."""
    mdp, policy, batch = setting
    s, a = batch.flat("observations"), batch.flat("actions")
    t, ids = batch.flat("timesteps"), _episode_ids(batch).reshape(-1)
    disc = GAMMA ** t
    v = np.random.default_rng(2).normal(size=S * A)
    F_exact = np.asarray(mdp.fisher(policy.probs, policy.theta))
    # per-state Fisher of the softmax, applied to v: E_a[score score^T] v
    pi = policy.probs(policy.theta)
    Fs_v = np.zeros((S, S * A))
    for state in range(S):
        scores = _scores(policy, np.full(A, state), np.arange(A))
        Fs_v[state] = (pi[state][:, None] * scores).T @ (scores @ v)
    per_episode = (1 - GAMMA) * _per_episode_sums(disc[:, None] * Fs_v[s], ids)
    mean = _assert_within_se(per_episode, F_exact @ v)
    obj = PolicyObjective(policy, s, a, np.zeros(s.size), batch.flat("log_probs"),
                          batch.flat("dist_params"), weights=disc / disc.sum())
    fv = obj.fisher_operator() @ v * (1 - GAMMA) * disc.sum() / per_episode.shape[0]
    np.testing.assert_allclose(fv, mean, rtol=1e-9, atol=1e-12)


class ExactValues:
    """A baseline that knows V_pi exactly (so GAE(1) is unbiased for A_pi)."""

    def __init__(self, V):
        self.V = np.asarray(V)

    def predict(self, obs, timesteps=None):
        return self.V[np.asarray(obs, dtype=int)]


def test_sampled_gae_advantages_converge_to_the_exact_advantages(setting):
    """With the exact V as baseline, E[GAE(gamma, 1) at t = 0 | s_0, a_0] = Q - V = A_pi
    (Schulman et al. 2016, eq. (18) with the truncation bootstrapped by V); one sample per
    episode keeps the samples independent."""
    mdp, policy, batch = setting
    pi = policy.probs(policy.theta)
    adv, _ = compute_advantages(batch, ExactValues(mdp.value(pi)), GAMMA, 1.0, normalize=False)
    first = batch.timesteps == 0
    s0, a0, A0 = batch.observations[first], batch.actions[first], adv[first]
    exact = np.asarray(mdp.advantages(pi))
    checked = 0
    for state in range(S):
        for action in range(A):
            sel = (s0 == state) & (a0 == action)
            if sel.sum() < 30:
                continue
            _assert_within_se(A0[sel][:, None], np.array([exact[state, action]]))
            checked += 1
    assert checked >= 4


def test_sampled_td_residuals_are_unbiased_for_the_exact_advantages(setting):
    """With the exact V, GAE(gamma, 0) is the TD residual delta_t = r_t + gamma V(s_{t+1})
    - V(s_t), and E[delta_t | s_t, a_t] = A_pi(s_t, a_t). The residual's noise is a
    martingale difference (it depends only on the fresh s_{t+1}), so the per-(s, a) means
    over all steps have the usual standard error."""
    mdp, policy, batch = setting
    pi = policy.probs(policy.theta)
    adv, _ = compute_advantages(batch, ExactValues(mdp.value(pi)), GAMMA, 0.0, normalize=False)
    s, a, d = batch.flat("observations"), batch.flat("actions"), adv.reshape(-1)
    exact = np.asarray(mdp.advantages(pi))
    for state in range(S):
        for action in range(A):
            sel = (s == state) & (a == action)
            if sel.sum() >= 30:
                _assert_within_se(d[sel][:, None], np.array([exact[state, action]]))
