"""The algorithms in exact mode on tabular MDPs, and on sampled batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from rl.algorithms import (
    NPG,
    PPO,
    TRPO,
    VPG,
    NPGConfig,
    PPOConfig,
    TRPOConfig,
    VPGConfig,
    trpo_step,
)
from rl.algorithms.objective import PolicyObjective
from rl.mdp import TabularMDP, two_action_bandit
from rl.policies import TabularSoftmax
from tests.strategies import finite_floats, random_mdps


def _eta(mdp, policy):
    return float(mdp.performance(policy.probs(policy.theta)))


def _log_probs_at(policy, theta):
    """log pi_theta(a|s) of a tabular policy from its logits (no underflow to log 0)."""
    return np.asarray(policy.distribution(np.arange(policy.num_states), theta).log_probs())


def _log_probs(policy):
    return _log_probs_at(policy, policy.theta)


@given(random_mdps(max_states=4, max_actions=3),
       st.lists(finite_floats(-2.0, 2.0), min_size=12, max_size=12),
       st.sampled_from([0.001, 0.01, 0.05]))
# Found by a randomized run: pi(0) falls to 1.6e-9 and the next accepted step sends it
# below the smallest float, so a KL computed from probabilities is +inf while the KL the
# line search checked (from logits) is 1.3e-5 <= delta.
@example((np.ones((1, 2, 1)), np.array([[-1.0, 0.0]]), 0.5, np.ones(1)),
         [-1.0, 1.0] + [0.0] * 10, 0.05)
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
        log_old = _log_probs(policy)
        diag = algo.policy_step(PolicyObjective.exact(mdp, policy))
        log_new = _log_probs(policy)
        assert float(mdp.mean_kl(log_old, log_new, log=True)) <= max_kl * (1 + 1e-9)
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
    improve eta on a random MDP (PPO paper eqs. (7), (8)).

    The effect is the gap eta(pi*) - eta(pi_0) to the optimal policy (4.5 here); ten
    exact iterations of 20 epochs must close at least half of it (the clipped variant
    closes 99 %, the KL one 96 %), so a PPO that merely moves uphill does not pass."""
    from rl.mdp import random_mdp

    mdp = random_mdp(5, 3, gamma=0.9, seed=3)
    eta_star = float(mdp.performance(mdp.optimal_policy()))
    policy = TabularSoftmax(5, 3)
    algo = PPO(policy, None, PPOConfig(variant=variant, epochs=20, minibatch_size=1000,
                                       learning_rate=0.05, max_grad_norm=None), seed=0)
    eta0 = _eta(mdp, policy)
    for _ in range(10):
        algo.policy_step(PolicyObjective.exact(mdp, policy))
    assert _eta(mdp, policy) - eta0 >= 0.5 * (eta_star - eta0)


def test_exact_ppo_with_a_fixed_penalty_maximises_the_penalised_surrogate():
    """PPOConfig(variant="kl", adaptive=False): beta stays kl_coef in every iteration (the
    adaptive rule would change it here), the epochs reach a stationary point of
    L - beta KL (lecture notes' PPO, PPO paper eq. (8) with beta fixed), and the step's KL
    falls as beta grows, as it must for exact maximisers: adding the optimality of each
    maximiser for the other's beta gives (beta_2 - beta_1)(KL_1 - KL_2) >= 0."""
    from rl.mdp import random_mdp

    mdp = random_mdp(5, 3, gamma=0.9, seed=3)
    kls = []
    for beta in (0.3, 3.0):
        policy = TabularSoftmax(5, 3)
        config = PPOConfig(variant="kl", adaptive=False, kl_coef=beta, epochs=300,
                           minibatch_size=1000, learning_rate=0.02, max_grad_norm=None)
        algo = PPO(policy, None, config, seed=0)
        objective = PolicyObjective.exact(mdp, policy)
        g0 = float(np.linalg.norm(objective.gradient()))
        diag = algo.policy_step(objective)
        assert diag["ppo/kl_penalty"] == beta

        def penalised(params, idx, objective=objective, beta=beta):
            return (objective.surrogate_from(params, idx)
                    - beta * objective.mean_kl_from(params, idx))

        _, g = objective.value_and_gradient_of(penalised, policy.theta)
        # full-batch Adam on a smooth concave-near-optimum objective: converged to 1e-4 of
        # the initial gradient (it reaches ~1e-7 here)
        assert float(np.linalg.norm(g)) <= 1e-4 * g0
        kls.append(diag["ppo/kl"])
        for _ in range(2):  # beta stays fixed in later iterations too
            assert algo.policy_step(PolicyObjective.exact(mdp, policy))["ppo/kl_penalty"] == beta
    assert kls[0] > kls[1] > 0.0
    # the adaptive rule, on the same first step with beta = 0.3, changes beta (KL >> target)
    policy = TabularSoftmax(5, 3)
    adaptive = PPO(policy, None, PPOConfig(variant="kl", kl_coef=0.3, epochs=300,
                                           minibatch_size=1000, learning_rate=0.02,
                                           max_grad_norm=None), seed=0)
    assert adaptive.policy_step(PolicyObjective.exact(mdp, policy))["ppo/kl_penalty"] == 0.6


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
    (PPOConfig, "adaptive", False), (PPOConfig, "adaptive", "no"),
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


