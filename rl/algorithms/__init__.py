"""Policy-optimization algorithms, each a short composition of :mod:`rl` and :mod:`trustregion`.

Every algorithm is a :class:`~rl.algorithms.base.PolicyOptimizer` with a documented config
dataclass; its only specific part is ``policy_step`` on a
:class:`~rl.algorithms.objective.PolicyObjective`, which is either a sampled batch or the
exact expectation on a tabular MDP. Conservative policy iteration (:class:`CPI`) and the
TRPO paper's Algorithm 1 (:class:`TRPOPenalty`) run in exact mode only.
"""

from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer
from rl.algorithms.cpi import CPI, CPIConfig, cpi_step
from rl.algorithms.npg import NPG, NPGConfig, npg_step
from rl.algorithms.objective import PolicyObjective
from rl.algorithms.ppo import PPO, PPOConfig
from rl.algorithms.trpo import TRPO, TRPOConfig, trpo_step
from rl.algorithms.trpo_penalty import TRPOPenalty, TRPOPenaltyConfig, trpo_penalty_step
from rl.algorithms.vpg import VPG, VPGConfig

# cpi and trpo-penalty run in exact mode only (PolicyObjective.exact on a TabularMDP)
ALGORITHMS = {"vpg": VPG, "npg": NPG, "trpo": TRPO, "ppo": PPO, "cpi": CPI,
              "trpo-penalty": TRPOPenalty}

#: Diagnostics keys of earlier versions and their current names, ``{old: new}``, gathered
#: from every algorithm's ``renamed_metrics``; readers of run folders map old columns by it.
RENAMED_METRICS = {old: new for cls in ALGORITHMS.values()
                   for old, new in cls.renamed_metrics.items()}

__all__ = [
    "ALGORITHMS", "RENAMED_METRICS", "AlgorithmConfig", "PolicyOptimizer", "PolicyObjective",
    "VPG", "VPGConfig", "NPG", "NPGConfig", "npg_step", "TRPO", "TRPOConfig", "trpo_step",
    "PPO", "PPOConfig", "CPI", "CPIConfig", "cpi_step", "TRPOPenalty", "TRPOPenaltyConfig",
    "trpo_penalty_step",
]
