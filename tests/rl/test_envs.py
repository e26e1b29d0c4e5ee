"""Tests of rl.envs: vector envs with same-step autoreset, supported spaces, state save/restore.

Save/restore is what the vine procedure (TRPO paper, Sec. 5.2) stands on: after
``restore_state(env, save_state(env))`` the same actions must give the same transitions,
bit for bit, including time limits and the environment's own random numbers.
"""

from __future__ import annotations

import copy

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import RecordEpisodeStatistics, TimeLimit
from hypothesis import given
from hypothesis import strategies as st

from rl.envs import (
    NonFiniteEnvironmentError,
    SameStepSyncVectorEnv,
    VineUnsupportedError,
    check_spaces,
    make_vector_env,
    restore_state,
    save_state,
    supports_state_restore,
)
from rl.mdp import TabularMDP, random_mdp
from tests.strategies import random_mdps

try:
    import mujoco  # noqa: F401

    HAVE_MUJOCO = True
except ImportError:  # pragma: no cover - depends on the installation
    HAVE_MUJOCO = False

needs_mujoco = pytest.mark.skipif(
    not HAVE_MUJOCO, reason="mujoco is not installed (pip install 'trpokit[mujoco]')"
)


def _deterministic_chain(horizon=3):
    """0 -> 1 -> 2 -> ... under any action, reward = state; no terminal states."""
    S = 6
    P = np.zeros((S, 2, S))
    for s in range(S):
        P[s, :, min(s + 1, S - 1)] = 1.0
    R = np.repeat(np.arange(S, dtype=float)[:, None], 2, axis=1)
    return TabularMDP(P, R, 0.9, np.eye(S)[0], horizon=horizon)


# --------------------------------------------------------------------------------------
# make_vector_env
# --------------------------------------------------------------------------------------


def test_vector_env_autoresets_on_the_same_step():
    """SAME_STEP autoreset: the step that ends an episode returns the next episode's first
    observation, and the true final observation is in ``info["final_obs"]`` (mask
    ``info["_final_obs"]``); no fake reward-0 transition follows (DESIGN.md, Known traps)."""
    venv = make_vector_env(_deterministic_chain(horizon=3), 2, seed=0)
    assert venv.autoreset_mode == AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=0)
    np.testing.assert_array_equal(obs, [0, 0])
    for expected in (1, 2):
        obs, r, term, trunc, info = venv.step(np.array([0, 1]))
        np.testing.assert_array_equal(obs, [expected, expected])
        assert not trunc.any() and "final_obs" not in info
    obs, r, term, trunc, info = venv.step(np.array([0, 0]))
    np.testing.assert_array_equal(trunc, [True, True])
    np.testing.assert_array_equal(term, [False, False])
    np.testing.assert_array_equal(obs, [0, 0])  # already the next episode
    np.testing.assert_array_equal(info["_final_obs"], [True, True])
    assert [int(x) for x in info["final_obs"]] == [3, 3]  # true last state
    np.testing.assert_array_equal(r, [2.0, 2.0])  # reward of the last real step
    obs, r, *_ = venv.step(np.array([0, 0]))
    np.testing.assert_array_equal(obs, [1, 1])
    np.testing.assert_array_equal(r, [0.0, 0.0])  # R(0, a) = 0: a real step from s_0
    venv.close()


def test_vector_env_from_id_callable_and_instance():
    """``env`` may be a registered id, a factory, or an instance; an instance is deep-copied
    once per sub-environment (the sub-envs are distinct objects and the original is never
    stepped)."""
    venv = make_vector_env("CartPole-v1", 3)
    assert venv.num_envs == 3 and venv.single_observation_space.shape == (4,)
    venv.close()

    venv = make_vector_env(lambda n: random_mdp(n, 2, seed=0), 2, env_kwargs={"n": 4})
    assert venv.single_observation_space == spaces.Discrete(4)
    venv.close()

    mdp = random_mdp(3, 2, seed=1)
    venv = make_vector_env(mdp, 2, seed=0)
    a, b = venv.envs
    assert a is not mdp and b is not mdp and a is not b
    np.testing.assert_array_equal(a.P, mdp.P)
    assert mdp._s is None  # the original was never reset or stepped
    venv.close()