# ------------------------------------------------------------------ improvement diagnostics
def _algorithm(name, policy, **config):
    """``name``'s algorithm on ``policy`` with ``config`` overrides, seeded."""
    cls, config_cls = {"trpo": (TRPO, TRPOConfig), "npg": (NPG, NPGConfig),
                       "ppo": (PPO, PPOConfig), "vpg": (VPG, VPGConfig)}[name]
    return cls(policy, None, config_cls(**config), seed=0)


def _sampled_objective(policy, n=60, seed=0):
    """A batch of ``n`` states, actions drawn from ``policy`` and random advantages."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, policy.obs_dim))
    old = np.asarray(policy.distribution_params(obs))
    actions, logp = policy.distribution_class(old).sample_with_log_prob(rng)
    return PolicyObjective(policy, obs, actions, rng.standard_normal(n), logp, old)


_NEW_KEYS = {
    "trpo": ("trpo/surrogate_before", "trpo/surrogate_after", "trpo/expected_improvement",
             "trpo/expected_improvement_accepted", "trpo/actual_improvement", "trpo/kl",
             "trpo/kl_max_state"),
    "npg": ("npg/surrogate_before", "npg/surrogate_after", "npg/expected_improvement",
            "npg/actual_improvement", "npg/kl"),
    "ppo": ("ppo/surrogate_before", "ppo/surrogate_after", "ppo/expected_improvement",
            "ppo/actual_improvement", "ppo/kl"),
    "vpg": ("vpg/surrogate_before", "vpg/surrogate_after", "vpg/expected_improvement",
            "vpg/actual_improvement", "vpg/kl"),
}


@pytest.mark.parametrize("name", ["trpo", "npg", "ppo", "vpg"])
def test_improvement_diagnostics_are_the_step_taken(name):
    """On a sampled batch (a categorical MLP), every algorithm reports plain floats with
    actual = after - before exactly, after = L(theta_new), and expected = g^T (theta_new -
    theta_old) with g the surrogate's gradient at theta_old: the linear model's gain for the
    parameter change the iteration made, whatever the algorithm's own objective."""
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(3, 4, (8, 8), seed=0)
    objective = _sampled_objective(policy)
    L_old, g = objective.value_and_gradient()
    theta_old = objective.theta_old.copy()
    diag = _algorithm(name, policy).policy_step(objective)
    step = policy.theta - theta_old
    assert np.any(step != 0)
    for key in _NEW_KEYS[name]:
        assert type(diag[key]) is float, key
    p = name + "/"
    before, after = diag[p + "surrogate_before"], diag[p + "surrogate_after"]
    assert diag[p + "actual_improvement"] == after - before
    assert before == pytest.approx(L_old, rel=1e-12)
    assert after == float(objective.surrogate(policy.theta))
    taken = "trpo/expected_improvement_accepted" if name == "trpo" else p + "expected_improvement"
    assert diag[taken] == pytest.approx(float(g @ step), rel=1e-9)
    assert diag[p + "kl"] == pytest.approx(float(objective.mean_kl(policy.theta)), rel=1e-12)


@pytest.mark.parametrize("name", ["trpo", "npg", "ppo", "vpg"])
def test_diagnostics_names_cannot_be_mistaken_for_settings(name):
    """No diagnostics key, once its prefix is dropped, is the name of one of the algorithm's
    settings (``trpo/max_kl`` beside the setting ``max_kl`` meant two things); the keys the
    progress display shows are reported; every renamed key maps to a reported one."""
    from rl.algorithms import ALGORITHMS
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(3, 4, (8, 8), seed=0)
    # PPO's "kl" variant reports the adapted penalty as well
    algo = _algorithm(name, policy, **({"variant": "kl"} if name == "ppo" else {}))
    diag = algo.policy_step(_sampled_objective(policy))
    settings = {f.name for f in dataclasses.fields(ALGORITHMS[name].config_class)}
    clashes = sorted(k for k in diag if k.split("/", 1)[-1] in settings)
    assert not clashes, f"diagnostics named like settings: {clashes}"
    cls = ALGORITHMS[name]
    assert cls.headline_metrics and set(cls.headline_metrics.values()) <= set(diag)
    assert set(cls.renamed_metrics.values()) <= set(diag)
    assert not set(cls.renamed_metrics) & set(diag)


