"""Training end to end on the spaces users bring: Dict and Tuple observations, images,
MultiDiscrete and MultiBinary actions. Each small task of ``space_tasks`` trains through
``rl.train`` with TRPO and PPO, runs resume bit for bit, a policy learns where that is
cheap to show, and what no encoder handles is refused with one line naming the leaf.
"""

from __future__ import annotations

import csv
import functools
import math

import numpy as np
import pytest
from gymnasium import spaces

import rl
from rl.train import CheckpointError, ConfigError, evaluate_policy, train
from tests.rl.space_tasks import LENGTH, RANDOM_RETURN, TASKS, DictTask, ImageTask

SMALL = {"num_envs": 2, "steps_per_env": 64, "eval_episodes": 2, "checkpoint_every": 1,
         "hidden_sizes": (16,), "value_iterations": 3}

POLICY_CLASS = {"dict": "MultiInputPolicy", "tuple": "MultiInputPolicy",
                "image": "CategoricalCNN", "dict-image": "MultiInputPolicy",
                "multidiscrete": "MultiCategoricalMLP", "multibinary": "BernoulliMLP"}


def _config(algo, **extra):
    return dict(SMALL, **({"epochs": 2} if algo == "ppo" else {}), **extra)


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items() if "time" not in k and v not in ("", None)
                 and not k.endswith("/status")} for row in csv.DictReader(fh)]


@pytest.mark.parametrize("algo", ["trpo", "ppo"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_space_trains_through_the_runner(tmp_path, task, algo):
    """Two iterations on every task with TRPO and PPO: the run completes, builds the policy
    make_policy picks for the spaces, logs finite metrics and evaluates."""
    result = train(algo, TASKS[task], steps=256, seed=0, out=tmp_path / "run",
                   config=_config(algo), progress=False, plot=False)
    assert result.status == "completed"
    assert type(result.policy).__name__ == POLICY_CLASS[task]
    assert len(result.history) == 2
    for row in result.history:
        assert math.isfinite(row["episode/return_mean"]) and math.isfinite(row["policy/entropy"])
    assert 0.0 <= result.evaluation["eval/return_mean"] <= LENGTH


@pytest.mark.parametrize("task, extra", [
    ("dict", {"obs_normalization": True}),
    ("image", {}),
    ("dict-image", {"obs_normalization": True, "value_optimizer": "adam"}),
    ("multidiscrete", {}),
])
def test_stop_and_resume_is_bit_identical(tmp_path, task, extra):
    """Four iterations straight, or two then resume to four: the same metrics and the same
    parameters, to the last bit (the sampler's structured observations, the normaliser
    of the Box leaves and the value network are all in the checkpoint)."""
    env = TASKS[task]
    config = _config("trpo", **extra)
    full = train("trpo", env, steps=512, seed=4, out=tmp_path / "full", config=config,
                 progress=False, plot=False)
    train("trpo", env, steps=256, seed=4, out=tmp_path / "part", config=config,
          progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", env=env, steps=512, progress=False, plot=False)
    assert len(resumed.history) == len(full.history) == 4
    assert _rows(tmp_path / "part") == _rows(tmp_path / "full")
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)
    np.testing.assert_array_equal(resumed.baseline.params, full.baseline.params)


def test_trpo_learns_the_dict_task(tmp_path):
    """On the Dict task (reward 1 when the action names the Discrete leaf) TRPO's stochastic
    policy beats the uniform policy's known return LENGTH / 3 by more than four standard
    errors of its own evaluation (50 episodes, sampled actions)."""
    result = train("trpo", DictTask, steps=2048, seed=0, out=tmp_path / "run",
                   config=dict(SMALL, eval_episodes=0), progress=False, plot=False)
    ev = evaluate_policy(result.policy, DictTask, episodes=50, seed=123, deterministic=False)
    standard_error = ev["eval/return_std"] / math.sqrt(ev["eval/episodes"])
    assert ev["eval/return_mean"] - RANDOM_RETURN["dict"] > 4.0 * max(standard_error, 1e-12)


# -------------------------------------------------------------------------------- errors
class _Spaces(DictTask):
    """A DictTask whose observation space is given (the observations are not produced)."""

    def __init__(self, observation_space):
        self.observation_space = observation_space


@pytest.mark.parametrize("observation_space, match", [
    (spaces.Dict({"image": spaces.Box(0, 255, (8, 8, 3), np.uint8), "mission": spaces.Text(12)}),
     r"observation\['mission'\]: Text spaces have no fixed-size encoding; drop it with "
     r"gymnasium.wrappers.FilterObservation"),
    (spaces.Dict({"a": spaces.Dict({"b": spaces.Dict({"c": spaces.Discrete(2)})})}),
     r"observation\['a'\]\['b'\]: Dict/Tuple spaces nested deeper than 2 levels"),
    (spaces.Box(0, 255, (8, 8, 3), np.int32),
     r"observation: images must be uint8, bool or float \(got int32\)"),
    (spaces.Box(0, 255, (4, 8, 8, 3), np.uint8),
     r"observation_space Box\(0, 255, \(4, 8, 8, 3\), uint8\): Box observations must be 1-D "
     r"\(a vector\) or rank 3 \(an image"),
])
def test_unsupported_observations_are_one_line_config_errors(tmp_path, observation_space, match):
    """A Text leaf, nesting deeper than the layout takes, an integer image and frames with an
    extra axis are refused before anything is built: a ConfigError on one line naming the
    leaf's path and the fix."""
    with pytest.raises(ConfigError, match=match) as info:
        train("trpo", functools.partial(_Spaces, observation_space), steps=128,
              out=tmp_path / "run", config=SMALL, progress=False, plot=False)
    assert "\n" not in str(info.value)


class _WiderDictTask(DictTask):
    """DictTask with a three-dimensional ``pos`` leaf."""

    observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (3,), np.float32),
                                     "key": spaces.Discrete(3)})

    def _draw(self):
        super()._draw()
        self.pos = np.zeros(3, np.float32)