def test_vector_env_seed_gives_reproducible_streams():
    """Same seed, same actions => identical observation/reward streams (sync and async
    vectorisation agree); a different seed gives a different stream. The action space is
    seeded too."""

    def stream(seed, vectorization):
        venv = make_vector_env("CartPole-v1", 2, seed=seed, vectorization=vectorization)
        out = [venv.reset(seed=seed)[0]]
        for _ in range(30):
            obs, r, term, trunc, _ = venv.step(np.array([0, 1]))
            out += [obs, r, term, trunc]
        sampled = [venv.action_space.sample() for _ in range(3)]
        venv.close()
        return np.concatenate([np.ravel(x).astype(float) for x in out]), np.array(sampled)

    s0, a0 = stream(0, "sync")
    s0b, a0b = stream(0, "sync")
    s0_async, _ = stream(0, "async")
    s1, _ = stream(1, "sync")
    np.testing.assert_array_equal(s0, s0b)
    np.testing.assert_array_equal(a0, a0b)
    np.testing.assert_array_equal(s0, s0_async)
    assert not np.array_equal(s0, s1)


def test_unknown_id_suggests_close_matches():
    """An unknown id is a ValueError that lists close registered ids and says how to list
    all of them, raised before any environment is built."""
    with pytest.raises(ValueError) as exc:
        make_vector_env("Cartpole-v1")
    msg = str(exc.value)
    assert "'CartPole-v1'" in msg and "pprint_registry" in msg


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"env": "CartPole-v1", "num_envs": 0}, "num_envs"),
        ({"env": "CartPole-v1", "vectorization": "threads"}, "vectorization"),
        ({"env": "CartPole-v1", "seed": -1}, "seed"),
        ({"env": random_mdp(2, 2, seed=0), "env_kwargs": {"x": 1}}, "env_kwargs"),
        ({"env": 3}, "env must be"),
    ],
)
def test_make_vector_env_rejects_bad_arguments(kwargs, needle):
    """Bad arguments are ValueErrors naming the argument."""
    with pytest.raises(ValueError, match=needle):
        make_vector_env(**kwargs)


# --------------------------------------------------------------------------------------
# spaces
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observation_space", "action_space"),
    [
        (spaces.Discrete(5), spaces.Discrete(3)),
        (spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)),
        (spaces.Box(-np.inf, np.inf, (3,), dtype=np.float64), spaces.Box(-1.0, 1.0, (2,))),
        (spaces.Box(-np.inf, np.inf, (1,)), spaces.Box(-np.inf, np.inf, (1,))),
        (spaces.Box(0, 255, (4,), dtype=np.uint8), spaces.Discrete(2)),
        (spaces.Box(-5, 5, (3,), dtype=np.int64), spaces.Box(-1.0, 1.0, (2,))),
        (spaces.Box(0, 1, (3,), dtype=np.bool_), spaces.Discrete(2)),
    ],
)
def test_check_spaces_accepts_discrete_and_float_box(observation_space, action_space):
    """Discrete (from 0) and 1-D Box spaces, finite or infinite bounds, are accepted; Box
    observations may have an integer or bool dtype."""
    check_spaces(observation_space, action_space)


@pytest.mark.parametrize(
    ("observation_space", "action_space", "which"),
    [
        (spaces.MultiBinary(3), spaces.Discrete(2), "observation_space"),
        (spaces.Box(-1.0, 1.0, (2,)), spaces.Box(-3, 3, (2,), dtype=np.int64), "action_space"),
        (spaces.Box(-1.0, 1.0, (2, 2)), spaces.Discrete(2), "observation_space"),
        (spaces.Discrete(3, start=1), spaces.Discrete(2), "observation_space"),
        (spaces.Discrete(3), spaces.MultiDiscrete([2, 2]), "action_space"),
    ],
)
def test_check_spaces_rejects_unsupported_with_a_clear_message(
    observation_space, action_space, which
):
    """Any other space is a ValueError naming the argument, the space, and the supported
    spaces (Discrete, Box)."""
    with pytest.raises(ValueError) as exc:
        check_spaces(observation_space, action_space)
    msg = str(exc.value)
    bad = observation_space if which == "observation_space" else action_space
    assert which in msg and repr(bad) in msg
    assert "Discrete(n)" in msg and "Box" in msg


