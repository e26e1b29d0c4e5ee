"""Tests of rl.sampling: single-path batches and the vine procedure (TRPO paper, Sec. 5).

Single path: the Batch is exactly the sequence of transitions the environments produced
(terminations vs truncations, the true final observation, continuing episodes), reproducible
from a seed. Vine: on a TabularMDP the Monte Carlo estimates converge to the exact
finite-horizon action values, checked against the estimator's standard error.
"""

from __future__ import annotations

import copy
import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from rl.envs import NonFiniteEnvironmentError, VineUnsupportedError, make_vector_env
from rl.mdp import TabularMDP, random_mdp
from rl.policies import CategoricalMLP, GaussianMLP, ObservationNormalizer, TabularSoftmax
from rl.sampling import Batch, SinglePathSampler, VineBatch, VineSampler

try:
    import mujoco  # noqa: F401

    HAVE_MUJOCO = True
except ImportError:  # pragma: no cover - depends on the installation
    HAVE_MUJOCO = False

# z-score for the Monte Carlo checks: two-sided p ~ 7e-6 per cell, so a handful of cells
# stays far below a 1e-4 family-wise false-alarm rate; the seeds are fixed anyway.
Z = 4.5


def _jump_mdp(horizon=3):
    """Deterministic: s' = min(s + 1 + a, 4), reward R[s, a] = 10 s + a, state 4 terminal."""
    S, A = 5, 2
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            P[s, a, min(s + 1 + a, S - 1)] = 1.0
    R = 10.0 * np.arange(S)[:, None] + np.arange(A)[None, :]
    return TabularMDP(P, R, 0.9, np.eye(S)[0], horizon=horizon, terminal_states=[4])


def _tabular_policy(S, A, seed):
    pi = TabularSoftmax(S, A)
    pi.theta = np.random.default_rng(seed).normal(size=S * A)
    return pi


def _cartpole_sampler(seed, T=20, N=3, **kwargs):
    venv = make_vector_env("CartPole-v1", N)
    pi = CategoricalMLP(4, 2, hidden_sizes=(16, 16), seed=1)
    return SinglePathSampler(venv, pi, T, seed=seed, **kwargs)


def _assert_batches_equal(a: Batch, b: Batch):
    for name in Batch._STEP_FIELDS + ("episode_returns", "episode_lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# --------------------------------------------------------------------------------------
# Batch layout
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["box-discrete", "box-box", "discrete-discrete"])
def test_batch_shapes_and_dtypes(kind):
    """Step arrays are (T, N, ...): float64 observations for Box, int64 for Discrete;
    int64 discrete actions, float64 continuous ones; float64 rewards/log-probs; bool flags;
    dist_params (T, N, P) with P = A logits or 2d (mean, log_std); flat() is (T*N, ...)."""
    T, N = 7, 3
    if kind == "box-discrete":
        venv = make_vector_env("CartPole-v1", N)
        pi = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
        obs_shape, act_shape, P, obs_dtype, act_dtype = (4,), (), 2, np.float64, np.int64
    elif kind == "box-box":
        venv = make_vector_env("MountainCarContinuous-v0", N)
        pi = GaussianMLP(2, 1, hidden_sizes=(8,), seed=0)
        obs_shape, act_shape, P, obs_dtype, act_dtype = (2,), (1,), 2, np.float64, np.float64
    else:
        venv = make_vector_env(random_mdp(4, 3, seed=0, horizon=5), N)
        pi = TabularSoftmax(4, 3)
        obs_shape, act_shape, P, obs_dtype, act_dtype = (), (), 3, np.int64, np.int64
    batch = SinglePathSampler(venv, pi, T, seed=0).sample()
    assert batch.observations.shape == (T, N, *obs_shape)
    assert batch.next_observations.shape == (T, N, *obs_shape)
    assert batch.observations.dtype == obs_dtype == batch.next_observations.dtype
    assert batch.actions.shape == (T, N, *act_shape) and batch.actions.dtype == act_dtype
    for name in ("rewards", "log_probs"):
        assert getattr(batch, name).shape == (T, N) and getattr(batch, name).dtype == np.float64
    for name in ("terminated", "truncated"):
        assert getattr(batch, name).shape == (T, N) and getattr(batch, name).dtype == bool
    assert batch.timesteps.shape == (T, N) and batch.timesteps.dtype == np.int64
    assert batch.dist_params.shape == (T, N, P) and batch.dist_params.dtype == np.float64
    assert batch.episode_returns.dtype == np.float64 and batch.episode_returns.ndim == 1
    assert batch.episode_lengths.dtype == np.int64
    assert batch.episode_lengths.shape == batch.episode_returns.shape
    assert batch.num_steps == T * N
    assert batch.flat("observations").shape == (T * N, *obs_shape)
    assert batch.flat("dist_params").shape == (T * N, P)
    np.testing.assert_array_equal(batch.flat("rewards")[N:2 * N], batch.rewards[1])
    with pytest.raises(ValueError, match="episode_returns"):
        batch.flat("episode_returns")
    venv.close()