def test_trpo_expected_improvement_accepted_scales_with_the_step_fraction():
    """When the line search shortens the maximal step (here the max-KL constraint without
    damping rejects the first two trials: s^k = 0.64), expected_improvement stays the full
    step's g^T beta d and expected_improvement_accepted is s^k times it, the linear model's
    gain for the step taken, which the actual improvement then tracks."""
    from rl.mdp import random_mdp

    mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    policy = TabularSoftmax(4, 3)
    objective = PolicyObjective.exact(mdp, policy)
    _, g = objective.value_and_gradient()
    theta_old = objective.theta_old.copy()
    theta, diag = trpo_step(objective, TRPOConfig(max_kl=0.05, damping=0.0, constraint="max"))
    fraction = diag["trpo/step_fraction"]
    assert diag["trpo/line_search_success"] is True
    assert 0.0 < fraction < 0.8
    accepted = diag["trpo/expected_improvement_accepted"]
    assert accepted == pytest.approx(fraction * diag["trpo/expected_improvement"], rel=1e-12)
    assert accepted == pytest.approx(float(g @ (theta - theta_old)), rel=1e-9)
    # the full step's prediction overstates the step taken; the accepted one does not
    assert diag["trpo/expected_improvement"] > accepted
    assert abs(diag["trpo/actual_improvement"] - accepted) < 0.5 * (
        diag["trpo/expected_improvement"] - accepted)
    # constraint="max" bounds the largest per-state KL, measured by the oracle from the
    # logits, and it binds: the full step (the accepted one over the fraction) exceeds it
    log_old = _log_probs_at(policy, theta_old)
    max_kl = float(mdp.max_kl(log_old, _log_probs_at(policy, theta), log=True))
    assert max_kl <= 0.05 * (1 + 1e-12)
    assert diag["trpo/kl_max_state"] == pytest.approx(max_kl, rel=1e-9)
    full = theta_old + (theta - theta_old) / fraction
    assert float(mdp.max_kl(log_old, _log_probs_at(policy, full), log=True)) > 0.05


def test_trpo_reports_zero_kl_when_the_line_search_fails():
    """A failed line search keeps theta_old, so the KL is reported as exactly 0.0, not the
    rounding of KL(pi_old || pi_old): here the stored distribution parameters are one ulp
    away from the policy's own, which makes that evaluation about 1e-18, not 0."""
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(4, 3, (8, 8), seed=0)
    base = _sampled_objective(policy, n=50)
    theta0 = policy.theta

    class NoImprovement(PolicyObjective):
        def surrogate(self, theta, idx=None):  # every trial is worse than theta_old
            return -float(np.sum((np.asarray(theta) - theta0) ** 2))

        def value_and_gradient(self, theta=None, idx=None):
            return 0.0, super().value_and_gradient(theta, idx)[1]

    obj = NoImprovement(policy, base.observations, base.actions, base.advantages,
                        base.old_log_probs, np.nextafter(base.old_params, np.inf))
    assert float(obj.mean_kl(theta0)) != 0.0  # what a KL evaluation would have reported
    diag = TRPO(policy, None, TRPOConfig(max_backtracks=3)).policy_step(obj)
    assert diag["trpo/line_search_success"] is False
    np.testing.assert_array_equal(policy.theta, theta0)
    assert diag["trpo/kl"] == 0.0 and diag["trpo/kl_max_state"] == 0.0
    assert diag["trpo/step_fraction"] == 0.0
    assert diag["trpo/expected_improvement_accepted"] == 0.0
    assert diag["trpo/expected_improvement"] > 0.0
    assert diag["trpo/actual_improvement"] == 0.0
    assert diag["trpo/surrogate_after"] == diag["trpo/surrogate_before"]


@pytest.mark.parametrize("name", ["trpo", "npg"])
def test_a_step_not_taken_reports_the_same_keys(name):
    """With all-zero advantages the gradient is zero and no step is taken (TRPO: the natural
    step's early return; NPG: g^T F^-1 g = 0): theta is kept, and the row has the same keys
    as a row with a step, so metrics.csv has the same columns whichever branch ran; the
    improvements, the KL and the step are 0.0."""
    from rl.mdp import random_mdp

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    policy = TabularSoftmax(3, 2)
    theta0 = policy.theta
    exact = PolicyObjective.exact(mdp, policy)
    with_step = _algorithm(name, policy).policy_step(exact)
    policy.theta = theta0
    flat = PolicyObjective(policy, exact.observations, exact.actions,
                           np.zeros_like(exact.advantages), exact.old_log_probs,
                           exact.old_params, exact.weights)
    without = _algorithm(name, policy).policy_step(flat)
    np.testing.assert_array_equal(policy.theta, theta0)
    assert set(without) == set(with_step)
    p = name + "/"
    assert without[p + "status"] != with_step[p + "status"]
    for key in _NEW_KEYS[name]:
        assert type(without[key]) is float, key
        if "surrogate" not in key:
            assert without[key] == 0.0, key
    assert without[p + "surrogate_after"] == without[p + "surrogate_before"]


