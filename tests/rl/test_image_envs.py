"""The ready-made image and grid environments train through the runner: a smoke test of
each, skipped only where its optional package (the atari, minatar or minigrid extra) is
absent. The MiniGrid one also checks that the mission text is dropped."""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pytest
from gymnasium import spaces

from rl.image_envs import drop_mission, make_atari_env, make_minatar_env, make_minigrid_env
from rl.train import ResumeWarning, train

SMOKE = {"num_envs": 1, "steps_per_env": 32, "eval_episodes": 0, "checkpoint_every": 1,
         "value_iterations": 1}


def _needs(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"optional package(s) {missing} absent")


@_needs("minigrid")
def test_minigrid_without_its_mission_trains(tmp_path):
    """MiniGrid's Dict(direction, image, mission) loses the mission; one TRPO iteration runs
    on Dict(direction: Discrete(4), image: 7 x 7 x 3 uint8) with a MultiInputPolicy."""
    env = make_minigrid_env("MiniGrid-Empty-5x5-v0")
    assert set(env.observation_space.spaces) == {"direction", "image"}
    env.close()
    with pytest.warns(ResumeWarning, match="cannot be resumed bit for bit"):  # enum attributes
        result = train("trpo", functools.partial(make_minigrid_env, "MiniGrid-Empty-5x5-v0"),
                       steps=32, seed=0, out=tmp_path / "run",
                       config=dict(SMOKE, cg_iterations=2), progress=False, plot=False)
    assert result.status == "completed" and type(result.policy).__name__ == "MultiInputPolicy"


@_needs("minatar")
def test_minatar_breakout_trains(tmp_path):
    """MinAtar Breakout: 10 x 10 x 4 bool frames with the MinAtar torso."""
    with pytest.warns(ResumeWarning, match="cannot be resumed bit for bit"):  # a game object
        result = train("ppo", functools.partial(make_minatar_env, "breakout"), steps=32,
                       seed=0, out=tmp_path / "run", config=dict(SMOKE, epochs=1),
                       progress=False, plot=False)
    assert result.status == "completed"
    assert result.policy.net.conv_layers == ((16, 3, 1),)


@_needs("ale_py", "cv2")
def test_atari_preset_gives_stacked_84_pixel_frames():
    """The Atari preset: (4, 84, 84) uint8 frames, read as channels first by the policy."""
    from rl.policies import make_policy

    env = make_atari_env("ALE/Breakout-v5")
    assert env.observation_space == spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs, _ = env.reset(seed=0)
    pi = make_policy(env.observation_space, env.action_space, seed=0)
    assert pi.net.layout == "CHW" and pi.act(obs[None], np.random.default_rng(0)).shape == (1,)
    env.close()


def test_drop_mission_refuses_an_env_without_one():
    """drop_mission on observations without a mission key is a one-line ValueError."""
    import gymnasium

    class NoMission(gymnasium.Env):
        observation_space = spaces.Dict({"image": spaces.Box(0, 255, (3, 3, 3), np.uint8)})
        action_space = spaces.Discrete(2)

    with pytest.raises(ValueError, match="a Dict with a 'mission' key"):
        drop_mission(NoMission())
