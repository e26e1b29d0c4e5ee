"""Small tasks on the spaces beyond vectors, for the end-to-end tests: each is a contextual
bandit repeated for ``LENGTH`` steps (then truncated), whose reward says whether the action
answers the observation, so a policy that reads its observation correctly earns ``LENGTH``
per episode and a uniformly random one a known fraction of it.

Every task keeps its state in plain attributes (numbers and arrays), so run checkpoints hold
it exactly (:func:`rl.envs.snapshot_env`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

LENGTH = 8  # steps per episode


class _Bandit(gym.Env):
    """Draw a context, reward the answer, ``LENGTH`` steps per episode."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self._draw()
        return self._obs(), {}

    def step(self, action):
        reward = float(self._reward(action))
        self.t += 1
        self._draw()
        return self._obs(), reward, False, self.t >= LENGTH, {}


class DictTask(_Bandit):
    """``Dict(pos: Box(2), key: Discrete(3))``, ``Discrete(3)`` actions: reward 1 for
    ``action == key`` (``pos`` is noise). Random policy: 1/3 per step."""

    observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
                                     "key": spaces.Discrete(3)})
    action_space = spaces.Discrete(3)

    def _draw(self):
        self.key = int(self.np_random.integers(3))
        self.pos = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)

    def _obs(self):
        return {"pos": self.pos.copy(), "key": self.key}

    def _reward(self, action):
        return int(action) == self.key


class TupleTask(_Bandit):
    """``Tuple(Box(1), MultiBinary(2))``, ``Discrete(4)`` actions: reward 1 for
    ``action == 2 b_0 + b_1``. Random policy: 1/4 per step."""

    observation_space = spaces.Tuple((spaces.Box(-1.0, 1.0, (1,), np.float32),
                                      spaces.MultiBinary(2)))
    action_space = spaces.Discrete(4)

    def _draw(self):
        self.bits = self.np_random.integers(0, 2, 2).astype(np.int8)
        self.noise = self.np_random.uniform(-1.0, 1.0, 1).astype(np.float32)

    def _obs(self):
        return (self.noise.copy(), self.bits.copy())

    def _reward(self, action):
        return int(action) == 2 * int(self.bits[0]) + int(self.bits[1])


class ImageTask(_Bandit):
    """An 8 x 8 x 3 ``uint8`` frame with one lit pixel, ``Discrete(2)`` actions: reward 1
    for naming the half (left 0, right 1) it is in. Random policy: 1/2 per step."""

    observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = spaces.Discrete(2)

    def _draw(self):
        self.row, self.col = (int(v) for v in self.np_random.integers(0, 8, 2))

    def _obs(self):
        frame = np.zeros((8, 8, 3), np.uint8)
        frame[self.row, self.col] = 255
        return frame

    def _reward(self, action):
        return int(action) == int(self.col >= 4)


class DictImageTask(ImageTask):
    """``Dict(image: 8 x 8 x 3 uint8, flip: Discrete(2))``, ``MultiBinary(1)`` actions: the
    bit must name the lit pixel's half, inverted when ``flip`` is 1 (both leaves matter)."""

    observation_space = spaces.Dict({"image": spaces.Box(0, 255, (8, 8, 3), np.uint8),
                                     "flip": spaces.Discrete(2)})
    action_space = spaces.MultiBinary(1)

    def _draw(self):
        super()._draw()
        self.flip = int(self.np_random.integers(2))

    def _obs(self):
        return {"image": super()._obs(), "flip": self.flip}

    def _reward(self, action):
        return int(np.asarray(action).reshape(-1)[0]) == int(self.col >= 4) ^ self.flip


class MultiDiscreteTask(_Bandit):
    """``Box(2)`` observations, ``MultiDiscrete([3, 2])`` actions: half a point for each
    sub-action that matches its target, ``a_0 = sector of x_0`` (three equal thirds of
    [-1, 1]) and ``a_1 = [x_1 > 0]``. Random policy: (1/3 + 1/2) / 2 per step."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.MultiDiscrete([3, 2])

    def _draw(self):
        self.x = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)

    def _obs(self):
        return self.x.copy()

    def _reward(self, action):
        a = np.asarray(action).reshape(-1)
        sector = min(int((self.x[0] + 1.0) * 1.5), 2)
        return 0.5 * (int(a[0]) == sector) + 0.5 * (int(a[1]) == int(self.x[1] > 0))


class MultiBinaryTask(_Bandit):
    """``Box(3)`` observations, ``MultiBinary(3)`` actions: a third of a point per bit equal
    to the sign of its coordinate (``b_i = [x_i > 0]``). Random policy: 1/2 per step."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.MultiBinary(3)

    def _draw(self):
        self.x = self.np_random.uniform(-1.0, 1.0, 3).astype(np.float32)

    def _obs(self):
        return self.x.copy()

    def _reward(self, action):
        a = np.asarray(action).reshape(-1)
        return float(np.mean(a.astype(int) == (self.x > 0)))


TASKS = {"dict": DictTask, "tuple": TupleTask, "image": ImageTask,
         "dict-image": DictImageTask, "multidiscrete": MultiDiscreteTask,
         "multibinary": MultiBinaryTask}

#: the expected return per episode of the uniformly random policy, ``LENGTH`` x the chance
RANDOM_RETURN = {"dict": LENGTH / 3, "tuple": LENGTH / 4, "image": LENGTH / 2,
                 "dict-image": LENGTH / 2, "multidiscrete": LENGTH * (1 / 3 + 1 / 2) / 2,
                 "multibinary": LENGTH / 2}