@pytest.mark.parametrize("name,config", [
    ("npg", {"step_size": 1e-2}),
    ("vpg", {"learning_rate": 1e-2, "optimizer": "sgd"}),
    ("vpg", {"learning_rate": 1e-2}),
    ("ppo", {"learning_rate": 1e-3, "epochs": 5, "minibatch_size": 4}),
])
def test_expected_improvement_is_first_order_in_the_step(name, config):
    """On an exact objective, the actual improvement L(theta_new) - L(theta_old) matches
    expected = g^T (theta_new - theta_old) to first order: the relative difference is
    below 1e-2 and shrinks about tenfold (below a fifth) when the step size does,
    as |L(theta + h d) - L(theta) - h g^T d| = O(h^2) requires."""
    from rl.mdp import random_mdp

    mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    key = "learning_rate" if "learning_rate" in config else "step_size"
    errors = []
    for scale in (1.0, 0.1):
        policy = TabularSoftmax(4, 3)
        diag = _algorithm(name, policy, **{**config, key: scale * config[key]}).policy_step(
            PolicyObjective.exact(mdp, policy))
        p = name + "/"
        expected, actual = diag[p + "expected_improvement"], diag[p + "actual_improvement"]
        assert expected > 0.0
        errors.append(abs(actual - expected) / expected)
    assert errors[0] < 1e-2
    assert errors[1] < 0.2 * errors[0]


# ------------------------------------------------------------------ PPO's early stopping
def _ppo_run(**config):
    """One PPO policy step with ``config`` on a fixed sampled batch; ``(diag, policy,
    objective)``."""
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(3, 4, (16, 16), seed=0)
    objective = _sampled_objective(policy, n=512, seed=1)
    diag = _algorithm("ppo", policy, minibatch_size=64, max_grad_norm=None,
                      **config).policy_step(objective)
    return diag, policy, objective


def test_ppo_target_kl_stops_before_the_minibatch_step_that_would_exceed_it():
    """With target_kl the KL of the minibatch about to be stepped on is tested before the
    step (stable-baselines3's rule). Replaying the minibatch order: the run stops exactly
    at the first minibatch whose KL at the current theta exceeds 1.5 target_kl, having
    taken the same steps as a run without the test up to there; without target_kl all
    epochs x minibatches steps are taken."""
    from rl.policies import CategoricalMLP

    full, _, _ = _ppo_run(learning_rate=0.05, epochs=4)
    assert full["ppo/stopped_early"] is False
    assert full["ppo/epochs_run"] == 4 and full["ppo/minibatch_steps"] == 4 * 8
    stopped, policy, objective = _ppo_run(learning_rate=0.05, epochs=4, target_kl=0.01)
    assert stopped["ppo/stopped_early"] is True
    k = stopped["ppo/minibatch_steps"]
    assert stopped["ppo/epochs_run"] == 1 and 1 <= k < 8
    assert stopped["ppo/kl"] == pytest.approx(float(objective.mean_kl(policy.theta)), rel=1e-12)
    # replay: the same minibatches and Adam steps, testing each minibatch's KL first
    replay_policy = CategoricalMLP(3, 4, (16, 16), seed=0)
    algo = _algorithm("ppo", replay_policy, minibatch_size=64, max_grad_norm=None,
                      learning_rate=0.05)
    loss = algo._loss(objective)
    theta = objective.theta_old.copy()
    batches = list(objective.minibatches(64, algo.rng))
    for j, idx in enumerate(batches):
        over = float(objective.mean_kl(theta, idx)) > 0.015
        assert over == (j == k)
        if over:
            break
        theta = algo.adam.step(theta, objective.value_and_gradient_of(loss, theta, idx)[1])
    np.testing.assert_array_equal(theta, policy.theta)


def test_ppo_kl_penalty_must_start_positive():
    """kl_coef = 0 would never adapt (beta is only halved or doubled): refused by name."""
    with pytest.raises(ValueError, match="kl_coef"):
        PPOConfig(variant="kl", kl_coef=0.0)


