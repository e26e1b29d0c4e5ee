"""Proximal Policy Optimization (Schulman et al., 2017): clipped and KL-penalty variants
(the penalty coefficient adaptive, or fixed as in the Lagrangian relaxation of TRPO)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer, check_range
from rl.algorithms.registry import register_algorithm
from rl.optimizers import Adam

__all__ = ["PPOConfig", "PPO"]


@dataclass
class PPOConfig(AlgorithmConfig):
    """PPO settings (defaults: PPO paper Table 3, MuJoCo).

    Attributes
    ----------
    variant : str
        ``"clip"`` (eq. (7)) or ``"kl"`` (KL penalty, eq. (8)).
    adaptive : bool
        With ``variant="kl"``: adapt :math:`\\beta` towards ``kl_target`` after every
        iteration (True, the PPO paper's §4 rule) or keep :math:`\\beta` = ``kl_coef``
        fixed (False): the Lagrangian relaxation of TRPO's constraint with a chosen
        coefficient, as PPO is introduced in Janson & Kakade's CS/Stat 184 lecture notes
        (2023, "Proximal Policy Optimization": choose :math:`\\lambda`, then maximise
        :math:`\\ell^k(\\theta)`) and as the PPO paper's "fixed KL" baselines (Table 1).
        ``False`` with ``variant="clip"`` is an error: the clipped objective has no
        coefficient.
    clip : float
        :math:`\\epsilon` of the clipped ratio (0.2, PPO paper §6.1).
    epochs : int
        Passes over the batch per iteration (10, Table 3).
    minibatch_size : int
        Samples per Adam step (64, Table 3).
    learning_rate : float
        Adam step size (3e-4, Table 3).
    lam : float
        GAE :math:`\\lambda` (0.95, Table 3).
    kl_target : float
        :math:`d_{targ}` of the penalty variant (0.01, §4).
    kl_coef : float
        Initial penalty :math:`\\beta` (1.0, §4: "the initial value is not important"), or
        the fixed one with ``adaptive=False`` (there it matters: the PPO paper's Table 1
        tries 0.3, 1, 3 and 10).
    target_kl : float or None
        Stop the epochs early once the mean KL exceeds ``1.5 * target_kl``: before every
        minibatch step the KL of :math:`\\pi_\\theta` from :math:`\\pi_{old}` is measured on
        that minibatch, and the step is not taken if it is over (stable-baselines3's rule;
        Spinning Up applies the same test before each of its full-batch steps). ``None``
        disables it.
    entropy_coef : float
        Entropy bonus coefficient :math:`c_2` (0.0 for MuJoCo, Table 3).
    max_grad_norm : float or None
        Clip the minibatch gradient to this norm (0.5, the OpenAI baselines setting).
    """

    lam: float = 0.95
    variant: str = "clip"
    adaptive: bool = True
    clip: float = 0.2
    epochs: int = 10
    minibatch_size: int = 64
    learning_rate: float = 3e-4
    kl_target: float = 0.01
    kl_coef: float = 1.0
    target_kl: float | None = None
    entropy_coef: float = 0.0
    max_grad_norm: float | None = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.variant not in ("clip", "kl"):
            raise ValueError(f"variant must be 'clip' or 'kl'; got {self.variant!r}")
        if not isinstance(self.adaptive, (bool, np.bool_)):
            raise ValueError(f"adaptive must be True or False; got {self.adaptive!r}")
        if not self.adaptive and self.variant != "kl":
            raise ValueError("adaptive=False fixes the KL penalty coefficient; it needs "
                             f"variant='kl' (got variant={self.variant!r})")
        check_range("clip", self.clip, 0.0, 1.0, low_open=True, high_open=True)
        check_range("epochs", self.epochs, 1, None, integer=True)
        check_range("minibatch_size", self.minibatch_size, 1, None, integer=True)
        check_range("learning_rate", self.learning_rate, 0.0, None, low_open=True)
        check_range("kl_target", self.kl_target, 0.0, None, low_open=True)
        # a zero penalty would stay zero: beta is only ever halved or doubled (and a fixed
        # zero penalty is the unconstrained surrogate, which the clip variant does better)
        check_range("kl_coef", self.kl_coef, 0.0, None, low_open=True)
        if self.target_kl is not None:
            check_range("target_kl", self.target_kl, 0.0, None, low_open=True)
        check_range("entropy_coef", self.entropy_coef, 0.0, None)
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, 0.0, None, low_open=True)


@register_algorithm
class PPO(PolicyOptimizer):
    """PPO: minibatch Adam epochs on the clipped surrogate or the KL-penalised one.

    :meth:`policy_step` returns these diagnostics, every key in every iteration (and
    ``ppo/kl_penalty`` in every iteration of the ``"kl"`` variant), each a plain Python value;
    :math:`L` is the importance-sampled surrogate :meth:`PolicyObjective.surrogate
    <rl.algorithms.objective.PolicyObjective.surrogate>`, whatever objective the epochs
    optimise:

    ``ppo/surrogate_before``, ``ppo/surrogate_after``
        :math:`L(\\theta_{old})` and :math:`L(\\theta_{new})`.
    ``ppo/expected_improvement``
        :math:`\\nabla L(\\theta_{old})^T (\\theta_{new} - \\theta_{old})`, the linear
        model's gain for the iteration's whole parameter change.
    ``ppo/actual_improvement``
        ``surrogate_after - surrogate_before``.
    ``ppo/kl``, ``ppo/clip_fraction``
        Mean :math:`D_{KL}(\\pi_{old} \\| \\pi_{new})` and the weighted fraction of samples
        with :math:`|r_i - 1| > \\epsilon`.
    ``ppo/epochs_run``, ``ppo/minibatch_steps``, ``ppo/stopped_early``, ``ppo/grad_norm``
        Epochs begun and Adam steps taken (``int``; with ``target_kl`` the last epoch may
        be cut short), whether ``target_kl`` stopped them (a ``bool``) and the mean
        minibatch gradient norm before clipping (0.0 if no step was taken).
    ``ppo/kl_penalty``
        The penalty :math:`\\beta` after this iteration's adaptation (``"kl"`` variant only;
        the setting ``kl_coef`` is its initial value; with ``adaptive=False`` always
        ``kl_coef``).

    ``ppo/epochs_run`` and ``ppo/kl_penalty`` were called ``ppo/epochs`` and ``ppo/kl_coef``
    before, the names of the settings ``epochs`` and ``kl_coef``.
    """

    name = "ppo"
    config_class = PPOConfig
    headline_metrics = {"KL": "ppo/kl", "clip fraction": "ppo/clip_fraction"}
    renamed_metrics = {"ppo/epochs": "ppo/epochs_run", "ppo/kl_coef": "ppo/kl_penalty"}

    def __init__(self, policy, baseline, config=None, *, seed=None):
        super().__init__(policy, baseline, config, seed=seed)
        self.adam = Adam(policy.num_params, learning_rate=self.config.learning_rate)
        self.kl_coef = float(self.config.kl_coef)

    def _loss(self, objective):
        """The minibatch loss as a function of the distribution parameters (negated gain)."""
        cfg = self.config

        def loss(params, idx):
            if cfg.variant == "clip":
                gain = objective.clipped_surrogate_from(params, cfg.clip, idx)
            else:  # eq. (8): L^KLPEN = L - beta KL
                gain = (objective.surrogate_from(params, idx)
                        - self.kl_coef * objective.mean_kl_from(params, idx))
            if cfg.entropy_coef > 0:
                gain = gain + cfg.entropy_coef * objective.entropy_from(params, idx)
            return -gain

        return loss

    def policy_step(self, objective):
        cfg = self.config
        theta = objective.theta_old.copy()
        loss = self._loss(objective)
        L_before = float(objective.surrogate(theta))
        g_old = objective.gradient()  # of L at theta_old, for the linear model's prediction
        epochs_run, grad_norms, stopped_early = 0, [], False
        kl_limit = None if cfg.target_kl is None else 1.5 * cfg.target_kl
        for _ in range(cfg.epochs):
            epochs_run += 1
            for idx in objective.minibatches(cfg.minibatch_size, self.rng):
                if kl_limit is not None and float(objective.mean_kl(theta, idx)) > kl_limit:
                    stopped_early = True
                    break
                _, g = objective.value_and_gradient_of(loss, theta, idx)
                norm = float(np.linalg.norm(g))
                grad_norms.append(norm)
                if cfg.max_grad_norm is not None and norm > cfg.max_grad_norm:
                    g = g * (cfg.max_grad_norm / norm)
                theta = self.adam.step(theta, g)
            if stopped_early:
                break
        kl = float(objective.mean_kl(theta))
        params = objective.distribution_params(theta)
        ratio = np.exp(objective._dist(params).log_prob(objective.actions)
                       - objective.old_log_probs)
        L_after = float(objective.surrogate(theta))
        diag = {
            "ppo/surrogate_before": L_before,
            "ppo/surrogate_after": L_after,
            "ppo/expected_improvement": float(g_old @ (theta - objective.theta_old)),
            "ppo/actual_improvement": L_after - L_before,
            "ppo/kl": kl,
            "ppo/clip_fraction": float(np.sum(objective.weights
                                              * (np.abs(ratio - 1.0) > cfg.clip))),
            "ppo/epochs_run": epochs_run,
            "ppo/minibatch_steps": len(grad_norms),
            "ppo/stopped_early": stopped_early,
            "ppo/grad_norm": float(np.mean(grad_norms)) if grad_norms else 0.0,
        }
        if cfg.variant == "kl" and cfg.adaptive:  # §4: adapt beta towards d_targ
            if kl < cfg.kl_target / 1.5:
                self.kl_coef /= 2.0
            elif kl > cfg.kl_target * 1.5:
                self.kl_coef *= 2.0
        if cfg.variant == "kl":
            diag["ppo/kl_penalty"] = self.kl_coef
        self.policy.theta = theta
        return diag

    def state_dict(self):
        return {**super().state_dict(), "adam": self.adam.state_dict(), "kl_coef": self.kl_coef}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.adam.load_state_dict(state["adam"])
        self.kl_coef = float(state["kl_coef"])