@pytest.mark.parametrize(
    ("observation_space", "action_space", "match"),
    [
        (spaces.Dict({"image": spaces.Box(0, 255, (7, 7, 3), np.uint8), "mission": spaces.Text(9)}),
         spaces.Discrete(3), r"^observation\['mission'\]: Text spaces .*FilterObservation"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Sequence(spaces.Discrete(2)))),
         spaces.Discrete(2), r"^observation\[1\]: Sequence spaces have no fixed-size encoding"),
        (spaces.Dict({"a": spaces.Dict({"b": spaces.Dict({"c": spaces.Discrete(2)})})}),
         spaces.Discrete(2), r"^observation\['a'\]\['b'\]: Dict/Tuple spaces nested deeper"),
        (spaces.Box(0, 255, (8, 8, 3), np.int32), spaces.Discrete(2),
         r"^observation: images must be uint8, bool or float"),
        (spaces.Box(-1.0, 1.0, (3,)), spaces.MultiDiscrete([2, 3], start=[1, 0]),
         r"^action_space MultiDiscrete.*must start at 0"),
    ],
)
def test_check_spaces_names_the_leaf_of_a_structured_space_it_rejects(
    observation_space, action_space, match
):
    """Dict / Tuple observations, images and MultiDiscrete / MultiBinary actions are read by
    rl.spaces; what no encoder handles is one line naming the leaf's path and the fix."""
    with pytest.raises(ValueError, match=match) as exc:
        check_spaces(observation_space, action_space)
    assert "\n" not in str(exc.value)


class _MultiBinaryEnv(gymnasium.Env):
    observation_space = spaces.MultiBinary(2)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.int8), {}

    def step(self, action):
        return np.zeros(2, dtype=np.int8), 0.0, False, False, {}


def test_make_vector_env_rejects_unsupported_spaces():
    """An environment with unsupported spaces is rejected when the vector env is built."""
    with pytest.raises(ValueError, match="MultiBinary"):
        make_vector_env(_MultiBinaryEnv)


# --------------------------------------------------------------------------------------
# save / restore
# --------------------------------------------------------------------------------------


def _trajectory(env, actions):
    """(obs, reward, terminated, truncated) of each action, resetting (unseeded) at ends."""
    out = []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append((np.asarray(obs).tolist(), float(r), bool(term), bool(trunc)))
        if term or trunc:
            obs, _ = env.reset()
            out.append(("reset", np.asarray(obs).tolist()))
    return out


