"""Policy-optimization algorithms, each a short composition of :mod:`rl` and :mod:`trustregion`.

Every algorithm is a :class:`~rl.algorithms.base.PolicyOptimizer` with a documented config
dataclass; its only specific part is ``policy_step`` on a
:class:`~rl.algorithms.objective.PolicyObjective`, which is either a sampled batch or the
exact expectation on a tabular MDP.
"""

from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer
from rl.algorithms.npg import NPG, NPGConfig, npg_step
from rl.algorithms.objective import PolicyObjective
from rl.algorithms.ppo import PPO, PPOConfig
from rl.algorithms.trpo import TRPO, TRPOConfig, trpo_step
from rl.algorithms.vpg import VPG, VPGConfig

ALGORITHMS = {"vpg": VPG, "npg": NPG, "trpo": TRPO, "ppo": PPO}

#: Diagnostics keys of earlier versions and their current names, ``{old: new}``, gathered
#: from every algorithm's ``renamed_metrics``; readers of run folders map old columns by it.
RENAMED_METRICS = {old: new for cls in ALGORITHMS.values()
                   for old, new in cls.renamed_metrics.items()}

__all__ = [
    "ALGORITHMS", "RENAMED_METRICS", "AlgorithmConfig", "PolicyOptimizer", "PolicyObjective",
    "VPG", "VPGConfig", "NPG", "NPGConfig", "npg_step", "TRPO", "TRPOConfig", "trpo_step",
    "PPO", "PPOConfig",
]
