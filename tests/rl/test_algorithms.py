"""The algorithms in exact mode on tabular MDPs, and on sampled batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rl.algorithms import NPG, PPO, TRPO, VPG, NPGConfig, PPOConfig, TRPOConfig, VPGConfig
from rl.algorithms.objective import PolicyObjective
from rl.mdp import TabularMDP, two_action_bandit
from rl.policies import TabularSoftmax
from tests.strategies import finite_floats, random_mdps


def _eta(mdp, policy):
    return float(mdp.performance(policy.probs(policy.theta)))


@given(random_mdps(max_states=4, max_actions=3),
       st.lists(finite_floats(-2.0, 2.0), min_size=12, max_size=12),
       st.sampled_from([0.001, 0.01, 0.05]))
@settings(max_examples=25)
def test_exact_trpo_improves_monotonically_within_the_trust_region(mdp_args, theta0, max_kl):
    """Exact TRPO: eta(pi_{k+1}) >= eta(pi_k) and mean KL(pi_k || pi_{k+1}) <= delta.

    With exact advantages and the exact visitation-weighted KL, every accepted TRPO step
    improves the surrogate within the KL ball; for these step sizes the performance
    itself improves monotonically (TRPO paper §3-§6, Algorithm 1's guarantee
    approximated by the practical constraint).

    MDPs on which every advantage of the first policy is zero to rounding (e.g. all
    rewards equal) are excluded: there is nothing to improve, the gradient is rounding
    noise, and with ``damping=0`` the natural step rescales that noise, null space of the
    softmax Fisher included, to the KL boundary, so η moves by rounding of the shifted
    logits (found by Hypothesis: ±4e-10 on a uniform two-state MDP).
    """
    P, R, gamma, mu0 = mdp_args
    mdp = TabularMDP(P, R, gamma, mu0)
    S, A = mdp.num_states, mdp.num_actions
    policy = TabularSoftmax(S, A)
    policy.theta = np.asarray(theta0[: S * A])
    scale = float(np.max(np.abs(R))) / (1.0 - gamma) + 1.0
    assume(float(np.max(np.abs(mdp.advantages(policy.probs(policy.theta))))) > 1e-9 * scale)
    algo = TRPO(policy, baseline=None, config=TRPOConfig(max_kl=max_kl, damping=0.0,
                                                         cg_iterations=S * A))
    eta = _eta(mdp, policy)
    for _ in range(5):
        pi_old = policy.probs(policy.theta)
        diag = algo.policy_step(PolicyObjective.exact(mdp, policy))
        pi_new = policy.probs(policy.theta)
        assert float(mdp.mean_kl(pi_old, pi_new)) <= max_kl * (1 + 1e-9)
        assert diag["trpo/kl"] <= max_kl * (1 + 1e-9)
        eta_new = _eta(mdp, policy)
        assert eta_new >= eta - 1e-10 * scale
        eta = eta_new


def test_npg_on_the_two_action_example_moves_theta_by_99_eta():
    """Lecture example: J(theta) = 100 pi[1] + pi[2]; NPG's un-normalised step gives
    theta_{k+1} = theta_k + 99 eta, since F^{-1} J'(theta) = 99 for every theta.

    With two logits the lecture's theta is the logit difference theta_1 - theta_2.
    """
    mdp = two_action_bandit()
    policy = TabularSoftmax(1, 2)
    eta = 0.05
    algo = NPG(policy, None, NPGConfig(step_size=eta, damping=0.0, cg_iterations=5))
    for _ in range(6):
        before = policy.theta[0] - policy.theta[1]
        algo.policy_step(PolicyObjective.exact(mdp, policy))
        after = policy.theta[0] - policy.theta[1]
        assert after - before == pytest.approx(99 * eta, rel=1e-9)


def test_vanilla_pg_slows_down_as_theta_grows_on_the_two_action_example():
    """Lecture example: exact PG moves theta by eta * 99 e^theta / (1 + e^theta)^2, which
    shrinks as theta grows (the plateau NPG avoids)."""
    mdp = two_action_bandit()
    policy = TabularSoftmax(1, 2)
    lr = 0.05
    algo = VPG(policy, None, VPGConfig(learning_rate=lr, optimizer="sgd"))
    steps = []
    for _ in range(40):
        before = policy.theta[0] - policy.theta[1]
        algo.policy_step(PolicyObjective.exact(mdp, policy))
        after = policy.theta[0] - policy.theta[1]
        s = 1.0 / (1.0 + np.exp(-before))
        # two logits: d(theta1 - theta2) = lr * (g1 - g2) = 2 lr * 99 s (1 - s)
        assert after - before == pytest.approx(2 * lr * 99 * s * (1 - s), rel=1e-9)
        steps.append(after - before)
    # monotonically slower once theta > 0
    assert all(b < a for a, b in zip(steps[1:], steps[2:], strict=False))


@pytest.mark.parametrize("variant", ["clip", "kl"])
def test_exact_ppo_improves_performance(variant):
    """PPO's clipped and KL-penalised objectives, optimised on exact expectations,
    improve eta on a random MDP (PPO paper eqs. (7), (8))."""
    from rl.mdp import random_mdp

    mdp = random_mdp(5, 3, gamma=0.9, seed=3)
    policy = TabularSoftmax(5, 3)
    algo = PPO(policy, None, PPOConfig(variant=variant, epochs=20, minibatch_size=1000,
                                       learning_rate=0.05, max_grad_norm=None), seed=0)
    eta0 = _eta(mdp, policy)
    for _ in range(10):
        algo.policy_step(PolicyObjective.exact(mdp, policy))
    assert _eta(mdp, policy) > eta0 + 1e-3


def test_exact_objective_matches_the_mdp_surrogate_and_kl():
    """PolicyObjective.exact: surrogate = (1 - gamma)(L_pi(pi~) - eta(pi)) and mean KL =
    mdp.mean_kl, at a parameter away from theta_old."""
    from rl.mdp import random_mdp

    mdp = random_mdp(4, 3, gamma=0.8, seed=1)
    policy = TabularSoftmax(4, 3)
    rng = np.random.default_rng(0)
    policy.theta = rng.normal(size=12)
    obj = PolicyObjective.exact(mdp, policy)
    theta = policy.theta + 0.3 * rng.normal(size=12)
    pi, pi_new = policy.probs(policy.theta), policy.probs(theta)
    expected = (1 - mdp.gamma) * (mdp.surrogate(pi, pi_new) - mdp.performance(pi))
    assert float(obj.surrogate(theta)) == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
    assert float(obj.mean_kl(theta)) == pytest.approx(float(mdp.mean_kl(pi, pi_new)), rel=1e-9)


def test_trpo_restores_parameters_when_the_line_search_fails():
    """If no backtracking trial passes (here: KL bound smaller than any trial's KL can
    reach after 1 step with shrink close to 1), TRPO keeps theta_old and says so."""
    from rl.mdp import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    policy = TabularSoftmax(3, 2)
    theta0 = policy.theta

    class NoImprovement(PolicyObjective):
        def surrogate(self, theta, idx=None):  # a surrogate that never improves
            return -float(np.sum((np.asarray(theta) - theta0) ** 2)) + 0.0 * super().surrogate(
                theta, idx)

        def value_and_gradient(self, theta=None, idx=None):  # pretend uphill direction
            return 0.0, np.ones_like(theta0)

    base = PolicyObjective.exact(mdp, policy)
    obj = NoImprovement(policy, base.observations, base.actions, base.advantages,
                        base.old_log_probs, base.old_params, base.weights)
    algo = TRPO(policy, None, TRPOConfig(max_backtracks=3))
    diag = algo.policy_step(obj)
    assert diag["trpo/line_search_success"] is False
    assert diag["trpo/line_search_steps"] == 3
    np.testing.assert_array_equal(policy.theta, theta0)


@pytest.mark.parametrize("cls,key,value", [
    (TRPOConfig, "max_kl", 0.0), (TRPOConfig, "backtrack_shrink", 1.0),
    (TRPOConfig, "cg_iterations", 0), (TRPOConfig, "constraint", "huge"),
    (NPGConfig, "step_size", -1.0), (PPOConfig, "clip", 1.5), (PPOConfig, "variant", "x"),
    (VPGConfig, "optimizer", "rmsprop"), (TRPOConfig, "gamma", 1.5),
])
def test_configs_reject_values_out_of_range(cls, key, value):
    """Every config validates in __post_init__ and names the offending field."""
    with pytest.raises(ValueError, match=key):
        cls(**{key: value})


@pytest.mark.parametrize("kind", ["categorical", "gaussian", "tabular"])
@pytest.mark.parametrize("head", ["surrogate", "clipped", "kl"])
def test_objective_gradients_equal_autograd_through_theta(kind, head):
    """The objective's gradients (autograd on the head in the distribution parameters, then
    the policy's hand-written J^T) equal autograd's gradient of the same head traced
    through θ, on the whole batch and on a minibatch, for the surrogate, PPO's clipped
    surrogate and the mean KL."""
    from autograd import grad

    from rl.policies import CategoricalMLP, GaussianMLP

    rng = np.random.default_rng(0)
    n = 40
    if kind == "tabular":
        policy, obs = TabularSoftmax(5, 3, init_std=1.0, seed=0), rng.integers(0, 5, n)
    elif kind == "categorical":
        policy, obs = CategoricalMLP(3, 4, (8, 8), seed=0), rng.standard_normal((n, 3))
    else:
        policy, obs = GaussianMLP(3, 2, (8, 8), seed=0), rng.standard_normal((n, 3))
    old = policy.distribution_params(obs)
    actions, logp = policy.distribution_class(old).sample_with_log_prob(rng)
    objective = PolicyObjective(policy, obs, actions, rng.standard_normal(n), logp, old)
    theta = policy.theta + 0.3 * rng.standard_normal(policy.num_params)
    heads = {
        "surrogate": (objective.surrogate_from, objective.surrogate),
        "clipped": (lambda y, idx: objective.clipped_surrogate_from(y, 0.2, idx),
                    lambda th, idx: objective.clipped_surrogate(th, 0.2, idx)),
        "kl": (objective.mean_kl_from, objective.mean_kl),
    }
    of_params, of_theta = heads[head]
    for idx in (None, np.arange(5, 25)):
        value, g = objective.value_and_gradient_of(of_params, theta, idx)
        assert value == pytest.approx(float(of_theta(theta, idx)), rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(g, grad(of_theta)(theta, idx), rtol=1e-9, atol=1e-12)
