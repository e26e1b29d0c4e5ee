"""Policy-optimization algorithms, each a short composition of :mod:`rl` and :mod:`trustregion`.

Every algorithm is a :class:`~rl.algorithms.base.PolicyOptimizer` with a documented config
dataclass; its only specific part is ``policy_step`` on a
:class:`~rl.algorithms.objective.PolicyObjective`, which is either a sampled batch or the
exact expectation on a tabular MDP. Conservative policy iteration (:class:`CPI`) and the
TRPO paper's Algorithm 1 (:class:`TRPOPenalty`) run in exact mode only.
"""

# isort: off
# the built-in algorithms register in this order (the order of ALGORITHMS and of --help)
from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer
from rl.algorithms.objective import PolicyObjective
from rl.algorithms.registry import ALGORITHMS, RENAMED_METRICS, register_algorithm
from rl.algorithms.vpg import VPG, VPGConfig
from rl.algorithms.npg import NPG, NPGConfig, npg_step
from rl.algorithms.trpo import TRPO, TRPOConfig, trpo_step
from rl.algorithms.ppo import PPO, PPOConfig
from rl.algorithms.cpi import CPI, CPIConfig, cpi_step
from rl.algorithms.trpo_penalty import TRPOPenalty, TRPOPenaltyConfig, trpo_penalty_step
# isort: on

def _import_every_module():
    """Import the package's other modules, so that an algorithm in a new file registers
    itself (the built-in ones above are imported already, in this order)."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


_import_every_module()

__all__ = [
    "ALGORITHMS", "RENAMED_METRICS", "register_algorithm", "AlgorithmConfig",
    "PolicyOptimizer", "PolicyObjective",
    "VPG", "VPGConfig", "NPG", "NPGConfig", "npg_step", "TRPO", "TRPOConfig", "trpo_step",
    "PPO", "PPOConfig", "CPI", "CPIConfig", "cpi_step", "TRPOPenalty", "TRPOPenaltyConfig",
    "trpo_penalty_step",
]
