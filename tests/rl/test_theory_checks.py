"""Identities of the theory pages checked on the library's own objects.

Each test checks one labelled equation against an independent computation: closed-form
softmax scores, the event form of the total variation, the exact Taylor coefficients of
the surrogate and of the KL along a chosen direction, and the branch PPO takes for a KL
placed just inside or just outside the adaptive-coefficient thresholds. Tolerances are
multiples of ``eps`` times the size of the summed terms; the Taylor checks add the next
term of the series, bounded by the choice of direction (see
:func:`test_trpo_local_models_have_second_and_third_order_errors`).
"""

from __future__ import annotations

import itertools

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.algorithms import PPO, PPOConfig
from rl.algorithms.objective import PolicyObjective
from rl.mdp import TabularMDP
from rl.policies import TabularSoftmax
from tests.strategies import finite_floats, stochastic_matrices

EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------- strategies
@st.composite
def mdp_and_policy(draw, *, min_actions=1, max_states=4, max_actions=3, scale=2.0):
    """A random MDP with full support (as ``tests.strategies.random_mdps``, with at least
    ``min_actions`` actions) and a :class:`TabularSoftmax` at drawn logits in
    ``[-scale, scale]``."""
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(min_actions, max_actions))
    P = draw(stochastic_matrices(S * A, S)).reshape(S, A, S)
    R = draw(hnp.arrays(np.float64, (S, A), elements=finite_floats(-1.0, 1.0)))
    gamma = draw(finite_floats(0.5, 0.95))
    mu0 = draw(stochastic_matrices(1, S))[0]
    policy = TabularSoftmax(S, A)
    policy.theta = draw(hnp.arrays(np.float64, (S * A,), elements=finite_floats(-scale, scale)))
    return TabularMDP(P, R, gamma, mu0), policy


@st.composite
def trajectories(draw, max_steps=6):
    """``(mdp, policy, states, actions)``: states ``s_0..s_T`` and actions ``a_0..a_{T-1}``.
    Every such trajectory has positive probability (full-support MDP, softmax policy)."""
    mdp, policy = draw(mdp_and_policy())
    T = draw(st.integers(1, max_steps))
    states = draw(hnp.arrays(np.int64, (T + 1,), elements=st.integers(0, mdp.num_states - 1)))
    actions = draw(hnp.arrays(np.int64, (T,), elements=st.integers(0, mdp.num_actions - 1)))
    return mdp, policy, states, actions


@st.composite
def clipped_batches(draw, max_samples=20):
    """A tabular policy at ``theta_old``, a batch ``(s_i, a_i, A_i)``, a step and a clip."""
    S, A = draw(st.integers(1, 4)), draw(st.integers(2, 3))
    M = draw(st.integers(1, max_samples))
    states = draw(hnp.arrays(np.int64, (M,), elements=st.integers(0, S - 1)))
    actions = draw(hnp.arrays(np.int64, (M,), elements=st.integers(0, A - 1)))
    advantages = draw(hnp.arrays(np.float64, (M,), elements=finite_floats(-5.0, 5.0)))
    theta_old = draw(hnp.arrays(np.float64, (S * A,), elements=finite_floats(-2.0, 2.0)))
    step = draw(hnp.arrays(np.float64, (S * A,), elements=finite_floats(-1.0, 1.0)))
    clip = draw(finite_floats(0.05, 0.5))
    return (S, A), states, actions, advantages, theta_old, step, clip


# ----------------------------------------------------------------------------- closed forms
def softmax_rows(theta, shape):
    """``pi(a|s) = exp(theta[s, a]) / sum_b exp(theta[s, b])`` in plain numpy."""
    z = np.reshape(theta, shape)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_score_sum(pi, states, actions):
    """``sum_i grad_theta log pi(a_i|s_i)`` in closed form: ``e_{s_i, a_i} - pi(.|s_i)`` on
    row ``s_i`` of the logit matrix, flattened."""
    score = np.zeros_like(pi)
    for s, a in zip(states, actions, strict=True):
        score[s] -= pi[s]
        score[s, a] += 1.0
    return score.reshape(-1)