@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_trpo_quadratic_kl_is_the_undamped_models_kl_of_the_full_step(damping):
    """trpo/quadratic_kl = 1/2 s^T F s for the full step s = beta d and the undamped
    Fisher (δ itself when damping is 0), and for a small δ it predicts the measured mean KL
    of that step to second order."""
    from rl.algorithms.trpo import trpo_step
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(3, 4, (8, 8), seed=0)
    objective = _sampled_objective(policy, n=200)
    config = TRPOConfig(max_kl=1e-6, damping=damping)
    _, diag = trpo_step(objective, config)
    F = objective.fisher_operator()
    import trustregion as tr

    Fd = tr.damped(F, damping) if damping else F
    ns = tr.natural_step(objective.gradient(), Fd, 1e-6, maxiter=config.cg_iterations,
                         rtol=config.cg_rtol)
    s = ns.step
    assert diag["trpo/quadratic_kl"] == pytest.approx(0.5 * s @ F.matvec(s), rel=1e-9)
    if damping == 0.0:
        assert diag["trpo/quadratic_kl"] == pytest.approx(1e-6, rel=1e-12)
    else:
        assert diag["trpo/quadratic_kl"] < 1e-6
    measured = float(objective.mean_kl(objective.theta_old + s))
    assert measured == pytest.approx(diag["trpo/quadratic_kl"], rel=0.05)



# ------------------------------------------------------- the self-normalised vine estimator
def _grouped_objective(policy, groups, K, seed=0, q=None):
    """A vine-like batch: ``groups`` states, ``K`` actions each from ``policy``, values ``q``."""
    rng = np.random.default_rng(seed)
    obs = np.repeat(rng.standard_normal((groups, policy.obs_dim)), K, axis=0)
    old = np.asarray(policy.distribution_params(obs))
    actions, logp = policy.distribution_class(old).sample_with_log_prob(rng)
    q = rng.standard_normal(groups * K) if q is None else q
    labels = np.repeat(np.arange(groups), K)
    return PolicyObjective(policy, obs, actions, q, logp, old, groups=labels), (obs, actions,
                                                                                 logp, old, q)


def test_self_normalized_surrogate_is_the_papers_estimator():
    """With groups, L(θ) = Σ_n W_n Σ_k r_k Q_k / Σ_k r_k (TRPO paper eq. (16), W_n = 1/N),
    computed here state by state; adding a constant to one state's values leaves the
    gradient unchanged (no baseline needed); at θ_old the leave-one-out surrogate's
    gradient is K/(K-1) times this one; a minibatch is its own grouped estimator."""
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(3, 4, (8, 8), seed=0)
    N, K = 7, 3
    objective, (obs, actions, logp, old, q) = _grouped_objective(policy, N, K)
    theta = policy.theta + 0.3 * np.random.default_rng(5).standard_normal(policy.num_params)
    r = np.exp(policy.distribution_class(policy.distribution_params(obs, theta))
               .log_prob(actions) - logp).reshape(N, K)
    Q = q.reshape(N, K)
    direct = np.mean((r * Q).sum(axis=1) / r.sum(axis=1))
    assert objective.surrogate(theta) == pytest.approx(direct, rel=1e-12)
    g = objective.gradient(theta)
    shifted = PolicyObjective(policy, obs, actions, q + np.repeat(np.arange(N) * 10.0, K), logp,
                              old, groups=np.repeat(np.arange(N), K))
    np.testing.assert_allclose(shifted.gradient(theta), g, rtol=1e-9, atol=1e-12)
    loo_adv = (q.reshape(N, K) - (Q.sum(axis=1, keepdims=True) - Q) / (K - 1)).reshape(-1)
    loo = PolicyObjective.from_arrays(policy, obs, actions, loo_adv, logp, old)
    np.testing.assert_allclose(loo.gradient(), K / (K - 1) * objective.gradient(), rtol=1e-9,
                               atol=1e-14)
    idx = np.arange(6)  # states 0 and 1
    sub = np.mean((r[:2] * Q[:2]).sum(axis=1) / r[:2].sum(axis=1))
    assert objective.surrogate(theta, idx) == pytest.approx(sub, rel=1e-12)
    with pytest.raises(ValueError, match="clipped objective.*per sample"):
        objective.clipped_surrogate(theta, 0.2)
    with pytest.raises(ValueError, match="groups must be"):
        PolicyObjective(policy, obs, actions, q, logp, old, groups=np.zeros(N * K - 1, int))