def test_log_probs_and_params_are_the_policys():
    """Stored log_probs and dist_params are log π(a_t|s_t) and the parameters of π(·|s_t)
    recomputed by the (traced) policy on the stored observations and actions."""
    sampler = _cartpole_sampler(seed=0)
    batch = sampler.sample()
    obs, act = batch.flat("observations"), batch.flat("actions")
    np.testing.assert_allclose(batch.flat("log_probs"), sampler.policy.log_prob(obs, act),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batch.flat("dist_params"),
                               sampler.policy.distribution_params(obs), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# episode boundaries
# --------------------------------------------------------------------------------------


def test_termination_truncation_and_true_final_observations():
    """On a deterministic MDP (s' = min(s + 1 + a, 4), state 4 terminal, horizon 3):
    every transition satisfies next_observations[t] = s'(s_t, a_t) (the TRUE final state at
    episode ends), terminated ⇔ s' = 4, truncated ⇔ the 3rd step of an episode, rewards are
    R(s_t, a_t); after an end the next observation is the new episode's first state with
    timestep 0, otherwise it equals next_observations[t]."""
    mdp = _jump_mdp(horizon=3)
    T, N = 60, 4
    venv = make_vector_env(mdp, N)
    sampler = SinglePathSampler(venv, _tabular_policy(5, 2, seed=0), T, seed=0)
    batch = sampler.sample()
    s, a = batch.observations, batch.actions
    s_next = np.minimum(s + 1 + a, 4)
    np.testing.assert_array_equal(batch.next_observations, s_next)
    np.testing.assert_array_equal(batch.terminated, s_next == 4)
    np.testing.assert_array_equal(batch.truncated, batch.timesteps == 2)
    np.testing.assert_array_equal(batch.rewards, mdp.R[s, a])
    assert batch.terminated.any() and (batch.truncated & ~batch.terminated).any()
    done = batch.terminated | batch.truncated
    np.testing.assert_array_equal(batch.observations[1:][done[:-1]], 0)
    np.testing.assert_array_equal(batch.timesteps[1:][done[:-1]], 0)
    np.testing.assert_array_equal(batch.observations[1:][~done[:-1]],
                                  batch.next_observations[:-1][~done[:-1]])
    np.testing.assert_array_equal(batch.timesteps[1:][~done[:-1]],
                                  batch.timesteps[:-1][~done[:-1]] + 1)
    venv.close()


def _returns_from_rewards(batch: Batch):
    """Undiscounted returns and lengths of the episodes ending in ``batch`` (all episodes
    start inside it), in order of ending, ties by env index."""
    T, N = batch.rewards.shape
    acc, length = np.zeros(N), np.zeros(N, dtype=int)
    returns, lengths = [], []
    for t in range(T):
        acc += batch.rewards[t]
        length += 1
        for i in np.flatnonzero(batch.terminated[t] | batch.truncated[t]):
            returns.append(acc[i])
            lengths.append(length[i])
            acc[i], length[i] = 0.0, 0
    return np.array(returns), np.array(lengths)


def test_episodes_continue_across_sample_calls():
    """Five calls of T steps equal one call of 5T steps from the same seed (arrays
    concatenate, nothing is re-reset), and the episode returns/lengths, accumulated across
    calls, equal those recomputed from the long run's rewards and end flags."""
    short = _cartpole_sampler(seed=3, T=16)
    parts = [short.sample() for _ in range(5)]
    long = _cartpole_sampler(seed=3, T=80).sample()
    for name in Batch._STEP_FIELDS:
        np.testing.assert_array_equal(
            np.concatenate([getattr(p, name) for p in parts]), getattr(long, name), err_msg=name
        )
    returns = np.concatenate([p.episode_returns for p in parts])
    lengths = np.concatenate([p.episode_lengths for p in parts])
    np.testing.assert_array_equal(returns, long.episode_returns)
    np.testing.assert_array_equal(lengths, long.episode_lengths)
    expected_returns, expected_lengths = _returns_from_rewards(long)
    assert len(expected_returns) >= 5
    np.testing.assert_array_equal(long.episode_returns, expected_returns)
    np.testing.assert_array_equal(long.episode_lengths, expected_lengths)
    assert short.num_episodes == len(returns) and short.total_steps == 5 * 16 * 3


# --------------------------------------------------------------------------------------
# reproducibility and checkpoints
# --------------------------------------------------------------------------------------


def test_same_seed_same_batches():
    """Two samplers with the same seed (fresh envs, same policy) give identical batches,
    call after call; a different seed gives different ones."""
    a, b, c = (_cartpole_sampler(seed=s) for s in (7, 7, 8))
    for _ in range(2):
        ba, bb, bc = a.sample(), b.sample(), c.sample()
        _assert_batches_equal(ba, bb)
        assert not np.array_equal(ba.observations, bc.observations)


def test_async_vectorization_gives_the_same_batches():
    """The sampler is agnostic to the vectorisation: with the same seed an AsyncVectorEnv
    (one worker process per env) yields exactly the batches of a SyncVectorEnv."""
    out = []
    for vectorization in ("sync", "async"):
        venv = make_vector_env("CartPole-v1", 2, vectorization=vectorization)
        pi = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
        sampler = SinglePathSampler(venv, pi, 40, seed=0)
        out.append([sampler.sample(), sampler.sample()])
        venv.close()
    for a, b in zip(*out, strict=True):
        _assert_batches_equal(a, b)


def test_state_dict_resumes_exactly_and_reproducibly():
    """``load_state_dict(state, reset_env=False)`` on an env in the saved state (a copy
    of the vector env taken at save time) continues exactly as the original sampler;
    ``reset_env=True`` on fresh envs resumes reproducibly (two resumed samplers agree)
    with the step and episode counters carried over."""
    venv = make_vector_env(random_mdp(5, 3, seed=0, horizon=7), 2)
    pi = _tabular_policy(5, 3, seed=0)
    original = SinglePathSampler(venv, pi, 11, seed=0)
    original.sample()
    state = original.state_dict()
    venv_copy = copy.deepcopy(venv)
    expected = original.sample()

    resumed = SinglePathSampler(venv_copy, pi, 11, seed=123)
    resumed.load_state_dict(state, reset_env=False)
    _assert_batches_equal(resumed.sample(), expected)

    fresh = []
    for _ in range(2):
        sampler = SinglePathSampler(make_vector_env(random_mdp(5, 3, seed=0, horizon=7), 2),
                                    pi, 11, seed=99)
        sampler.load_state_dict(state, reset_env=True)
        assert sampler.total_steps == 22
        fresh.append(sampler.sample())
        assert fresh[-1].timesteps[0].tolist() == [0, 0]  # new episodes after the reset
    _assert_batches_equal(*fresh)
    with pytest.raises(ValueError, match="state_dict"):
        resumed.load_state_dict({"rng": None})
    before = resumed.state_dict()
    for key in ("rng", "env_seed_rng"):
        with pytest.raises(ValueError, match=rf"state\['{key}'\]"):
            resumed.load_state_dict({**state, key: {"bit_generator": "PCG64", "state": 3}})
    assert resumed.state_dict()["rng"] == before["rng"]  # nothing changed by a refused state


# --------------------------------------------------------------------------------------
# normaliser, action clipping, bad environments, bad arguments
# --------------------------------------------------------------------------------------


def test_normalizer_updated_after_sampling_and_old_probs_consistent():
    """With update_normalizer=True the policy's ObservationNormalizer absorbs exactly the
    batch's observations (count T*N, mean and var equal np.mean/np.var), and the stored
    log_probs / dist_params are those of the policy after the update (ratio 1 at θ_old);
    with update_normalizer=False the statistics are untouched."""
    T, N = 25, 2
    norm = ObservationNormalizer(4)
    pi = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0, obs_normalizer=norm)
    batch = SinglePathSampler(make_vector_env("CartPole-v1", N), pi, T, seed=0).sample()
    obs = batch.flat("observations")
    assert norm.count == T * N
    np.testing.assert_allclose(norm.mean, obs.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(norm.var, obs.var(axis=0), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(batch.flat("log_probs"), pi.log_prob(obs, batch.flat("actions")),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batch.flat("dist_params"), pi.distribution_params(obs),
                               rtol=1e-12, atol=1e-12)

    frozen = ObservationNormalizer(4)
    pi2 = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0, obs_normalizer=frozen)
    SinglePathSampler(make_vector_env("CartPole-v1", N), pi2, T, seed=0,
                      update_normalizer=False).sample()
    assert frozen.count == 0


class _EchoActionEnv(gymnasium.Env):
    """Observation = the action the env received; action bounds [-0.1, 0.1]."""

    observation_space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float64)
    action_space = spaces.Box(-0.1, 0.1, (2,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2), {}

    def step(self, action):
        return np.array(action, dtype=np.float64), 0.0, False, False, {}


def test_box_actions_clipped_for_the_env_but_stored_raw():
    """Gaussian samples are stored unclipped (their log-prob is the Gaussian's), while the
    environment receives them clipped to the action bounds."""
    pi = GaussianMLP(2, 2, hidden_sizes=(4,), init_log_std=0.0, seed=0)
    batch = SinglePathSampler(make_vector_env(_EchoActionEnv, 2), pi, 30, seed=0).sample()
    assert np.abs(batch.actions).max() > 0.5  # σ = 1: raw samples leave [-0.1, 0.1]
    received = batch.next_observations
    expected = np.clip(batch.actions, -0.1, 0.1).astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(received, expected)


class _NonFiniteEnv(gymnasium.Env):
    """Finite until step ``bad_step`` (0-based), where the observation or reward is bad."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), dtype=np.float64)
    action_space = spaces.Discrete(2)

    def __init__(self, what="obs", bad_step=4, value=np.nan):
        self.what, self.bad_step, self.value = what, bad_step, value

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3), {}

    def step(self, action):
        obs, r = np.full(3, float(self.t)), 1.0
        if self.t == self.bad_step:
            if self.what == "obs":
                obs[1] = self.value
            else:
                r = self.value
        self.t += 1
        return obs, r, False, False, {}


@pytest.mark.parametrize(("what", "value"), [("obs", np.nan), ("obs", np.inf),
                                             ("reward", np.nan), ("reward", -np.inf)])
def test_nonfinite_environment_raises_naming_the_step(what, value):
    """A NaN/inf observation or reward raises NonFiniteEnvironmentError naming what was
    non-finite and the step at which it appeared."""
    venv = make_vector_env(lambda: _NonFiniteEnv(what, 4, value), 2)
    sampler = SinglePathSampler(venv, CategoricalMLP(3, 2, hidden_sizes=(4,), seed=0), 10, seed=0)
    with pytest.raises(NonFiniteEnvironmentError) as exc:
        sampler.sample()
    msg = str(exc.value)
    assert ("observation" if what == "obs" else "reward") in msg
    assert "t=4" in msg and "sub-environment 0" in msg


def test_sampler_rejects_bad_arguments():
    """Bad arguments are ValueErrors naming them: a non-vector env, a vector env with
    NEXT_STEP autoreset, a non-positive T, a bad seed, a non-policy."""
    pi = CategoricalMLP(4, 2, hidden_sizes=(4,), seed=0)
    with pytest.raises(ValueError, match="VectorEnv"):
        SinglePathSampler(gymnasium.make("CartPole-v1"), pi, 5, seed=0)
    next_step = gymnasium.make_vec("CartPole-v1", num_envs=1, vectorization_mode="sync")
    with pytest.raises(ValueError, match="SAME_STEP"):
        SinglePathSampler(next_step, pi, 5, seed=0)
    venv = make_vector_env("CartPole-v1", 1)
    with pytest.raises(ValueError, match="steps_per_env"):
        SinglePathSampler(venv, pi, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        SinglePathSampler(venv, pi, 5, seed=-3)
    with pytest.raises(ValueError, match="policy"):
        SinglePathSampler(venv, object(), 5, seed=0)


# --------------------------------------------------------------------------------------
# vine
# --------------------------------------------------------------------------------------


def _finite_horizon_q(mdp: TabularMDP, pi: np.ndarray, gamma: float, H: int):
    """Exact Q_H(s, a) = E[Σ_{t<H} γ^t r_t | s_0 = s, a_0 = a, a_t ~ π] (no terminals):
    Q_1 = R, Q_{h+1} = R + γ P V_h, V_h(s) = Σ_a π(a|s) Q_h(s, a)."""
    Q = mdp.R.copy()
    for _ in range(H - 1):
        V = (pi * Q).sum(axis=1)
        Q = mdp.R + gamma * mdp.P @ V
    return Q, (pi * Q).sum(axis=1)


def _cell_stats(states, actions, values, clusters, S, A):
    """Per (s, a): mean of ``values`` and its cluster-robust standard error.

    Rows of one cluster (the branches of one rollout state) can be dependent: with common
    random numbers two branches that draw the same action return identical values. The
    clusters are independent, so the variance of the ratio estimator
    ``mean = Σ_n S_n / Σ_n m_n`` (``S_n``, ``m_n``: sum and count of the cell's rows in
    cluster n) is estimated by ``Σ_n (S_n − mean m_n)² / (Σ_n m_n)²`` (sandwich estimator).
    """
    mean = np.full((S, A), np.nan)
    se = np.full((S, A), np.nan)
    count = np.zeros((S, A), dtype=int)
    for s in range(S):
        for a in range(A):
            rows = (states == s) & (actions == a)
            ids, c = np.unique(clusters[rows], return_inverse=True)
            v = values[rows]
            count[s, a] = v.size
            if ids.size >= 2:
                sums = np.bincount(c, weights=v)
                m = np.bincount(c).astype(float)
                mean[s, a] = v.mean()
                resid = sums - mean[s, a] * m
                se[s, a] = np.sqrt(ids.size / (ids.size - 1) * (resid @ resid)) / m.sum()
    return mean, se, count


def _vine_samples(vine, calls):
    batches = [vine.sample() for _ in range(calls)]
    cat = {k: np.concatenate([getattr(b, k) for b in batches])
           for k in ("observations", "actions", "q_values", "advantages", "baselines")}
    n = vine.num_rollout_states
    cat["cluster"] = np.concatenate([b.state_index + i * n for i, b in enumerate(batches)])
    return batches, cat


def test_vine_q_estimates_are_unbiased_on_a_tabular_mdp():
    """Vine with every action enumerated: for each (s, a), the mean of Q̂(s, a) over the
    rollout set agrees with the exact H-step action value Q_H(s, a) (backward recursion
    on the TabularMDP) within 4.5 standard errors; the baseline is V̂(s) = Σ_a π(a|s) Q̂."""
    S, A, H, gamma = 3, 2, 4, 0.8
    mdp = random_mdp(S, A, gamma=0.9, seed=1)
    policy = _tabular_policy(S, A, seed=2)
    pi = policy.probs()
    Q_H, _ = _finite_horizon_q(mdp, pi, gamma, H)
    vine = VineSampler(mdp, policy, num_trunk_steps=300, num_rollout_states=150,
                       actions_per_state="all", rollout_length=H, gamma=gamma, seed=0)
    batches, cat = _vine_samples(vine, 6)
    mean, se, count = _cell_stats(cat["observations"], cat["actions"], cat["q_values"],
                                    cat["cluster"], S, A)
    assert count.min() >= 100 and np.all(se > 0)
    z = np.abs(mean - Q_H) / se
    assert z.max() < Z, (mean, Q_H, se)
    b = batches[0]
    pi_old = np.exp(b.log_probs)
    np.testing.assert_allclose(b.weights, A * pi_old)
    Qn = b.q_values.reshape(-1, A)
    np.testing.assert_allclose(b.baselines.reshape(-1, A)[:, 0],
                               (pi_old.reshape(-1, A) * Qn).sum(axis=1))
    np.testing.assert_allclose(b.advantages, b.weights * (b.q_values - b.baselines))
    # the check has power: an off-by-one rollout length (Q_{H-1}) is rejected
    Q_wrong, _ = _finite_horizon_q(mdp, pi, gamma, H - 1)
    assert (np.abs(mean - Q_wrong) / se).max() > Z
    vine.close()


def test_vine_leave_one_out_advantages_are_unbiased():
    """Vine with K = 3 actions sampled from π and the leave-one-out baseline
    b_k = mean_{j≠k} Q̂_j: for each (s, a), the mean advantage agrees with the exact
    Q_H(s, a) − V_H(s) within 4.5 standard errors (the baseline does not depend on a_k)."""
    S, A, H, gamma = 3, 2, 5, 0.8
    mdp = random_mdp(S, A, gamma=0.9, seed=4)
    policy = _tabular_policy(S, A, seed=5)
    pi = policy.probs()
    Q_H, V_H = _finite_horizon_q(mdp, pi, gamma, H)
    vine = VineSampler(mdp, policy, num_trunk_steps=200, num_rollout_states=100,
                       actions_per_state=3, rollout_length=H, gamma=gamma, seed=1)
    _, cat = _vine_samples(vine, 5)
    mean, se, count = _cell_stats(cat["observations"], cat["actions"], cat["advantages"],
                                    cat["cluster"], S, A)
    assert count.min() >= 50
    z = np.abs(mean - (Q_H - V_H[:, None])) / se
    assert z.max() < Z, (mean, Q_H - V_H[:, None], se)
    Q = cat["q_values"].reshape(-1, 3)
    loo = (Q.sum(axis=1, keepdims=True) - Q) / 2
    np.testing.assert_allclose(cat["baselines"], loo.ravel())
    vine.close()


def test_vine_self_normalized_estimator_carries_raw_q_grouped_by_state():
    """estimator="self_normalized" (TRPO paper eq. (16)): the same rollouts as the
    leave-one-out sampler with the same seed, advantages = Q̂ (no baseline), the flag that
    makes the update group rows by state_index, and its own entry in the saved settings;
    it needs K >= 2 sampled actions (a ValueError naming the argument otherwise)."""
    mdp = random_mdp(4, 3, seed=0, horizon=9)
    policy = _tabular_policy(4, 3, seed=1)
    loo = VineSampler(mdp, policy, seed=0, **_VINE_RESUME_KWARGS).sample()
    vine = VineSampler(mdp, policy, seed=0, estimator="self_normalized", **_VINE_RESUME_KWARGS)
    sn = vine.sample()
    np.testing.assert_array_equal(sn.q_values, loo.q_values)
    np.testing.assert_array_equal(sn.advantages, sn.q_values)
    assert not np.any(sn.baselines) and np.all(sn.weights == 1.0)
    assert sn.self_normalized and not loo.self_normalized
    assert vine.state_dict()["settings"]["estimator"] == "self_normalized"
    vine.close()
    for per_state in (1, "all"):
        with pytest.raises(ValueError, match="self_normalized.*at least 2"):
            VineSampler(mdp, policy, seed=0, estimator="self_normalized",
                        **{**_VINE_RESUME_KWARGS, "actions_per_state": per_state})
    with pytest.raises(ValueError, match="estimator must be"):
        VineSampler(mdp, policy, seed=0, estimator="snis", **_VINE_RESUME_KWARGS)


def test_vine_common_random_numbers():
    """With common random numbers, branches from one state that draw the same first action
    replay the same rollout (identical Q̂); with independent random numbers they differ
    (stochastic transitions and policy)."""
    S, A = 4, 2
    mdp = random_mdp(S, A, seed=3)
    policy = _tabular_policy(S, A, seed=0)
    kwargs = dict(num_trunk_steps=30, num_rollout_states=20, actions_per_state=6,
                  rollout_length=8, gamma=0.9, seed=0)
    for crn in (True, False):
        vine = VineSampler(mdp, policy, common_random_numbers=crn, **kwargs)
        b = vine.sample()
        a = b.actions.reshape(-1, 6)
        q = b.q_values.reshape(-1, 6)
        same_action_diffs = [abs(q[n, j] - q[n, k]) for n in range(len(a))
                             for j in range(6) for k in range(j) if a[n, j] == a[n, k]]
        assert len(same_action_diffs) > 20
        if crn:
            assert max(same_action_diffs) == 0.0
        else:
            assert max(same_action_diffs) > 0.0
        vine.close()


def test_vine_reproducible_and_consistent_fields():
    """Same seed ⇒ identical VineBatch arrays; rows are grouped by rollout state (the
    observations repeat K times), log_probs and dist_params are π_old's at the rollout
    states, and the trunk is a (T, 1) Batch whose observations contain the rollout states."""
    mdp = random_mdp(4, 3, seed=0, horizon=10)
    policy = _tabular_policy(4, 3, seed=1)
    kwargs = dict(num_trunk_steps=40, num_rollout_states=10, actions_per_state=2,
                  rollout_length=5, gamma=0.95, seed=11)
    b1, b2 = (VineSampler(mdp, policy, **kwargs).sample() for _ in range(2))
    assert isinstance(b1, VineBatch) and b1.num_steps == 20
    for name in ("observations", "actions", "q_values", "advantages", "log_probs",
                 "dist_params", "state_index"):
        np.testing.assert_array_equal(getattr(b1, name), getattr(b2, name), err_msg=name)
    _assert_batches_equal(b1.trunk, b2.trunk)
    obs = b1.observations.reshape(10, 2)
    np.testing.assert_array_equal(obs[:, 0], obs[:, 1])
    np.testing.assert_allclose(b1.log_probs, policy.log_prob(b1.observations, b1.actions))
    np.testing.assert_allclose(b1.dist_params, policy.distribution_params(b1.observations))
    assert b1.trunk.observations.shape == (40, 1)
    assert set(obs[:, 0]) <= set(b1.trunk.observations.ravel())
    assert b1.num_env_steps == 40 + b1.diagnostics["vine/rollout_steps"]


def _assert_vine_batches_equal(a: VineBatch, b: VineBatch):
    for name in ("observations", "actions", "q_values", "baselines", "weights", "advantages",
                 "log_probs", "dist_params", "state_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    _assert_batches_equal(a.trunk, b.trunk)
    assert a.num_env_steps == b.num_env_steps
    assert a.diagnostics == b.diagnostics


_VINE_RESUME_KWARGS = dict(num_trunk_steps=23, num_rollout_states=6, actions_per_state=3,
                           rollout_length=5, gamma=0.9)


def _timelimited_mdp():
    return gymnasium.wrappers.TimeLimit(random_mdp(4, 3, seed=0), max_episode_steps=9)


@pytest.mark.parametrize("env", [random_mdp(4, 3, seed=0, horizon=9), _timelimited_mdp],
                         ids=["tabular-mdp", "time-limit-wrapper"])
def test_vine_state_dict_resumes_exactly(env):
    """Sample 2 batches, save, sample 2 more; a new VineSampler (other seed) loading the
    pickled state gives exactly those 2 batches, the open trunk episode included; a state
    saved before the first sample reproduces the first batch."""
    policy = _tabular_policy(4, 3, seed=1)
    vine = VineSampler(env, policy, seed=0, **_VINE_RESUME_KWARGS)
    initial = vine.state_dict()
    first = vine.sample()
    vine.sample()
    state = vine.state_dict()
    assert 0 < state["trunk"]["episode_length"][0]  # an episode is open at the save
    expected = [vine.sample(), vine.sample()]  # sampling on must not alter the saved state
    state = pickle.loads(pickle.dumps(state))

    resumed = VineSampler(env, policy, seed=123, **_VINE_RESUME_KWARGS)
    resumed.load_state_dict(state)
    assert resumed.trunk_sampler.total_steps == 2 * 23
    for want in expected:
        _assert_vine_batches_equal(resumed.sample(), want)

    restarted = VineSampler(env, policy, seed=7, **_VINE_RESUME_KWARGS)
    restarted.load_state_dict(initial)
    _assert_vine_batches_equal(restarted.sample(), first)
    for sampler in (vine, resumed, restarted):
        sampler.close()


def test_vine_load_state_dict_rejects_bad_input():
    """load_state_dict raises a ValueError naming the problem for a non-dict, missing keys,
    a SinglePathSampler state, other settings or spaces, a corrupt RNG or trunk state, and
    leaves the sampler as it was."""
    mdp, policy = random_mdp(4, 3, seed=0, horizon=9), _tabular_policy(4, 3, seed=1)
    vine = VineSampler(mdp, policy, seed=0, **_VINE_RESUME_KWARGS)
    other = VineSampler(mdp, policy, seed=1, **_VINE_RESUME_KWARGS)
    other.sample()
    good = other.state_dict()
    single = SinglePathSampler(make_vector_env(mdp, 1), policy, 5, seed=0).state_dict()
    bad_cases = [
        ("not a dict", "state_dict", []),
        ("missing", "missing", {k: v for k, v in good.items() if k != "action_rng"}),
        ("single path", "SinglePathSampler", single),
        ("unknown key", "unknown", {**good, "extra": 1}),
        ("corrupt rng", "choice_rng", {**good, "choice_rng": {"bit_generator": "MT19937"}}),
        ("corrupt trunk rng", "trunk", {**good, "trunk": {**good["trunk"], "rng": None}}),
        ("trunk keys", "trunk", {**good, "trunk": {"rng": good["trunk"]["rng"]}}),
        ("trunk env type", "trunk_env", {**good, "trunk_env": {"state": 0}}),
        ("trunk env missing", "trunk_env", {**good, "trunk_env": None}),
    ]
    for _what, match, state in bad_cases:
        with pytest.raises(ValueError, match=match):
            vine.load_state_dict(state)
    for key, value in [("gamma", 0.5), ("rollout_length", 6), ("actions_per_state", "all"),
                       ("estimator", "self_normalized")]:
        sampler = VineSampler(mdp, policy, seed=0, **{**_VINE_RESUME_KWARGS, key: value})
        with pytest.raises(ValueError, match=f"different settings.*{key}"):
            sampler.load_state_dict(good)
        sampler.close()
    bigger = VineSampler(random_mdp(5, 3, seed=0), _tabular_policy(5, 3, seed=1), seed=0,
                         **_VINE_RESUME_KWARGS)
    with pytest.raises(ValueError, match="observation_space"):
        bigger.load_state_dict(good)
    # the failed loads changed nothing: vine still samples as a fresh seed-0 sampler
    fresh = VineSampler(mdp, policy, seed=0, **_VINE_RESUME_KWARGS)
    _assert_vine_batches_equal(vine.sample(), fresh.sample())
    for sampler in (vine, other, bigger, fresh):
        sampler.close()


def test_vine_without_state_restore_fails_up_front():
    """An env whose state cannot be restored (CartPole) raises VineUnsupportedError when
    the VineSampler is built, before any sampling; bad arguments are ValueErrors."""
    pi = CategoricalMLP(4, 2, hidden_sizes=(4,), seed=0)
    with pytest.raises(VineUnsupportedError, match="state"):
        VineSampler("CartPole-v1", pi, num_trunk_steps=10, num_rollout_states=2,
                    actions_per_state=2, rollout_length=3, gamma=0.9, seed=0)
    mdp, tab = random_mdp(3, 2, seed=0), TabularSoftmax(3, 2)
    good = dict(num_trunk_steps=10, num_rollout_states=2, actions_per_state=2,
                rollout_length=3, gamma=0.9, seed=0)
    for key, value in [("num_rollout_states", 11), ("gamma", 1.5), ("rollout_length", 0),
                       ("actions_per_state", "some")]:
        with pytest.raises(ValueError, match=key):
            VineSampler(mdp, tab, **{**good, key: value})


@pytest.mark.skipif(not HAVE_MUJOCO, reason="mujoco is not installed")
def test_vine_on_mujoco_runs_and_is_reproducible():
    """Vine on a MuJoCo env (InvertedPendulum-v5) with a Gaussian policy: the rollouts
    restore the physics state, so two samplers with the same seed give identical Q̂, and
    every rollout's return is at most the H-step maximum Σ_{t<H} γ^t (reward 1 per step)."""
    kwargs = dict(num_trunk_steps=30, num_rollout_states=4, actions_per_state=2,
                  rollout_length=10, gamma=0.9, seed=0)
    out = []
    for _ in range(2):
        pi = GaussianMLP(4, 1, hidden_sizes=(8,), seed=0)
        vine = VineSampler("InvertedPendulum-v5", pi, **kwargs)
        out.append(vine.sample())
        vine.close()
    np.testing.assert_array_equal(out[0].q_values, out[1].q_values)
    assert out[0].actions.shape == (8, 1) and out[0].dist_params.shape == (8, 2)
    assert np.all(out[0].q_values <= (1 - 0.9**10) / (1 - 0.9) + 1e-12)
    # reward 1 per step until the pole falls: each Q̂ is sum_{t<k} gamma^t for the k steps
    # its rollout lasted, an integer in [1, H] (termination ends a rollout early, the
    # horizon H = 10 cuts the others), so the discounting is exact
    k = np.log1p(-out[0].q_values * (1 - 0.9)) / np.log(0.9)
    np.testing.assert_allclose(k, np.round(k), rtol=0, atol=1e-9)
    assert np.all((np.round(k) >= 1) & (np.round(k) <= 10))
    assert np.any(np.round(k) < 10) and np.any(np.round(k) == 10)


# --------------------------------------------------------------------------------------
# policy against environment, Generator seeds, checked checkpoints, reprs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("env, policy, needle", [
    ("CartPole-v1", CategoricalMLP(4, 5, hidden_sizes=(4,), seed=0), "num_actions=5"),
    ("CartPole-v1", CategoricalMLP(3, 2, hidden_sizes=(4,), seed=0), "obs_dim=3"),
    ("CartPole-v1", GaussianMLP(4, 1, hidden_sizes=(4,), seed=0), "continuous"),
    ("CartPole-v1", TabularSoftmax(4, 2), "integer states"),
    ("Pendulum-v1", CategoricalMLP(3, 2, hidden_sizes=(4,), seed=0), "discrete actions"),
    ("Pendulum-v1", GaussianMLP(3, 2, hidden_sizes=(4,), seed=0), "act_dim=2"),
    (random_mdp(5, 2, seed=0), TabularSoftmax(3, 2), "num_states=3"),
    (random_mdp(5, 2, seed=0), TabularSoftmax(5, 3), "num_actions=3"),
    (random_mdp(5, 2, seed=0), CategoricalMLP(5, 2, hidden_sizes=(4,), seed=0), "obs_dim=5"),
])
def test_samplers_reject_a_policy_that_does_not_fit_the_env(env, policy, needle):
    """A policy whose observation or action dimensions or kinds differ from the env's is a
    ValueError at construction naming the mismatch and make_policy, not an error deep in
    the first step."""
    venv = make_vector_env(env, 2)
    with pytest.raises(ValueError, match=rf"does not fit the environment.*{needle}.*make_policy"):
        SinglePathSampler(venv, policy, 5, seed=0)
    venv.close()
    if not isinstance(env, str):
        with pytest.raises(ValueError, match=rf"does not fit.*{needle}"):
            VineSampler(env, policy, num_trunk_steps=4, num_rollout_states=2,
                        actions_per_state=2, rollout_length=2, gamma=0.9, seed=0)