# ----------------------------------------------------------------------------- policy gradient
@given(trajectories())
def test_trajectory_score_is_the_sum_of_policy_scores(args):
    """grad_theta log p_theta(tau) = sum_t grad_theta log pi_theta(a_t|s_t) (Williams 1992):
    log p_theta(tau) = log mu0(s_0) + sum_t [log pi(a_t|s_t) +
    log P(s_{t+1}|s_t, a_t)] differentiated by autograd equals the closed-form softmax
    scores, and so does the policy's own log_prob; log p - sum_t log pi is the dynamics
    term log mu0(s_0) + sum_t log P(s_{t+1}|s_t, a_t) at every theta."""
    mdp, policy, states, actions = args
    S, A, T = mdp.num_states, mdp.num_actions, actions.size
    theta = policy.theta

    def log_p(th):
        pi = policy.probs(th)
        total = anp.log(mdp.mu0[states[0]])
        for t in range(T):
            s, a, s_next = states[t], actions[t], states[t + 1]
            total = total + anp.log(pi[s, a]) + anp.log(mdp.P[s, a, s_next])
        return total

    def log_pi(th):
        return anp.sum(policy.log_prob(states[:-1], actions, th))

    expected = softmax_score_sum(softmax_rows(theta, (S, A)), states[:-1], actions)
    tol = 64.0 * T * EPS
    np.testing.assert_allclose(grad(log_p)(theta), expected, rtol=0, atol=tol)
    np.testing.assert_allclose(grad(log_pi)(theta), expected, rtol=0, atol=tol)
    dynamics = np.log(mdp.mu0[states[0]]) + np.sum(np.log(mdp.P[states[:-1], actions, states[1:]]))
    for th in (theta, -theta, theta + np.arange(theta.size) % 3):
        assert abs(log_p(th) - log_pi(th) - dynamics) <= tol * (1.0 + abs(dynamics))


# ----------------------------------------------------------------------------- TRPO bound
@given(mdp_and_policy(), st.data())
def test_max_tv_is_the_largest_per_state_total_variation(args, data):
    """D_TV^max(pi, pi~) = max_s D_TV(pi(.|s) || pi~(.|s)) (Schulman et al. 2015, §3):
    TabularMDP.max_tv equals the maximum over states of the event form
    max_{B subset of actions} |pi(B|s) - pi~(B|s)| (= 1/2 sum_a |pi - pi~|), which is also
    Pr(a != a~) under the maximal coupling, 1 - sum_a min(pi(a|s), pi~(a|s))
    (Levin, Peres & Wilmer 2017, Prop. 4.2 and 4.7)."""
    mdp, policy = args
    S, A = mdp.num_states, mdp.num_actions
    theta_new = data.draw(hnp.arrays(np.float64, (S * A,), elements=finite_floats(-4.0, 4.0)))
    pi, pi_new = policy.probs(), policy.probs(theta_new)
    events = [list(B) for k in range(A + 1) for B in itertools.combinations(range(A), k)]
    per_state = np.array([
        max(abs(pi[s, B].sum() - pi_new[s, B].sum()) for B in events) for s in range(S)
    ])
    assert abs(float(mdp.max_tv(pi, pi_new)) - per_state.max()) <= 4 * A * EPS
    coupling = 1.0 - np.sum(np.minimum(pi, pi_new), axis=1)
    np.testing.assert_allclose(per_state, coupling, rtol=0, atol=8 * A * EPS)


