"""What every policy-optimization algorithm shares: its config base and the update loop.

An algorithm is a :class:`PolicyOptimizer` whose only specific part is
:meth:`PolicyOptimizer.policy_step`, a step on a :class:`~rl.algorithms.objective.PolicyObjective`.
:meth:`PolicyOptimizer.update` turns a sampled batch into that objective (advantages from
the baseline, then the policy step, then the value fit), so the same ``policy_step`` runs on
samples and, via :meth:`PolicyObjective.exact`, on exact tabular expectations.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from rl.advantages import (
    Baseline,
    compute_advantages,
    explained_variance,
    normalize_advantages,
)
from rl.algorithms.objective import PolicyObjective
from rl.policies import TabularSoftmax
from rl.validation import check_range

__all__ = ["AlgorithmConfig", "PolicyOptimizer", "check_range", "exact_mdp",
           "require_tabular_policy", "ExactPolicyOptimizer"]


def exact_mdp(objective, algorithm):
    """The :class:`~rl.mdp.TabularMDP` of an exact objective; ``ValueError`` for a sampled one.

    Conservative policy iteration and the TRPO paper's Algorithm 1 need exact advantages
    of every state-action pair, which only :meth:`PolicyObjective.exact` carries.
    """
    mdp = getattr(objective, "mdp", None)
    if mdp is None:
        raise ValueError(f"{algorithm} runs in exact mode only: pass "
                         "PolicyObjective.exact(mdp, policy), not a sampled batch")
    return mdp


def no_step_diagnostics(prefix, surrogate, status):
    """The shared diagnostics of an iteration that keeps :math:`\\theta_{old}`, under the
    keys an iteration with a step reports (``<prefix>/surrogate_before`` ... ``/status``),
    so every row of ``metrics.csv`` has the same columns."""
    return {f"{prefix}/surrogate_before": surrogate, f"{prefix}/surrogate_after": surrogate,
            f"{prefix}/expected_improvement": 0.0, f"{prefix}/actual_improvement": 0.0,
            f"{prefix}/kl": 0.0, f"{prefix}/status": status}


def require_tabular_policy(policy, algorithm):
    """A ``ValueError`` unless ``policy`` is a :class:`~rl.policies.TabularSoftmax`."""
    if not isinstance(policy, TabularSoftmax):
        raise ValueError(f"{algorithm} runs in exact mode on a TabularMDP and needs a "
                         f"TabularSoftmax policy; got {type(policy).__name__} (use trpo, "
                         "npg, ppo or vpg to train on an environment)")


@dataclass
class AlgorithmConfig:
    """Settings shared by every algorithm.

    Attributes
    ----------
    gamma : float
        Discount factor :math:`\\gamma` (0.99, the value used for the TRPO/PPO benchmarks).
    lam : float
        GAE parameter :math:`\\lambda` (0.97, Schulman et al. 2016 and Spinning Up's TRPO).
    normalize_advantages : bool
        Standardise advantages per batch (as the reference implementations do).
    """

    gamma: float = 0.99
    lam: float = 0.97
    normalize_advantages: bool = True

    def __post_init__(self):
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("lam", self.lam, 0.0, 1.0)

    def to_dict(self):
        """The settings as a plain ``dict`` (for ``config.json``)."""
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """A copy with ``changes`` applied (validated like a new config)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} keys {unknown}; valid keys: "
                             f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)