def test_sampler_accepts_a_generator_seed():
    """A numpy Generator seeds a sampler deterministically: Generators in the same state
    give the same batches (and are advanced), like an integer seed."""
    batches = []
    for _ in range(2):
        rng = np.random.default_rng(5)
        before = rng.bit_generator.state
        batches.append(_cartpole_sampler(rng).sample())
        assert rng.bit_generator.state != before
    _assert_batches_equal(*batches)
    other = _cartpole_sampler(np.random.default_rng(6)).sample()
    assert not np.array_equal(other.observations, batches[0].observations)
    mdp = random_mdp(3, 2, seed=0, horizon=5)
    vine = [VineSampler(mdp, TabularSoftmax(3, 2), num_trunk_steps=6, num_rollout_states=2,
                        actions_per_state=2, rollout_length=3, gamma=0.9,
                        seed=np.random.default_rng(1)).sample() for _ in range(2)]
    assert np.array_equal(vine[0].q_values, vine[1].q_values)


def test_load_state_dict_rejects_bad_observations_and_counters():
    """Observations of the wrong shape or non-finite, negative or non-integer episode
    lengths, non-finite returns and negative counters are ValueErrors naming the entry,
    raised before anything changes (not a broadcast error in the next sample)."""
    sampler = _cartpole_sampler(0, T=5, N=2)
    sampler.sample()
    good = sampler.state_dict()
    bad_cases = [
        ("observations", np.zeros(7)),
        ("observations", np.full((2, 4), np.nan)),
        ("episode_length", [-5, -5]),
        ("episode_length", [1.5, 2.0]),
        ("episode_length", [1, 2, 3]),
        ("episode_return", [np.inf, 0.0]),
        ("total_steps", -1),
        ("num_episodes", 2.5),
    ]
    for key, value in bad_cases:
        for reset_env in (False, True):
            with pytest.raises(ValueError, match=rf"state\['{key}'\]"):
                sampler.load_state_dict({**good, key: value}, reset_env=reset_env)
    after = sampler.state_dict()
    assert after["rng"] == good["rng"] and after["total_steps"] == good["total_steps"]
    assert np.array_equal(after["observations"], good["observations"])
    tabular = SinglePathSampler(make_vector_env(random_mdp(3, 2, seed=0), 2), TabularSoftmax(3, 2),
                                4, seed=0)
    state = tabular.state_dict()
    for obs in ([0, 3], [0.0, 1.0], [[0], [1]]):
        with pytest.raises(ValueError, match=r"state\['observations'\]"):
            tabular.load_state_dict({**state, "observations": obs}, reset_env=False)
    tabular.load_state_dict({**state, "observations": np.array([2, 0])}, reset_env=False)


def test_reprs_are_short_summaries():
    """Batch, VineBatch and the samplers show sizes and counts, not arrays or addresses."""
    sampler = _cartpole_sampler(0, T=512, N=8)
    batch = sampler.sample()
    text = repr(batch)
    assert text.startswith("Batch(T=512, N=8, obs_shape=(4,), act_shape=(), P=2, episodes=")
    assert len(text) < 150
    text = repr(sampler)
    assert "CartPole-v1" in text and "steps_per_env=512" in text and " at 0x" not in text
    mdp = random_mdp(3, 2, seed=0, horizon=5)
    vine = VineSampler(mdp, TabularSoftmax(3, 2), num_trunk_steps=6, num_rollout_states=2,
                       actions_per_state="all", rollout_length=3, gamma=0.9, seed=0)
    assert repr(vine).startswith("VineSampler(env='TabularMDP', policy=TabularSoftmax(")
    assert "actions_per_state='all'" in repr(vine)
    assert repr(vine.sample()).startswith("VineBatch(M=4, obs_shape=(), num_rollout_states=2")
    vine.close()
