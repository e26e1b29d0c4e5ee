"""The samplers and the value functions on structured observations and multi-part actions:
batches hold one array per leaf in the leaf's dtype with the true final observations, the
normaliser of the Box leaves is updated from the batch, blocks and vine sample them, and the
advantages and value fits on a structured batch are those on its flat encoding, exactly.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rl.advantages import ConvValueFunction, MLPValueFunction, compute_advantages, make_baseline
from rl.envs import make_vector_env
from rl.policies import BernoulliMLP, MultiCategoricalMLP, Policy, make_policy
from rl.sampling import BlockSampler, SinglePathSampler, VineSampler
from rl.sampling.finishing import join_blocks
from rl.spaces import ObservationLayout, map_leaves
from tests.rl.space_tasks import DictImageTask, DictTask, TupleTask


class CounterDict(gym.Env):
    """``Dict(t: Box(1), parity: Discrete(2))`` counting the steps of an episode of 3 steps
    (truncated); the action is ignored. Its final observation (t = 3) differs from every
    first one (t = 0)."""

    observation_space = spaces.Dict({"t": spaces.Box(0.0, 10.0, (1,), np.float32),
                                     "parity": spaces.Discrete(2)})
    action_space = spaces.MultiDiscrete([2, 3])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"t": np.array([self.t], np.float32), "parity": self.t % 2}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.t += 1
        return self._obs(), 1.0, False, self.t >= 3, {}


def test_structured_batch_holds_each_leaf_and_the_true_final_observation():
    """A Dict batch is the space's structure of (T, N, ...) arrays in the leaves' dtypes;
    MultiDiscrete actions are int64 (T, N, K) and reach the env in its dtype; where an episode
    is cut, next_observations holds its true last observation (t = 3), and the next step
    starts the new episode (t = 0)."""
    venv = make_vector_env(CounterDict, 2, seed=0)
    pi = make_policy(venv.single_observation_space, venv.single_action_space,
                     hidden_sizes=(4,), seed=0)
    batch = SinglePathSampler(venv, pi, 7, seed=0).sample()
    obs, nxt = batch.observations, batch.next_observations
    assert set(obs) == {"t", "parity"}
    assert obs["t"].dtype == np.float32 and obs["t"].shape == (7, 2, 1)
    assert obs["parity"].dtype == np.int64 and obs["parity"].shape == (7, 2)
    assert batch.actions.dtype == np.int64 and batch.actions.shape == (7, 2, 2)
    expected_t = np.tile(np.array([0, 1, 2, 0, 1, 2, 0])[:, None], (1, 2))
    np.testing.assert_array_equal(obs["t"][..., 0], expected_t)
    np.testing.assert_array_equal(nxt["t"][..., 0], expected_t + 1)  # 3 at the cut
    np.testing.assert_array_equal(nxt["parity"], (expected_t + 1) % 2)
    assert batch.truncated[2].all() and batch.truncated[5].all()
    flat = batch.flat("observations")
    assert flat["t"].shape == (14, 1) and flat["parity"].shape == (14,)
    venv.close()


def test_the_normaliser_of_the_box_leaves_is_updated_from_the_batch():
    """With obs_normalization a MultiInputPolicy normalises its Box leaves' columns: after a
    batch the statistics are the mean and variance of exactly those columns of the batch's
    encoding, and the stored log-probabilities are the policy's under the new statistics."""
    venv = make_vector_env(DictTask, 3, seed=0)
    pi = make_policy(venv.single_observation_space, venv.single_action_space,
                     hidden_sizes=(8,), obs_normalization=True, seed=0)
    batch = SinglePathSampler(venv, pi, 20, seed=1).sample()
    obs = batch.flat("observations")
    columns = pi.layout.encode(obs)[:, pi.layout.box_columns]
    assert columns.shape == (60, 2)
    np.testing.assert_allclose(pi.obs_normalizer.mean, columns.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(pi.obs_normalizer.var, columns.var(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(batch.flat("log_probs"),
                                  pi.log_prob(obs, batch.flat("actions")))
    venv.close()


def _structured_batch(env, steps=12, n=2, seed=0):
    venv = make_vector_env(env, n, seed=seed)
    pi = make_policy(venv.single_observation_space, venv.single_action_space,
                     hidden_sizes=(8,), seed=seed)
    batch = SinglePathSampler(venv, pi, steps, seed=seed).sample()
    venv.close()
    return batch, ObservationLayout.from_space(env.observation_space)


@pytest.mark.parametrize("env", [DictTask, TupleTask])
def test_advantages_and_value_fits_on_a_structured_batch_are_those_on_its_encoding(env):
    """compute_advantages and MLPValueFunction.fit on a Dict / Tuple batch with
    observation_layout equal, bit for bit, the same calls on the batch's flat encoding
    with a plain MLPValueFunction of the same seed."""
    batch, layout = _structured_batch(env)
    T, N = batch.rewards.shape
    encoded = batch.__class__(**{**batch.__dict__,
                                 "observations": _encode_steps(layout, batch.observations),
                                 "next_observations": _encode_steps(layout,
                                                                    batch.next_observations)})
    structured = MLPValueFunction(layout.flat_dim, (8,), seed=3, observation_layout=layout)
    plain = MLPValueFunction(layout.flat_dim, (8,), seed=3)
    for _ in range(2):  # the second pass starts from fitted networks
        A, targets = compute_advantages(batch, structured, 0.9, 0.8)
        A_ref, targets_ref = compute_advantages(encoded, plain, 0.9, 0.8)
        np.testing.assert_array_equal(A, A_ref)
        np.testing.assert_array_equal(targets, targets_ref)
        info = structured.fit(batch.flat("observations"), targets.reshape(-1))
        info_ref = plain.fit(encoded.flat("observations"), targets_ref.reshape(-1))
        assert info["value/loss"] == info_ref["value/loss"]
        np.testing.assert_array_equal(structured.params, plain.params)


def _encode_steps(layout, obs):
    rows = map_leaves(lambda x: x.reshape(-1, *x.shape[2:]), obs)
    first = np.asarray(next(iter(obs.values())) if isinstance(obs, dict) else obs[0])
    return layout.encode(rows).reshape(*first.shape[:2], layout.flat_dim)


def test_conv_value_function_on_an_image_with_other_leaves():
    """make_baseline gives a Dict space with an image a ConvValueFunction whose prediction
    is its network on (frames, the flat encoding of the other leaves), and a fit lowers its
    loss."""
    batch, layout = _structured_batch(DictImageTask, steps=16)
    vf = make_baseline("mlp", DictImageTask.observation_space, seed=0, iterations=3)
    assert isinstance(vf, ConvValueFunction) and vf.net.extra_dim == layout.flat_dim == 2
    obs = batch.flat("observations")
    expected = vf.target_mean + vf.target_scale * vf.net.forward_numpy(
        obs["image"], layout.encode(obs))[:, 0]
    np.testing.assert_array_equal(vf.predict(obs), expected)
    info = vf.fit(obs, np.linspace(0.0, 1.0, 32))
    assert info["value/loss"] < info["value/loss_before"]


def test_blocks_join_structured_pieces_leaf_by_leaf():
    """Two blocks of a Dict task give the batch of two samplers built like the blocks, joined
    along the environment axis leaf by leaf; the blocks rebuild the MultiInputPolicy from
    their spaces."""
    env = DictTask
    pi = make_policy(env.observation_space, env.action_space, hidden_sizes=(8,), seed=0)
    sampler = BlockSampler(env, pi, num_envs=4, steps_per_env=6, num_blocks=2, seed=7,
                           env_seed=5, update_normalizer=False)
    batch = sampler.sample()
    assert type(sampler.workers[0].policy).__name__ == "MultiInputPolicy"
    sampler.close()
    pieces = []
    for k, child in enumerate(np.random.SeedSequence(7).spawn(2)):
        venv = make_vector_env(env, 2, seed=5 + 2 * k)
        copy = Policy.from_state_dict(pi.state_dict(), observation_space=env.observation_space,
                                      action_space=env.action_space)
        pieces.append(SinglePathSampler(venv, copy, 6, seed=child,
                                        update_normalizer=False).sample())
        venv.close()
    joined = join_blocks(pieces)
    for key in ("pos", "key"):
        assert batch.observations[key].shape[:2] == (6, 4)
        np.testing.assert_array_equal(batch.observations[key], joined.observations[key])
        np.testing.assert_array_equal(batch.next_observations[key],
                                      joined.next_observations[key])
    np.testing.assert_array_equal(batch.actions, joined.actions)


class RestorableDictTask(DictTask):
    """DictTask with the get_state / set_state protocol vine sampling needs."""

    def get_state(self):
        return {"t": self.t, "key": self.key, "pos": self.pos.copy()}

    def set_state(self, state):
        self.t, self.key, self.pos = state["t"], state["key"], state["pos"].copy()


def test_vine_branches_from_structured_states():
    """The vine procedure on a Dict task: the rollout states are stored leaf by leaf, each
    repeated for its K actions, and the Q estimates of the right action exceed the others'
    (reward 1 now, the same future in distribution, common random numbers)."""
    env = RestorableDictTask()
    pi = make_policy(env.observation_space, env.action_space, hidden_sizes=(8,), seed=0)
    vine = VineSampler(env, pi, num_trunk_steps=16, num_rollout_states=4,
                       actions_per_state="all", rollout_length=3, gamma=0.5, seed=0)
    vb = vine.sample()
    vine.close()
    assert vb.observations["key"].shape == (12,) and vb.observations["pos"].shape == (12, 2)
    right = vb.actions == vb.observations["key"]
    q = vb.q_values.reshape(4, 3)
    assert np.all(q[right.reshape(4, 3)] > q[~right.reshape(4, 3)].reshape(4, 2).max(axis=1))


@pytest.mark.parametrize("policy, action_space, match", [
    (MultiCategoricalMLP(2, [3, 3], hidden_sizes=(4,), seed=0), spaces.MultiDiscrete([3, 2]),
     r"has nvec=\(3, 3\) but the action space is MultiDiscrete"),
    (BernoulliMLP(2, 2, hidden_sizes=(4,), seed=0), spaces.MultiDiscrete([3, 2]),
     r"samples MultiBinary \(Bernoulli\) actions but the action space is MultiDiscrete"),
    (MultiCategoricalMLP(2, [3, 2], hidden_sizes=(4,), seed=0), spaces.Discrete(2),
     r"samples MultiDiscrete \(nvec=\(3, 2\)\) actions but the action space is Discrete"),
])
def test_a_policy_that_does_not_fit_the_new_actions_is_refused(policy, action_space, match):
    """The samplers' policy-fits-env check covers the MultiDiscrete and MultiBinary heads."""
    venv = make_vector_env(lambda: _Fixed(spaces.Box(-1.0, 1.0, (2,), np.float32),
                                          action_space), 1)
    with pytest.raises(ValueError, match=match):
        SinglePathSampler(venv, policy, 4, seed=0)
    venv.close()


def test_a_multi_input_policy_for_other_leaves_is_refused():
    """A MultiInputPolicy built for other spaces does not fit: the message lists both leaves."""
    pi = make_policy(TupleTask.observation_space, TupleTask.action_space, hidden_sizes=(4,),
                     seed=0)
    venv = make_vector_env(DictTask, 1)
    with pytest.raises(ValueError, match=r"takes the observation leaves \[observation\[0\]"):
        SinglePathSampler(venv, pi, 4, seed=0)
    venv.close()


class _Fixed(gym.Env):
    """Zero observations of a given space."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, self.observation_space.dtype), {}

    def step(self, action):
        return self.reset()[0], 0.0, False, False, {}


def test_a_sampler_state_with_structured_observations_round_trips_and_is_checked():
    """state_dict holds the current structured observations; a resumed sampler continues with
    the same batch, and a saved Discrete leaf out of its range is refused naming the leaf."""
    def build():
        venv = make_vector_env(DictTask, 2, seed=0)
        pi = make_policy(venv.single_observation_space, venv.single_action_space,
                         hidden_sizes=(4,), seed=0)
        return SinglePathSampler(venv, pi, 5, seed=0)

    a, b = build(), build()
    a.sample()
    state = a.state_dict()
    expected = a.sample()
    b.load_state_dict(state)
    got = b.sample()
    for key in ("pos", "key"):
        np.testing.assert_array_equal(got.observations[key], expected.observations[key])
    np.testing.assert_array_equal(got.actions, expected.actions)
    bad = dict(state, observations=dict(state["observations"], key=np.array([0, 7])))
    with pytest.raises(ValueError, match=r"state\['observations'\].*observation\['key'\] holds a "
                                         r"value outside"):
        b.load_state_dict(bad)
    a.close(), b.close()


_IMAGE = spaces.Box(0, 255, (8, 8, 3), np.uint8)


@pytest.mark.parametrize("observation_space", [
    spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(4), _IMAGE,
    spaces.Box(0.0, 1.0, (8, 8, 3), np.float32), spaces.Box(0, 1, (10, 10, 4), np.bool_),
    spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "key": spaces.Discrete(3)}),
    spaces.Tuple((spaces.MultiBinary(2), spaces.MultiDiscrete([2, 3]))),
    spaces.Dict({"image": _IMAGE, "inner": spaces.Dict({"d": spaces.Discrete(2)})}),
    spaces.Box(-1.0, 1.0, (2, 2)), spaces.Box(0, 255, (8, 8, 3), np.int32),
    spaces.MultiBinary(3), spaces.Dict({"image": _IMAGE, "mission": spaces.Text(5)}),
    spaces.Tuple((_IMAGE, _IMAGE)),
])
@pytest.mark.parametrize("action_space", [
    spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,)), spaces.MultiDiscrete([3, 2]),
    spaces.MultiBinary(2), spaces.MultiDiscrete([2, 2], start=[1, 0]), spaces.Tuple(
        (spaces.Discrete(2),)),
])
def test_check_spaces_accepts_exactly_what_make_policy_builds(observation_space, action_space):
    """Over vectors, states, images, Dict / Tuple observations and every action space:
    check_spaces (the samplers' and the runner's check) accepts a pair exactly when
    make_policy builds a policy for it, and a policy it builds fits the samplers' check."""
    from rl.envs import check_spaces
    from rl.sampling.checks import check_policy_fits

    try:
        check_spaces(observation_space, action_space)
        accepted = True
    except ValueError:
        accepted = False
    try:
        pi = make_policy(observation_space, action_space, hidden_sizes=(2,), seed=0,
                         conv_hidden_sizes=(2,))
    except ValueError:
        pi = None
    assert accepted == (pi is not None)
    if pi is not None:
        check_policy_fits(pi, observation_space, action_space)


def test_linear_baseline_on_a_dict_batch_is_the_one_on_its_encoding():
    """make_baseline('linear') on a Dict space fits the ridge regression on the flat
    encoding (the same coefficients as on the encoded rows); on images it is refused."""
    batch, layout = _structured_batch(DictTask)
    obs, t = batch.flat("observations"), batch.flat("timesteps")
    y = np.arange(t.size, dtype=float)
    structured = make_baseline("linear", DictTask.observation_space, seed=0)
    plain = make_baseline("linear", spaces.Box(-np.inf, np.inf, (layout.flat_dim,)), seed=0)
    structured.fit(obs, y, t)
    plain.fit(layout.encode(obs), y, t)
    np.testing.assert_array_equal(structured.coeffs, plain.coeffs)
    with pytest.raises(ValueError, match=r"observation\['image'\] is an image: the linear "
                                         r"baseline has no features for images"):
        make_baseline("linear", DictImageTask.observation_space, seed=0)