@given(
    mdp_args=random_mdps(max_states=5, max_actions=3),
    horizon=st.integers(2, 6),
    warmup=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_save_restore_tabular_replays_identically(mdp_args, horizon, warmup, seed):
    """For any TabularMDP: after ``s = save_state(env)``, running actions, ``restore_state(env,
    s)`` and running them again gives identical transitions (states, rewards, truncations
    and the unseeded resets that follow, i.e. the RNG is restored); restoring into a copy
    made the same way gives them too."""
    P, R, gamma, mu0 = mdp_args
    env = TabularMDP(P, R, gamma, mu0, horizon=horizon)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    _trajectory(env, rng.integers(0, env.num_actions, size=warmup))
    state = save_state(env)
    actions = rng.integers(0, env.num_actions, size=12)
    first = _trajectory(env, actions)
    restore_state(env, state)
    assert _trajectory(env, actions) == first
    other = copy.deepcopy(env)
    other.reset(seed=seed + 1)
    restore_state(other, state)
    assert _trajectory(other, actions) == first


def test_save_restore_walks_the_wrapper_chain():
    """Wrapper state is part of the environment state: TimeLimit's elapsed steps and
    RecordEpisodeStatistics' accumulators are restored, so truncation happens at the same
    step and the episode statistics are the same."""
    env = RecordEpisodeStatistics(TimeLimit(_deterministic_chain(horizon=None), 5))
    env.reset(seed=0)
    for _ in range(3):
        env.step(0)
    state = save_state(env)
    first = [env.step(0)[1:4] for _ in range(2)]
    stats = env.get_wrapper_attr("episode_returns")
    restore_state(env, state)
    second = [env.step(0)[1:4] for _ in range(2)]
    assert first == second
    assert first[-1][2] is True  # truncated by the TimeLimit at step 5
    assert np.array_equal(env.get_wrapper_attr("episode_returns"), stats)


def test_restore_into_a_differently_wrapped_env_is_rejected():
    """A state restored into an env with a different wrapper chain is a ValueError."""
    env = TimeLimit(_deterministic_chain(), 5)
    env.reset(seed=0)
    state = save_state(env)
    with pytest.raises(ValueError, match="differently built"):
        restore_state(_deterministic_chain(), state)
    with pytest.raises(ValueError, match="EnvState"):
        restore_state(env, {"state": 0})


@needs_mujoco
@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Hopper-v5"])
def test_save_restore_mujoco_replays_bitwise(env_id):
    """MuJoCo: after a restore the same actions give bitwise-identical observations,
    rewards and flags, the TimeLimit truncates at the same step, and the next unseeded
    reset draws the same initial state (np_random restored)."""
    env = gymnasium.make(env_id, max_episode_steps=25)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    low, high = env.action_space.low, env.action_space.high
    for _ in range(15):
        env.step(rng.uniform(low, high).astype(np.float32))
    state = save_state(env)
    actions = rng.uniform(low, high, size=(40, *low.shape)).astype(np.float32)

    def run():
        out = []
        for a in actions:
            obs, r, term, trunc, _ = env.step(a)
            out.append((obs.copy(), r, term, trunc))
            if term or trunc:
                out.append(("reset", env.reset()[0].copy()))
                break
        return out

    first = run()
    assert first[-1][0] == "reset"  # an episode end (time limit or fall) was replayed
    restore_state(env, state)
    second = run()
    assert len(first) == len(second)
    for x, y in zip(first, second, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    env.close()


def test_save_state_unsupported_env_raises_vine_error():
    """Envs whose state cannot be restored raise VineUnsupportedError (a ValueError) saying
    that vine sampling needs state restore and which envs support it."""
    env = gymnasium.make("CartPole-v1")
    assert not supports_state_restore(env)
    with pytest.raises(VineUnsupportedError) as exc:
        save_state(env)
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert "vine" in msg and "TabularMDP" in msg and "MuJoCo" in msg
    with pytest.raises(VineUnsupportedError):
        restore_state(env, _saved_chain())
    env.close()


def _saved_chain():
    env = _deterministic_chain()
    env.reset(seed=0)
    return save_state(env)


def test_error_types():
    """NonFiniteEnvironmentError is a RuntimeError (trouble found while sampling);
    VineUnsupportedError is a ValueError (an unsuitable argument)."""
    assert issubclass(NonFiniteEnvironmentError, RuntimeError)
    assert issubclass(VineUnsupportedError, ValueError)


@pytest.mark.parametrize("env_id, num_envs", [("CartPole-v1", 3), ("Pendulum-v1", 2),
                                              ("MountainCarContinuous-v0", 1)])
def test_same_step_sync_vector_env_steps_exactly_as_gymnasiums(env_id, num_envs):
    """SameStepSyncVectorEnv is a faster step loop, not a different environment: from the
    same seed and actions it returns what gymnasium's SyncVectorEnv (SAME_STEP) returns —
    observations, rewards, terminations, truncations, final observations and their masks —
    bit for bit, over episode ends and autoresets."""
    from gymnasium.vector import SyncVectorEnv

    fns = [lambda: gymnasium.make(env_id, max_episode_steps=15)] * num_envs
    ours = SameStepSyncVectorEnv(fns)
    ref = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    assert ours.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    o1, _ = ours.reset(seed=3)
    o2, _ = ref.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    ref.action_space.seed(5)
    ends = 0
    for _ in range(40):
        a = ref.action_space.sample()
        r1, r2 = ours.step(a), ref.step(a)
        for x, y in zip(r1[:4], r2[:4], strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        i1, i2 = r1[4], r2[4]
        assert ("final_obs" in i1) == ("final_obs" in i2)
        if "final_obs" in i2:
            ends += 1
            np.testing.assert_array_equal(i1["_final_obs"], i2["_final_obs"])
            for k in np.flatnonzero(i2["_final_obs"]):
                np.testing.assert_array_equal(i1["final_obs"][k], i2["final_obs"][k])
    assert ends > 0  # the comparison covered autoresets
    ours.close()
    ref.close()


def test_make_vector_env_sync_is_the_same_step_sync_vector_env():
    venv = make_vector_env("CartPole-v1", 2, seed=0)
    assert isinstance(venv, SameStepSyncVectorEnv)
    venv.close()


# --------------------------------------------------------------------------------------
# copies of an instance, environments that break the Gymnasium API, vector envs passed
# where a single env is needed
# --------------------------------------------------------------------------------------


def test_copies_of_an_instance_get_independent_random_streams():
    """Each sub-environment built from an instance starts with its own unseeded RNG (an
    unseeded reset draws a different stream per copy), while reset(seed=s) gives
    sub-environment i the stream of seed s + i, as for environments built from an id."""
    mdp = random_mdp(6, 2, seed=0)
    mdp.reset(seed=0)  # the instance's RNG has been used: the copies must not inherit it
    venv = make_vector_env(mdp, 4)
    venv.reset()
    states = [repr(env.unwrapped.np_random.bit_generator.state) for env in venv.envs]
    assert len(set(states)) == 4

    def run(env, seed):
        obs, _ = env.reset(seed=seed)
        return [obs] + [env.step(0)[0] for _ in range(12)]

    obs, _ = venv.reset(seed=7)
    rows = [obs] + [venv.step(np.zeros(4, dtype=np.int64))[0] for _ in range(12)]
    for i in range(4):
        assert [int(r[i]) for r in rows] == run(copy.deepcopy(mdp), 7 + i)
    venv.close()


class _NoSeedReset(gymnasium.Env):
    """reset() without the seed / options keywords (the old Gym API)."""

    observation_space = spaces.Box(-1.0, 1.0, (2,))
    action_space = spaces.Discrete(2)

    def reset(self):
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


class _FourTupleStep(_NoSeedReset):
    """step() -> (obs, reward, done, info), the old Gym API."""

    def reset(self, *, seed=None, options=None):
        gymnasium.Env.reset(self, seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, {}


class _WrongShape(_FourTupleStep):
    """Observations of shape (3,) for an observation space of shape (2,), from reset
    (``where="reset"``) or step."""

    where = "step"

    def reset(self, *, seed=None, options=None):
        gymnasium.Env.reset(self, seed=seed)
        return np.zeros(3 if self.where == "reset" else 2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(3, dtype=np.float32), 0.0, False, False, {}


class _WrongShapeOnReset(_WrongShape):
    where = "reset"


class _BroadcastingShape(_WrongShape):
    """Step observations of shape (1,), which numpy would broadcast into a row of 2."""

    def step(self, action):
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}


def test_environments_outside_the_gymnasium_api_get_clear_errors():
    """A reset without ``seed``, a 4-tuple step and observations of the wrong shape are
    ValueErrors that name the Gymnasium API requirement, not errors deep inside."""
    with pytest.raises(ValueError, match=r"reset\(\) does not accept.*Gymnasium API"):
        make_vector_env(_NoSeedReset, 2, seed=0)
    venv = make_vector_env(_NoSeedReset, 2)
    with pytest.raises(ValueError, match=r"reset\(\) does not accept.*Gymnasium API"):
        venv.reset()
    venv = make_vector_env(_FourTupleStep, 2, seed=0)
    with pytest.raises(ValueError, match=r"step\(\) returned a 4-tuple.*Gymnasium API"):
        venv.step(np.zeros(2, dtype=np.int64))
    venv = make_vector_env(_WrongShape, 2, seed=0)
    with pytest.raises(ValueError, match=r"step: sub-environment 0 .* shape \(3,\).*\(2,\)"):
        venv.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"reset: sub-environment 0 .* shape \(3,\).*\(2,\)"):
        make_vector_env(_WrongShapeOnReset, 2, seed=0)
    venv = make_vector_env(_BroadcastingShape, 2, seed=0)
    with pytest.raises(ValueError, match=r"step: sub-environment 0 .* shape \(1,\).*\(2,\)"):
        venv.step(np.zeros(2, dtype=np.int64))


def test_save_state_of_a_vector_env_says_to_pass_a_sub_environment():
    """save_state / restore_state given a vector env say that a single environment is
    needed and how to get one (venv.envs[i]), instead of blaming the environment."""
    venv = make_vector_env(random_mdp(3, 2, seed=0), 2, seed=0)
    for call in (lambda: save_state(venv), lambda: restore_state(venv, _saved_chain())):
        with pytest.raises(ValueError, match=r"single environment.*vector.*venv\.envs\[i\]"):
            call()
    save_state(venv.envs[0])  # what the message suggests works
    venv.close()


@pytest.mark.parametrize(
    ("observation_space", "action_space"),
    [
        (spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,))),
        (spaces.Box(0, 5, (3,), dtype=np.int64), spaces.Discrete(2)),
        (spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-1, 1, (2,), dtype=np.int64)),
        (type("SubBox", (spaces.Box,), {})(-1.0, 1.0, (3,)), spaces.Discrete(2)),
        (spaces.Box(-1.0, 1.0, (3,)), type("SubDiscrete", (spaces.Discrete,), {})(2)),
        (spaces.Discrete(4), spaces.Discrete(2)),
        (spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-1.0, 1.0, (2,))),
    ],
)
def test_check_spaces_and_make_policy_agree(observation_space, action_space):
    """check_spaces accepts a pair exactly when make_policy builds a policy for it."""
    from rl.policies import make_policy

    try:
        check_spaces(observation_space, action_space)
        accepted = True
    except ValueError:
        accepted = False
    try:
        make_policy(observation_space, action_space, hidden_sizes=(2,), seed=0)
        built = True
    except ValueError:
        built = False
    assert accepted == built