def test_exact_trpo_on_self_normalized_vine_batches_improves_performance():
    """TRPO steps on self-normalised vine batches of a tabular MDP raise the exact η and
    keep the KL within δ at every iteration.

    The effect is what the same eight TRPO steps gain on the exact objective (4.9 of
    the 6.3 between the uniform and the optimal policy); the sampled steps must gain at
    least half of that (they gain 94 %): sampling noise shortens steps, it must not
    turn them into noise."""
    from rl.mdp import random_mdp
    from rl.sampling import VineSampler

    mdp = random_mdp(4, 3, gamma=0.9, seed=2, horizon=40)
    policy = TabularSoftmax(4, 3)
    vine = VineSampler(mdp, policy, num_trunk_steps=200, num_rollout_states=40,
                       actions_per_state=3, rollout_length=30, gamma=0.9, seed=0,
                       estimator="self_normalized")
    algo = TRPO(policy, None, TRPOConfig(max_kl=0.02), seed=0)
    eta0 = _eta(mdp, policy)
    for _ in range(8):
        batch = vine.sample()
        groups = batch.state_index
        objective = PolicyObjective(policy, batch.observations, batch.actions,
                                    batch.advantages, batch.log_probs, batch.dist_params,
                                    groups=groups)
        diag = algo.policy_step(objective)
        assert diag["trpo/kl"] <= 0.02 + 1e-12
    vine.close()
    exact_policy = TabularSoftmax(4, 3)
    exact_algo = TRPO(exact_policy, None, TRPOConfig(max_kl=0.02), seed=0)
    for _ in range(8):
        exact_algo.policy_step(PolicyObjective.exact(mdp, exact_policy))
    exact_gain = _eta(mdp, exact_policy) - eta0
    assert _eta(mdp, policy) - eta0 >= 0.5 * exact_gain


# ------------------------------------------------------- fisher_fraction (TRPO paper §6)
def _quadratic_form(operator, v):
    return float(v @ operator.matvec(v))


def test_subsampled_fisher_is_an_unbiased_average_of_per_sample_fishers():
    """fisher_operator(fraction=f) is the Fisher of round(f m) samples of the batch (TRPO
    paper §6, "subsample the data for the Fisher-vector products"): f = 1 is the full
    Fisher whatever the rng; one sample's worth is one of the m per-sample Fishers; and
    over random subsets the quadratic form v^T F_f v averages to the full v^T F v, within
    4 standard errors of the mean of 300 draws."""
    from rl.policies import CategoricalMLP

    policy = CategoricalMLP(3, 4, (8,), seed=0)
    m = 40
    objective = _sampled_objective(policy, n=m)
    v = np.random.default_rng(1).standard_normal(policy.num_params)
    full = _quadratic_form(objective.fisher_operator(), v)
    rng = np.random.default_rng(2)
    assert _quadratic_form(objective.fisher_operator(fraction=1.0, rng=rng), v) == full
    obs, act = objective.observations, objective.actions
    per_sample = [
        _quadratic_form(PolicyObjective.from_arrays(
            policy, obs[i:i + 1], act[i:i + 1], objective.advantages[i:i + 1],
            objective.old_log_probs[i:i + 1], objective.old_params[i:i + 1]).fisher_operator(), v)
        for i in range(m)
    ]
    assert np.mean(per_sample) == pytest.approx(full, rel=1e-12)
    one = _quadratic_form(objective.fisher_operator(fraction=1.0 / m, rng=rng), v)
    assert min(abs(one - q) for q in per_sample) <= 1e-12 * max(per_sample)
    draws = [_quadratic_form(objective.fisher_operator(fraction=0.25, rng=rng), v)
             for _ in range(300)]
    se = np.std(draws, ddof=1) / np.sqrt(len(draws))
    assert np.std(draws) > 0  # the subsets do differ
    assert abs(np.mean(draws) - full) <= 4 * se


