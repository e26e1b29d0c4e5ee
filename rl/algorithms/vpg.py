"""Vanilla policy gradient (REINFORCE with a baseline; Williams, 1992)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer, check_range
from rl.algorithms.registry import register_algorithm
from rl.optimizers import Adam

__all__ = ["VPGConfig", "VPG"]


@dataclass
class VPGConfig(AlgorithmConfig):
    """VPG settings.

    Attributes
    ----------
    learning_rate : float
        Step size (for ``"sgd"`` it multiplies the raw gradient). The default 1e-2 suits
        one Adam step per batch of thousands of samples: it solves CartPole-v1 within the
        runner's 100k steps (eval return 500, seed 0), where Spinning Up's 3e-4 reached
        105 ± 22 over 5 seeds (``benchmarks/results/learning.md``).
    optimizer : str
        ``"adam"`` (Spinning Up) or ``"sgd"`` (plain gradient ascent, the textbook
        :math:`\\theta \\leftarrow \\theta + \\alpha g`).
    """

    learning_rate: float = 1e-2
    optimizer: str = "adam"

    def __post_init__(self):
        super().__post_init__()
        check_range("learning_rate", self.learning_rate, 0.0, None, low_open=True)
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}")


@register_algorithm
class VPG(PolicyOptimizer):
    """REINFORCE with a baseline: one gradient-ascent step on the surrogate per batch.

    At :math:`\\theta_{old}` the surrogate's gradient is the policy gradient estimate
    :math:`\\hat g = \\sum_i w_i \\nabla \\log \\pi(a_i|s_i) \\hat A_i`.

    :meth:`policy_step` returns these diagnostics, every key in every iteration, each a
    plain Python float:

    ``vpg/surrogate_before``, ``vpg/surrogate_after``
        :math:`L(\\theta_{old})` and :math:`L(\\theta_{new})`, the importance-sampled
        surrogate :meth:`PolicyObjective.surrogate
        <rl.algorithms.objective.PolicyObjective.surrogate>`.
    ``vpg/expected_improvement``
        :math:`\\hat g^T (\\theta_{new} - \\theta_{old})`, the linear model's gain for the
        step taken (:math:`\\alpha \\|\\hat g\\|^2` for ``"sgd"``).
    ``vpg/actual_improvement``
        ``surrogate_after - surrogate_before``.
    ``vpg/kl``, ``vpg/grad_norm``
        Mean :math:`D_{KL}(\\pi_{old} \\| \\pi_{new})` and :math:`\\|\\hat g\\|`.
    """

    name = "vpg"
    config_class = VPGConfig
    headline_metrics = {"KL": "vpg/kl"}

    def __init__(self, policy, baseline, config=None, *, seed=None):
        super().__init__(policy, baseline, config, seed=seed)
        self.adam = Adam(policy.num_params, learning_rate=self.config.learning_rate)

    def policy_step(self, objective):
        L_old, g = objective.value_and_gradient()
        theta_old = objective.theta_old
        if self.config.optimizer == "adam":
            theta = self.adam.step(theta_old, -g)  # Adam descends; ascend the surrogate
        else:
            theta = theta_old + self.config.learning_rate * g
        self.policy.theta = theta
        L_new = float(objective.surrogate(theta))
        return {"vpg/grad_norm": float(np.linalg.norm(g)),
                "vpg/surrogate_before": L_old,
                "vpg/surrogate_after": L_new,
                "vpg/expected_improvement": float(g @ (theta - theta_old)),
                "vpg/actual_improvement": L_new - L_old,
                "vpg/kl": float(objective.mean_kl(theta))}

    def state_dict(self):
        return {**super().state_dict(), "adam": self.adam.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.adam.load_state_dict(state["adam"])
