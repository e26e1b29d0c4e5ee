"""rl: policy optimization (VPG, NPG, TRPO, PPO) built on :mod:`trustregion`.

Exact tabular MDPs serve as the oracle every sampled estimate is tested against;
Gymnasium environments (MuJoCo included) supply the real tasks.
"""

from rl import algorithms  # noqa: F401  (the subpackage, documented on its own)
from rl.advantages import (
    Baseline,
    ConstantBaseline,
    ConvValueFunction,
    LinearFeatureBaseline,
    MLPValueFunction,
    ZeroBaseline,
    compute_advantages,
    discounted_cumsum,
    explained_variance,
    gae,
    make_baseline,
    normalize_advantages,
    reward_to_go,
)
from rl.algorithms import NPG, PPO, TRPO, VPG, NPGConfig, PPOConfig, TRPOConfig, VPGConfig
from rl.conv import ConvNet
from rl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from rl.envs import (
    EnvironmentFailure,
    NonFiniteEnvironmentError,
    SameStepNativeVectorEnv,
    SameStepSyncVectorEnv,
    VineUnsupportedError,
    check_spaces,
    make_vector_env,
    restore_snapshot,
    restore_state,
    save_state,
    snapshot_env,
)
from rl.mdp import TabularMDP, chain_mdp, gridworld, random_mdp, two_action_bandit
from rl.policies import (
    BernoulliMLP,
    CategoricalCNN,
    CategoricalMLP,
    GaussianMLP,
    MultiCategoricalMLP,
    MultiInputPolicy,
    ObservationNormalizer,
    Policy,
    TabularSoftmax,
    make_policy,
)
from rl.sampling import Batch, BlockSampler, Sampler, SinglePathSampler, VineBatch, VineSampler
from rl.spaces import ActionSpec, ObservationLayout, action_spec
from rl.train import TrainConfig, TrainResult, evaluate, train

__all__ = [
    "ActionSpec",
    "action_spec",
    "Baseline",
    "Batch",
    "Bernoulli",
    "BernoulliMLP",
    "BlockSampler",
    "Categorical",
    "CategoricalCNN",
    "CategoricalMLP",
    "chain_mdp",
    "check_spaces",
    "compute_advantages",
    "ConstantBaseline",
    "ConvNet",
    "ConvValueFunction",
    "DiagGaussian",
    "EnvironmentFailure",
    "discounted_cumsum",
    "evaluate",
    "explained_variance",
    "gae",
    "GaussianMLP",
    "gridworld",
    "LinearFeatureBaseline",
    "make_baseline",
    "make_policy",
    "make_vector_env",
    "MLPValueFunction",
    "MultiCategorical",
    "MultiCategoricalMLP",
    "MultiInputPolicy",
    "NonFiniteEnvironmentError",
    "normalize_advantages",
    "NPG",
    "NPGConfig",
    "ObservationLayout",
    "ObservationNormalizer",
    "Policy",
    "PPO",
    "PPOConfig",
    "random_mdp",
    "restore_snapshot",
    "restore_state",
    "reward_to_go",
    "SameStepNativeVectorEnv",
    "SameStepSyncVectorEnv",
    "Sampler",
    "save_state",
    "SinglePathSampler",
    "snapshot_env",
    "TabularMDP",
    "TabularSoftmax",
    "train",
    "TrainConfig",
    "TrainResult",
    "TRPO",
    "TRPOConfig",
    "two_action_bandit",
    "VineBatch",
    "VineSampler",
    "VineUnsupportedError",
    "VPG",
    "VPGConfig",
    "ZeroBaseline",
]

__version__ = "0.1.0"
