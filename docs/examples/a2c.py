"""Synchronous advantage actor-critic (A2C; Mnih et al. 2016, "Asynchronous methods for deep
reinforcement learning", in its synchronous form)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer
from rl.algorithms.registry import register_algorithm
from rl.optimizers import Adam
from rl.validation import check_range


@dataclass
class A2CConfig(AlgorithmConfig):
    """A2C settings.

    Attributes
    ----------
    learning_rate : float
        Adam's step size (7e-4, the A2C paper's and sb3's default).
    entropy_coef : float
        Weight c of the entropy bonus (0.01, the A2C paper's Atari setting).
    """

    learning_rate: float = 7e-4
    entropy_coef: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        check_range("learning_rate", self.learning_rate, 0.0, None, low_open=True)
        check_range("entropy_coef", self.entropy_coef, 0.0, None)


@register_algorithm
class A2C(PolicyOptimizer):
    """One Adam step on the surrogate plus an entropy bonus per batch."""

    name = "a2c"
    config_class = A2CConfig
    headline_metrics = {"KL": "a2c/kl", "entropy": "a2c/entropy"}

    def __init__(self, policy, baseline, config=None, *, seed=None):
        super().__init__(policy, baseline, config, seed=seed)
        self.adam = Adam(policy.num_params, learning_rate=self.config.learning_rate)

    def policy_step(self, objective):
        c = self.config.entropy_coef

        def gain(params, idx):  # L + c H as a function of the distribution parameters
            return objective.surrogate_from(params, idx) + c * objective.entropy_from(params, idx)

        value, g = objective.value_and_gradient_of(gain)
        theta = self.adam.step(objective.theta_old, -g)  # Adam descends: ascend the gain
        self.policy.theta = theta
        return {"a2c/gain_before": value,
                "a2c/surrogate_after": float(objective.surrogate(theta)),
                "a2c/entropy": objective.entropy(theta),
                "a2c/kl": float(objective.mean_kl(theta)),
                "a2c/grad_norm": float(np.linalg.norm(g))}

    def state_dict(self):
        return {**super().state_dict(), "adam": self.adam.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.adam.load_state_dict(state["adam"])