class PolicyOptimizer:
    """Base class: sampled batch → advantages → policy step → value fit → diagnostics.

    Parameters
    ----------
    policy : rl.policies.Policy
        The policy; updated in place (``policy.theta`` is reassigned).
    baseline : object
        A baseline from :mod:`rl.advantages` (``predict``/``fit``).
    config : AlgorithmConfig
        The algorithm's settings (a subclass per algorithm).
    seed : int or numpy.random.Generator, optional
        Randomness of the update (Fisher subsampling, minibatch order).
    """

    name = "base"
    config_class = AlgorithmConfig
    #: The diagnostics a progress display shows for this algorithm, ``{label: key}``: a
    #: runner reads them from here instead of knowing any algorithm's keys.
    headline_metrics: dict = {}
    #: Diagnostics keys this algorithm reported under another name in earlier versions,
    #: ``{old: new}``, so that metrics read back from older run folders keep their meaning.
    renamed_metrics: dict = {}
    #: True for an algorithm that runs on exact tabular quantities only
    #: (:meth:`PolicyObjective.exact`), never on sampled batches: a runner refuses it.
    exact_only: bool = False

    def __init__(self, policy, baseline, config=None, *, seed=None):
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise ValueError(f"config must be a {self.config_class.__name__}; got "
                             f"{type(config).__name__}")
        self.policy = policy
        self.baseline = baseline
        self.config = config
        self.rng = np.random.default_rng(seed)

    # the one algorithm-specific piece
    def policy_step(self, objective: PolicyObjective) -> dict:
        """Update ``self.policy.theta`` from ``objective``; return diagnostics."""
        raise NotImplementedError

    def update(self, batch) -> dict:
        """One iteration on a sampled batch (single path or vine); returns diagnostics."""
        cfg = self.config
        t0 = time.perf_counter()
        value_batch = batch.value_batch
        if batch.has_advantages:  # a vine batch carries its own advantages
            adv = np.asarray(batch.advantages, dtype=np.float64)
            if cfg.normalize_advantages:  # as compute_advantages does for single-path batches
                adv = normalize_advantages(adv)
            # the self-normalised estimator (TRPO paper eq. (16)) groups rows by rollout state
            groups = batch.state_index if batch.self_normalized else None
            objective = PolicyObjective(
                self.policy, batch.observations, batch.actions, adv, batch.log_probs,
                batch.dist_params, groups=groups)
            _, targets = compute_advantages(value_batch, self.baseline, cfg.gamma, cfg.lam,
                                            normalize=False)
        else:
            adv, targets = compute_advantages(batch, self.baseline, cfg.gamma, cfg.lam,
                                              normalize=cfg.normalize_advantages)
            objective = PolicyObjective.from_arrays(
                self.policy, batch.flat("observations"), batch.flat("actions"), adv.reshape(-1),
                batch.flat("log_probs"), batch.flat("dist_params"))
        t1 = time.perf_counter()
        diagnostics = {"time/advantages_s": t1 - t0}
        diagnostics.update(self.policy_step(objective))
        t2 = time.perf_counter()
        obs = value_batch.flat("observations")
        ts = value_batch.flat("timesteps")
        y = targets.reshape(-1)
        before = None  # a Baseline's fit reports the "before" diagnostics itself
        if not isinstance(self.baseline, Baseline):
            before = explained_variance(self.baseline.predict(obs, ts), y)
        diagnostics.update(self.baseline.fit(obs, y, ts))
        if before is not None:
            diagnostics["value/explained_variance_before"] = before
        t3 = time.perf_counter()
        diagnostics.update({
            "policy/entropy": objective.entropy(self.policy.theta),
            "time/policy_step_s": t2 - t1,
            "time/value_fit_s": t3 - t2,
            "time/update_s": t3 - t0,
        })
        return diagnostics

    def state_dict(self) -> dict:
        """Optimizer state for checkpoints (algorithm-specific parts added by subclasses)."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state) -> None:
        """Restore :meth:`state_dict` output."""
        self.rng.bit_generator.state = state["rng"]


class ExactPolicyOptimizer(PolicyOptimizer):
    """An algorithm that runs on exact tabular quantities only (``exact_only``): its
    ``policy_step`` is a pure ``step(objective, config) -> (theta, diagnostics)`` on
    :meth:`PolicyObjective.exact` of a :class:`~rl.policies.TabularSoftmax` policy, which
    subclasses set as ``step = staticmethod(...)``."""

    exact_only = True
    step = None

    def __init__(self, policy, baseline=None, config=None, *, seed=None):
        require_tabular_policy(policy, self.name)
        super().__init__(policy, baseline, config, seed=seed)

    def policy_step(self, objective):
        theta, diag = type(self).step(objective, self.config)
        self.policy.theta = theta
        return diag