def test_trpo_with_a_fisher_fraction_keeps_the_constraint_and_uses_its_rng():
    """TRPO with fisher_fraction = 0.3 takes a step within the KL ball (the line search
    checks the KL on the whole batch), reproducibly from its seed, and different from
    the full-Fisher step; trpo_step without an rng says which argument to pass."""
    from rl.algorithms.trpo import trpo_step
    from rl.policies import CategoricalMLP

    def step(fraction, seed):
        policy = CategoricalMLP(3, 4, (8,), seed=0)
        algo = TRPO(policy, None, TRPOConfig(max_kl=0.01, fisher_fraction=fraction),
                    seed=seed)
        objective = _sampled_objective(policy, n=100)
        diag = algo.policy_step(objective)
        assert diag["trpo/line_search_success"] is True
        assert float(objective.mean_kl(policy.theta)) <= 0.01 * (1 + 1e-12)
        return policy.theta - objective.theta_old

    a, b, c = step(0.3, seed=0), step(0.3, seed=0), step(0.3, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.allclose(a, step(1.0, seed=0), rtol=1e-3)
    policy = CategoricalMLP(3, 4, (8,), seed=0)
    with pytest.raises(ValueError, match="rng"):
        trpo_step(_sampled_objective(policy), TRPOConfig(fisher_fraction=0.3))


def _exact_scale(mdp_args):
    """max |eta| + 1 on the MDP: the rounding of eta is a few eps of this (linear solves
    with condition number (1 + gamma)/(1 - gamma)), and 1e-10 of it is the tolerance."""
    _, R, gamma, _ = mdp_args
    return float(np.max(np.abs(R))) / (1.0 - gamma) + 1.0


@given(random_mdps(max_states=4, max_actions=3),
       st.lists(finite_floats(-2.0, 2.0), min_size=12, max_size=12))
@settings(max_examples=25)
def test_exact_cpi_improves_by_at_least_the_guaranteed_amount(mdp_args, theta0):
    """Conservative policy iteration with the alpha of its bound: every step improves eta by
    at least the bound's guarantee alpha A - 2 eps gamma alpha^2 / (1 - gamma)^2 >= 0
    (TRPO paper eq. (6); Kakade & Langford 2002), which is positive unless pi is optimal, and
    the surrogate gain is alpha A (L_pi is linear along the mixture)."""
    from rl.algorithms import CPI

    P, R, gamma, mu0 = mdp_args
    mdp = TabularMDP(P, R, gamma, mu0)
    S, A = mdp.num_states, mdp.num_actions
    policy = TabularSoftmax(S, A)
    policy.theta = np.asarray(theta0[: S * A])
    tol = 1e-10 * _exact_scale(mdp_args)
    algo = CPI(policy)
    eta = _eta(mdp, policy)
    for _ in range(5):
        pi = policy.probs()
        diag = algo.policy_step(PolicyObjective.exact(mdp, policy))
        eta_new = _eta(mdp, policy)
        assert diag["cpi/guaranteed_improvement"] >= 0.0
        assert eta_new - eta >= diag["cpi/guaranteed_improvement"] - tol
        assert float(mdp.surrogate(pi, policy.probs())) - eta == pytest.approx(
            diag["cpi/surrogate_improvement"], abs=tol)
        if diag["cpi/alpha"] == 0.0:  # only at the optimum
            eta_star = float(mdp.performance(mdp.optimal_policy()))
            assert eta >= eta_star - tol
        eta = eta_new


@given(random_mdps(max_states=4, max_actions=3))
@settings(max_examples=25)
def test_exact_policy_iteration_reaches_the_optimum(mdp_args):
    """CPI with alpha = 1 is policy iteration: eta never decreases and reaches eta* in at
    most S A steps (each step is strict until the policy is optimal, over finitely many
    deterministic policies; Howard's bound is far smaller)."""
    from rl.algorithms import CPI, CPIConfig

    P, R, gamma, mu0 = mdp_args
    mdp = TabularMDP(P, R, gamma, mu0)
    S, A = mdp.num_states, mdp.num_actions
    policy = TabularSoftmax(S, A)
    tol = 1e-10 * _exact_scale(mdp_args)
    algo = CPI(policy, config=CPIConfig(alpha=1.0))
    eta = _eta(mdp, policy)
    for _ in range(S * A):
        algo.policy_step(PolicyObjective.exact(mdp, policy))
        eta_new = _eta(mdp, policy)
        assert eta_new >= eta - tol
        eta = eta_new
    assert eta == pytest.approx(float(mdp.performance(mdp.optimal_policy())), abs=tol)


@given(random_mdps(max_states=3, max_actions=3),
       st.lists(finite_floats(-2.0, 2.0), min_size=9, max_size=9))
@settings(max_examples=15, deadline=None)
def test_exact_trpo_penalty_improves_by_at_least_the_guaranteed_amount(mdp_args, theta0):
    """The TRPO paper's Algorithm 1: each step's actual improvement is at least
    M_i(pi_{i+1}) - M_i(pi_i) = L - C max KL - eta >= 0 (minorize-maximize, eq. (5.7)), so
    eta never decreases, and the step is taken by trustregion.minimize, which increases M."""
    from rl.algorithms import TRPOPenalty, TRPOPenaltyConfig

    P, R, gamma, mu0 = mdp_args
    mdp = TabularMDP(P, R, gamma, mu0)
    S, A = mdp.num_states, mdp.num_actions
    policy = TabularSoftmax(S, A)
    policy.theta = np.asarray(theta0[: S * A])
    tol = 1e-10 * _exact_scale(mdp_args)
    algo = TRPOPenalty(policy, config=TRPOPenaltyConfig(maxiter=5))
    eta = _eta(mdp, policy)
    for _ in range(3):
        pi = policy.probs()
        diag = algo.policy_step(PolicyObjective.exact(mdp, policy))
        eta_new = _eta(mdp, policy)
        assert diag["trpo_penalty/guaranteed_improvement"] >= -tol
        assert eta_new - eta >= diag["trpo_penalty/guaranteed_improvement"] - tol
        C = float(mdp.penalty_coefficient(pi))
        assert diag["trpo_penalty/penalty_coefficient"] == pytest.approx(C, rel=1e-12)
        eta = eta_new


def test_trpo_penalty_takes_real_steps_and_smaller_ones_than_trpo():
    """On a random MDP Algorithm 1 improves eta strictly, and its theoretical C keeps each
    step's maximal KL below 5 % of TRPO's delta = 0.01 (the paper's reason for the
    constraint; here it is about 1.7e-4, some 60 times smaller)."""
    from rl.algorithms import TRPOPenalty
    from rl.mdp import random_mdp

    mdp = random_mdp(6, 3, gamma=0.9, seed=0)
    policy = TabularSoftmax(6, 3)
    algo = TRPOPenalty(policy)
    etas, kls = [_eta(mdp, policy)], []
    for _ in range(5):
        diag = algo.policy_step(PolicyObjective.exact(mdp, policy))
        etas.append(_eta(mdp, policy))
        kls.append(diag["trpo_penalty/max_kl"])
        assert diag["trpo_penalty/guaranteed_improvement"] > 0.0
    assert np.all(np.diff(etas) > 0)
    assert max(kls) < 0.05 * 0.01


@pytest.mark.parametrize("name", ["cpi", "trpo-penalty"])
def test_exact_only_algorithms_refuse_samples_and_network_policies(name):
    """CPI and Algorithm 1 need exact advantages of every pair and a tabular policy: a
    sampled objective or an MLP policy is a clear ValueError naming what to pass."""
    from rl.algorithms import ALGORITHMS
    from rl.mdp import random_mdp
    from rl.policies import CategoricalMLP

    cls = ALGORITHMS[name]
    with pytest.raises(ValueError, match="TabularSoftmax"):
        cls(CategoricalMLP(3, 2, (4,), seed=0), None)
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    policy = TabularSoftmax(3, 2)
    exact = PolicyObjective.exact(mdp, policy)
    sampled = PolicyObjective.from_arrays(policy, exact.observations, exact.actions,
                                          exact.advantages, exact.old_log_probs,
                                          exact.old_params)
    with pytest.raises(ValueError, match="exact mode"):
        cls(policy, None).policy_step(sampled)


def test_npg_step_is_the_lectures_normalised_step_through_natural_step():
    """theta + sqrt(delta / g^T d) d with d = CG on the damped Fisher, spelled out here."""
    import trustregion as tr
    from rl.mdp import random_mdp

    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    policy = TabularSoftmax(4, 3, seed=1)
    cfg = NPGConfig(max_kl=0.02, damping=0.1, cg_iterations=3)
    objective = PolicyObjective.exact(mdp, policy)
    L, g = objective.value_and_gradient()
    d = tr.cg(tr.damped(objective.fisher_operator(), 0.1), g, maxiter=3, rtol=1e-10).x
    expected = policy.theta + np.sqrt(0.02 / float(g @ d)) * d
    NPG(policy, None, cfg).policy_step(objective)
    np.testing.assert_allclose(policy.theta, expected, rtol=1e-12, atol=1e-15)


def test_npg_fisher_fraction_subsamples_with_the_algorithms_generator():
    from rl.policies import CategoricalMLP

    rng = np.random.default_rng(0)
    obs = rng.standard_normal((200, 3))
    actions = rng.integers(0, 2, 200)
    adv = rng.standard_normal(200)

    def step(fraction, seed):
        policy = CategoricalMLP(3, 2, hidden_sizes=(8,), seed=0)
        params = policy.distribution_params(obs)
        logp = policy.log_prob(obs, actions)
        objective = PolicyObjective.from_arrays(policy, obs, actions, adv, logp, params)
        NPG(policy, None, NPGConfig(fisher_fraction=fraction), seed=seed).policy_step(objective)
        return policy.theta

    assert np.array_equal(step(0.1, 3), step(0.1, 3))  # the same draw from the same seed
    assert not np.array_equal(step(0.1, 3), step(0.1, 4))  # another subset
    assert not np.array_equal(step(0.1, 3), step(1.0, 3))
    with pytest.raises(ValueError, match="fisher_fraction"):
        NPGConfig(fisher_fraction=0.0)