# ----------------------------------------------------------------------------- TRPO step
@given(mdp_and_policy(min_actions=3))
def test_trpo_local_models_have_second_and_third_order_errors(args):
    """TRPO's local models (Schulman et al. 2015, §6 and App. C) on PolicyObjective.exact:
    L(theta_old + h v) - L(theta_old) - h g^T v = c2 h^2 + O(h^3) and
    KL(theta_old, theta_old + h u) - h^2 u^T F u / 2 = c3 h^3 + O(h^4), with g and F from
    value_and_gradient and fisher_operator, so shrinking h tenfold divides the errors by
    100 and 1000.

    The coefficients are exact and independent of the code. u puts 1 on the least likely
    action (probability p <= 1/3) of every state; along it each state's KL is the
    cumulant generating function log(1 - p + p e^h) - h p, cubic coefficient
    p(1 - p)(1 - 2p)/6 > 0, so c3 = sum_s d(s) p(1 - p)(1 - 2p)/6. Along the same one-hot
    E_pi[A](s) is a logistic curve in h with quadratic coefficient d(s) A(s, a) p(1 - 2p)/2
    (A centred so that sum_a pi A = 0, as it is to rounding); v keeps the states where it
    has the sign of the largest one, so c2 is their sum. By these choices |c3| <= |c2| for
    L and |c4| <= 3 c3 / 4 for the KL, so the rest of each series is at most about h times
    its leading term (the test allows 3 h, plus the rounding of the sums).
    """
    mdp, policy = args
    S, A = mdp.num_states, mdp.num_actions
    theta_old = policy.theta
    objective = PolicyObjective.exact(mdp, policy)
    L_old, g = objective.value_and_gradient()
    F = objective.fisher_operator()

    pi = policy.probs(theta_old)
    d = mdp.visitation(pi, normalized=True)
    adv = mdp.advantages(pi)
    adv = adv - np.sum(pi * adv, axis=1, keepdims=True)
    rows, least = np.arange(S), np.argmin(pi, axis=1)
    p = pi[rows, least]
    u = np.zeros((S, A))
    u[rows, least] = 1.0
    c3 = float(np.sum(d * p * (1.0 - p) * (1.0 - 2.0 * p))) / 6.0
    per_state = 0.5 * d * adv[rows, least] * p * (1.0 - 2.0 * p)
    keep = np.sign(per_state) == np.sign(per_state[np.argmax(np.abs(per_state))])
    v = (u * keep[:, None]).reshape(-1)
    u = u.reshape(-1)
    c2 = float(np.sum(per_state[keep]))

    def linear_error(h):
        return float(objective.surrogate(theta_old + h * v)) - L_old - h * float(g @ v)

    def quadratic_error(h):
        return float(objective.mean_kl(theta_old + h * u)) - 0.5 * h * h * float(u @ (F @ u))

    # rounding of the weighted sums: |L| <= sum w |A|, each KL term is p (log p - log q);
    # all-zero advantages still leave subnormal rounding, hence the absolute 1e-300
    floor_L = 16.0 * EPS * max(float(np.sum(objective.weights * np.abs(objective.advantages))),
                               1e-300)
    floor_KL = 16.0 * EPS * float(np.sum(objective.weights * (1.0 + np.abs(
        objective.old_log_probs))))
    H = 1e-2
    errors_L, errors_KL = [], []
    for h in (H, H / 10):
        errors_L.append(linear_error(h))
        errors_KL.append(quadratic_error(h))
        assert abs(errors_L[-1] - c2 * h**2) <= 3.0 * h * abs(c2) * h**2 + floor_L
        assert abs(errors_KL[-1] - c3 * h**3) <= 3.0 * h * c3 * h**3 + floor_KL
    # c3 >= min p (1 - p)(1 - 2p) / 6 > 1e-3 for logits in [-2, 2], far above floor_KL
    assert errors_KL[0] / errors_KL[1] == pytest.approx(1000.0, rel=0.05)
    if abs(c2) * (H / 10) ** 2 > 100.0 * floor_L:  # else L is linear along v to rounding
        assert errors_L[0] / errors_L[1] == pytest.approx(100.0, rel=0.05)


