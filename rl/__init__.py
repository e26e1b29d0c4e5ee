"""rl: policy optimization (VPG, NPG, TRPO, PPO) built on :mod:`trustregion`.

Exact tabular MDPs serve as the oracle every sampled estimate is tested against;
Gymnasium environments (MuJoCo included) supply the real tasks.
"""

# mdp
# distributions
# policies
# envs
# sampling
# advantages
# algorithms
# train

__version__ = "0.1.0"