def test_state_kind_of_a_classic_env_does_not_import_mujoco():
    """Deciding whether an environment is a MuJoCo one must not import ``mujoco``: a
    CartPole run checkpoints every iteration, and the import (about 0.3 s) would land in
    its first iteration. Checked in a fresh interpreter, where nothing imported it yet."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium, rl.envs as e\n"
        "env = gymnasium.make('CartPole-v1')\n"
        "assert e.supports_state_restore(env) is False\n"
        "print('mujoco' in sys.modules, 'gymnasium.envs.mujoco.mujoco_env' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


class _IntegerObservations(gymnasium.ObservationWrapper):
    """CartPole with its observations scaled by 100 and rounded to ``dtype``; every
    observation it returns is appended to ``seen``."""

    def __init__(self, env, dtype, seen):
        super().__init__(env)
        info = np.iinfo(dtype)
        self.observation_space = spaces.Box(info.min, info.max, (4,), dtype=dtype)
        self._dtype, self.seen = dtype, seen

    def observation(self, obs):
        info = np.iinfo(self._dtype)
        out = np.clip(np.round(obs * 100.0), info.min, info.max).astype(self._dtype)
        self.seen.append(out.copy())
        return out


@pytest.mark.parametrize("dtype", [np.int32, np.uint8])
def test_integer_box_observations_are_sampled_as_float64(dtype):
    """An env with integer Box observations gets an MLP policy; the sampler stores the
    observations the env returned, in order, as the same numbers in float64; the policy
    acts on raw integer observations."""
    from rl.policies import make_policy
    from rl.sampling import SinglePathSampler

    seen = []
    venv = make_vector_env(lambda: _IntegerObservations(gymnasium.make("CartPole-v1"), dtype,
                                                        seen), 1, seed=3)
    policy = make_policy(venv.single_observation_space, venv.single_action_space, seed=0)
    batch = SinglePathSampler(venv, policy, steps_per_env=30, seed=1).sample()
    assert batch.observations.dtype == np.float64
    assert all(o.dtype == dtype for o in seen)
    stored = [batch.observations[t, 0] for t in range(30)]
    k = 0  # each stored observation is the next matching one the env returned
    for row in stored:
        while k < len(seen) and not np.array_equal(seen[k].astype(np.float64), row):
            k += 1
        assert k < len(seen), row
        k += 1
    assert np.abs(np.array(stored)).sum() > 0
    action = policy.act(seen[-1][None], np.random.default_rng(0))
    assert action.shape == (1,) and action[0] in (0, 1)


# ------------------------------------------------------------------ native vector envs
def test_native_cartpole_gives_the_per_env_transitions_and_episode_ends():
    """CartPoleVectorEnv (NEXT_STEP autoreset) behind SameStepNativeVectorEnv against the
    per-env path (SameStepSyncVectorEnv): from the same states, with the same actions, the
    same observations, rewards, terminations, truncations and true final observations, bit
    for bit; every reset state of the native env is forced into the per-env one (their
    RNGs differ). A 30-step time limit makes truncations happen too."""
    from rl.envs import SameStepNativeVectorEnv

    n = 3
    native = SameStepNativeVectorEnv("CartPole-v1", n)
    native.env.unwrapped.max_episode_steps = 30
    per_env = SameStepSyncVectorEnv(
        [lambda: gymnasium.make("CartPole-v1", max_episode_steps=30)] * n)
    per_env.reset(seed=1)
    native.reset(seed=2)
    base = native.env.unwrapped  # base.state: (4, n), the native env's float64 states
    for i, env in enumerate(per_env.envs):
        env.unwrapped.state = base.state[:, i].copy()
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(400):
        a = rng.integers(0, 2, n)
        o1, r1, term1, trunc1, info1 = per_env.step(a)
        o2, r2, term2, trunc2, info2 = native.step(a)
        np.testing.assert_array_equal(term1, term2)
        np.testing.assert_array_equal(trunc1, trunc2)
        np.testing.assert_array_equal(r1, r2)
        done = term1 | trunc1
        ends["terminated"] += int(term1.sum())
        ends["truncated"] += int(trunc1.sum())
        for i in np.flatnonzero(done):
            np.testing.assert_array_equal(info1["final_obs"][i], info2["final_obs"][i])
            per_env.envs[i].unwrapped.state = base.state[:, i].copy()  # its reset state
            o1[i] = o2[i]
        np.testing.assert_array_equal(o1, o2)
    assert ends["terminated"] > 0 and ends["truncated"] > 0
    native.close()
    per_env.close()


def test_a_sampler_on_the_native_env_never_learns_from_a_reset_step():
    """NEXT_STEP autoreset's reset step (action ignored, reward 0) never reaches the batch:
    CartPole pays 1 on every real step, every episode starts at timestep 0 right after the
    previous one ended, and the final observation is not the next first observation."""
    from rl.policies import CategoricalMLP
    from rl.sampling import SinglePathSampler

    venv = make_vector_env("CartPole-v1", 4, vectorization="native")
    sampler = SinglePathSampler(venv, CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0), 200,
                                seed=0)
    batch = sampler.sample()
    assert np.all(batch.rewards == 1.0)
    t, i = np.nonzero(batch.dones[:-1])
    assert t.size > 0
    assert np.all(batch.timesteps[t + 1, i] == 0)
    assert np.all(batch.timesteps[1:][~batch.dones[:-1]] == batch.timesteps[:-1][
        ~batch.dones[:-1]] + 1)
    assert not np.any(np.all(batch.next_observations[t, i] == batch.observations[t + 1, i],
                             axis=-1))
    assert sampler.resume_problem is not None and "native" in sampler.resume_problem
    sampler.close()


def test_native_vectorization_errors_name_the_fix():
    with pytest.raises(ValueError, match="no vector entry point.*vectorization='sync'"):
        make_vector_env("Pendulum-v1", 2, vectorization="native")
    venv = make_vector_env("Pendulum-v1", 2, vectorization="auto")
    assert isinstance(venv, SameStepSyncVectorEnv)
    venv.close()