# ----------------------------------------------------------------------------- PPO
@given(clipped_batches())
def test_ppo_clipped_surrogate_is_a_pessimistic_first_order_bound(batch):
    """PPO's clipped objective (Schulman et al. 2017, eq. (7) and §3):
    L^CLIP(theta) <= E[r_t(theta) A_t] for every theta; L^CLIP(theta_old) = E[A_t]; and
    grad L^CLIP(theta_old) = g, the gradient of the importance-sampled surrogate. The
    values are checked against r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t) from a plain
    numpy softmax, the gradients against the closed-form softmax scores."""
    (S, A), states, actions, advantages, theta_old, step, clip = batch
    policy = TabularSoftmax(S, A)
    policy.theta = theta_old
    objective = PolicyObjective.from_arrays(
        policy, states, actions, advantages, policy.log_prob(states, actions),
        policy.distribution_params(states),
    )
    theta = theta_old + step
    r = (softmax_rows(theta, (S, A))[states, actions]
         / softmax_rows(theta_old, (S, A))[states, actions])
    clipped = float(objective.clipped_surrogate(theta, clip))
    tol = 64.0 * EPS * float(np.mean(np.abs(r * advantages)))
    expected = np.mean(np.minimum(r * advantages, np.clip(r, 1.0 - clip, 1.0 + clip) * advantages))
    assert abs(clipped - expected) <= tol
    assert clipped <= float(objective.surrogate(theta)) + tol

    scale = float(np.mean(np.abs(advantages)))
    assert abs(float(objective.clipped_surrogate(theta_old, clip)) - np.mean(advantages)) <= (
        16.0 * EPS * scale)
    _, g_clip = objective.value_and_gradient_of(
        lambda y, idx: objective.clipped_surrogate_from(y, clip, idx))
    g_hat = objective.gradient()
    pi_old = softmax_rows(theta_old, (S, A))
    g_ref = np.zeros((S, A))
    for s, a, adv in zip(states, actions, advantages, strict=True):
        g_ref[s] -= adv * pi_old[s]
        g_ref[s, a] += adv
    g_ref = g_ref.reshape(-1) / states.size
    np.testing.assert_allclose(g_hat, g_ref, rtol=0, atol=64.0 * EPS * scale)
    np.testing.assert_allclose(g_clip, g_hat, rtol=0, atol=64.0 * EPS * scale)


@given(mdp_and_policy(min_actions=2), finite_floats(0.01, 10.0))
def test_ppo_adapts_the_kl_coefficient_by_the_thresholds(args, beta):
    """PPO's adaptive KL penalty (Schulman et al. 2017, §4): after a PPO(variant="kl")
    update with d = mean KL(theta_old, theta_new), beta is halved if d < d_targ / 1.5,
    doubled if d > 1.5 d_targ, and kept otherwise. d is measured by one update and checked
    against TabularMDP.mean_kl; the update is then repeated with d_targ placed a relative
    1e-6 on either side of each threshold (the update itself does not depend on d_targ)."""
    mdp, policy = args
    theta_old = policy.theta
    pi_old = policy.probs(theta_old)

    def update(kl_target):
        policy.theta = theta_old
        objective = PolicyObjective.exact(mdp, policy)
        config = PPOConfig(variant="kl", kl_target=kl_target, kl_coef=beta, epochs=1,
                           minibatch_size=1000, learning_rate=0.05, max_grad_norm=None)
        algo = PPO(policy, None, config, seed=0)
        diag = algo.policy_step(objective)
        assert diag["ppo/kl_penalty"] == algo.kl_coef
        return diag["ppo/kl"], algo.kl_coef

    d, _ = update(1.0)
    kl = float(mdp.mean_kl(pi_old, policy.probs()))
    assert abs(d - kl) <= 1e-9 * abs(kl) + 64 * EPS  # KL of near-equal policies: rounding
    assume(d > 1e-12)  # all advantages zero: the policy does not move
    cases = [
        (1.5 * d * (1 + 1e-6), beta / 2),  # d < d_targ / 1.5
        (1.5 * d * (1 - 1e-6), beta),
        (d / 1.5 * (1 + 1e-6), beta),
        (d / 1.5 * (1 - 1e-6), 2 * beta),  # d > 1.5 d_targ
    ]
    for kl_target, expected in cases:
        d_again, beta_new = update(kl_target)
        assert d_again == d
        assert beta_new == expected, f"d_targ / d = {kl_target / d}: beta {beta} -> {beta_new}"