def test_resume_with_other_spaces_names_the_leaf(tmp_path):
    """Resuming a run on an environment whose spaces changed is one line naming the leaf
    that differs (observation['pos']) and what to do."""
    train("trpo", DictTask, steps=128, seed=0, out=tmp_path / "run", config=SMALL,
          progress=False, plot=False)
    with pytest.raises(CheckpointError, match=r"observation\['pos'\] is a box of shape \(2,\) "
                                              r"and dtype float32 in the checkpoint but a box of "
                                              r"shape \(3,\)") as info:
        train(resume=tmp_path / "run", env=_WiderDictTask, steps=256, progress=False,
              plot=False)
    assert "\n" not in str(info.value) and "trained on" in str(info.value)


def test_the_image_batch_stays_uint8(tmp_path):
    """An image run stores its frames as uint8 in the batch (one byte a pixel)."""
    from rl.envs import make_vector_env
    from rl.policies import make_policy
    from rl.sampling import SinglePathSampler

    venv = make_vector_env(ImageTask, 2, seed=0)
    pi = make_policy(venv.single_observation_space, venv.single_action_space, seed=0)
    batch = SinglePathSampler(venv, pi, 5, seed=0).sample()
    assert batch.observations.dtype == np.uint8 and batch.observations.shape == (5, 2, 8, 8, 3)
    assert batch.next_observations.dtype == np.uint8
    venv.close()


def test_rl_train_accepts_the_new_spaces_through_make_policy():
    """check_spaces (the runner's and make_vector_env's check) accepts exactly the pairs of
    these tasks that make_policy builds a policy for."""
    for env in TASKS.values():
        rl.check_spaces(env.observation_space, env.action_space)
        rl.make_policy(env.observation_space, env.action_space, hidden_sizes=(2,), seed=0)


def test_the_runner_builds_a_linear_baseline_on_a_dict_and_refuses_one_on_images(tmp_path):
    """baseline=linear trains on a Dict task (features of the flat encoding) and is a
    one-line ConfigError on images, which it has no features for."""
    result = train("trpo", DictTask, steps=256, seed=0, out=tmp_path / "dict",
                   config=dict(SMALL, baseline="linear"), progress=False, plot=False)
    assert result.status == "completed" and result.baseline.coeffs.shape == (2 * 5 + 4,)
    with pytest.raises(ConfigError, match=r"^baseline='linear': observation is an image"):
        train("trpo", ImageTask, steps=256, seed=0, out=tmp_path / "image",
              config=dict(SMALL, baseline="linear"), progress=False, plot=False)
