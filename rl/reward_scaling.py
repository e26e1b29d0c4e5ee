"""Reward scaling by a running estimate of the discounted return's standard deviation.

The rule of OpenAI baselines' and Stable-Baselines3's ``VecNormalize`` (``norm_reward``),
which rl-baselines3-zoo turns on for every MuJoCo task (``normalize: true``). Each
environment ``i`` keeps a discounted running return

.. math::  G_i \\leftarrow \\gamma G_i + r_i ,

the standard deviation :math:`\\sigma` of all the :math:`G_i` seen so far is tracked with
Chan et al.'s parallel update (the environments' returns of one step are one batch), and
the reward the algorithm learns from is

.. math::  \\tilde r_i = \\operatorname{clip}\\big(r_i / \\sqrt{\\sigma^2 + \\epsilon},
           -c, c\\big),

after which :math:`G_i` is reset to 0 where the episode ended (terminated or truncated).
The scale is not centred, so the sign of every reward is kept; only the advantage and
value-target *scale* changes, which keeps the value network's targets near unit size on
tasks whose returns run into the thousands.

Rewards do not influence the actions sampled, so scaling a finished batch step by step
(:meth:`RewardScaler.scale`) gives exactly the numbers that scaling inside the
environment's step would. The episode returns the runner reports stay the true,
unscaled ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rl.validation import check_range

__all__ = ["RewardScaler"]


class RewardScaler:
    """``VecNormalize``'s reward scaling applied to single-path batches.

    Parameters
    ----------
    num_envs : int >= 1
        Environments of the batches (the columns of ``Batch.rewards``).
    gamma : float in [0, 1]
        Discount of the running return (the algorithm's ``gamma``, as rl-baselines3-zoo
        sets it).
    clip : float > 0, default 10.0
        Scaled rewards are clipped to ``[-clip, clip]`` (VecNormalize's ``clip_reward``).
    epsilon : float > 0, default 1e-8
        Added to the variance before the square root (VecNormalize's ``epsilon``).

    Notes
    -----
    The running statistics start as VecNormalize's ``RunningMeanStd``: mean 0, variance
    1, count ``1e-4``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> scaler = RewardScaler(num_envs=2, gamma=0.9)
    >>> batch = SimpleNamespace(rewards=np.full((3, 2), 100.0),
    ...                         terminated=np.zeros((3, 2), bool),
    ...                         truncated=np.zeros((3, 2), bool))
    >>> scaled = scaler.scale_rewards(batch.rewards, batch.terminated | batch.truncated)
    >>> bool(np.all(np.abs(scaled) <= 10.0)), scaled.shape
    (True, (3, 2))
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8):
        check_range("num_envs", num_envs, 1, None, integer=True)
        check_range("gamma", gamma, 0.0, 1.0)
        check_range("clip", clip, 0.0, None, low_open=True)
        check_range("epsilon", epsilon, 0.0, None, low_open=True)
        self.num_envs, self.gamma = int(num_envs), float(gamma)
        self.clip, self.epsilon = float(clip), float(epsilon)
        self.returns = np.zeros(self.num_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __repr__(self) -> str:
        return (f"RewardScaler(num_envs={self.num_envs}, gamma={self.gamma}, clip={self.clip}, "
                f"std={self.std:.4g})")

    @property
    def std(self) -> float:
        """The current divisor ``sqrt(var + epsilon)``."""
        return float(np.sqrt(self.var + self.epsilon))

    def _update(self, x: np.ndarray) -> None:
        m = x.shape[0]
        mu, var = float(x.mean()), float(x.var())
        delta = mu - self.mean
        total = self.count + m
        self.mean = self.mean + delta * m / total
        m2 = self.var * self.count + var * m + delta * delta * self.count * m / total
        self.var = m2 / total
        self.count = total

    def scale_rewards(self, rewards, dones) -> np.ndarray:
        """Scaled copy of ``rewards``, shape (T, num_envs), updating the statistics step by
        step; ``dones`` (same shape, bool) marks the steps that ended an episode."""
        r = np.asarray(rewards, dtype=np.float64)
        d = np.asarray(dones, dtype=bool)
        if r.ndim != 2 or r.shape[1] != self.num_envs or d.shape != r.shape:
            raise ValueError(f"rewards and dones must both have shape (T, {self.num_envs}); got "
                             f"{r.shape} and {d.shape}")
        if not np.all(np.isfinite(r)):
            raise ValueError("rewards contain NaN or inf; reward scaling needs finite rewards")
        out = np.empty_like(r)
        for t in range(r.shape[0]):
            self.returns = self.returns * self.gamma + r[t]
            self._update(self.returns)
            out[t] = np.clip(r[t] / np.sqrt(self.var + self.epsilon), -self.clip, self.clip)
            self.returns[d[t]] = 0.0
        return out

    def scale(self, batch):
        """A copy of the single-path ``batch`` with scaled rewards (everything else shared),
        with the divisor in ``diagnostics["reward/scale"]``."""
        rewards = self.scale_rewards(batch.rewards, np.logical_or(batch.terminated,
                                                                  batch.truncated))
        return dataclasses.replace(batch, rewards=rewards,
                                   diagnostics={**batch.diagnostics, "reward/scale": self.std})

    def state_dict(self) -> dict:
        """Running returns and statistics, as arrays and numbers (copies)."""
        return {"num_envs": self.num_envs, "gamma": self.gamma, "clip": self.clip,
                "epsilon": self.epsilon, "returns": self.returns.copy(), "mean": self.mean,
                "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved; the settings must match this scaler's."""
        expected = {"num_envs", "gamma", "clip", "epsilon", "returns", "mean", "var", "count"}
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"reward scaler state must have the keys {sorted(expected)}; got "
                             f"{got}")
        mine = (self.num_envs, self.gamma, self.clip, self.epsilon)
        saved = (state["num_envs"], state["gamma"], state["clip"], state["epsilon"])
        if saved != mine:
            raise ValueError(f"reward scaler state has (num_envs, gamma, clip, epsilon) = "
                             f"{saved}, this scaler {mine}; build it with the saved settings")
        returns = np.array(state["returns"], dtype=np.float64)
        values = [state[k] for k in ("mean", "var", "count")]
        if returns.shape != (self.num_envs,) or not np.all(np.isfinite(returns)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                for v in values) or state["var"] < 0 or state["count"] <= 0:
            raise ValueError("reward scaler state has bad returns or statistics (they must be "
                             "finite, var >= 0, count > 0); pass the dict state_dict() saved")
        self.returns = returns
        self.mean, self.var, self.count = (float(v) for v in values)
