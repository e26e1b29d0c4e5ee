"""Trust Region Policy Optimization (Schulman et al., 2015, §6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import trustregion as tr
from rl.algorithms.base import (
    AlgorithmConfig,
    PolicyOptimizer,
    check_range,
    no_step_diagnostics,
)
from rl.algorithms.registry import register_algorithm
from rl.kfac import kfac_fisher_operator

__all__ = ["TRPOConfig", "TRPO", "trpo_step"]


@dataclass
class TRPOConfig(AlgorithmConfig):
    """TRPO settings.

    Attributes
    ----------
    max_kl : float
        Trust-region size :math:`\\delta` on the KL divergence (0.01, TRPO paper §8).
    damping : float
        Added to the Fisher matrix, :math:`F + \\lambda I`, for CG's sake (0.1, Spinning Up
        and sb3-contrib).
    cg_iterations : int
        Conjugate-gradient iterations for :math:`F^{-1} g` (10, TRPO paper App. C).
    cg_rtol : float
        CG relative residual tolerance (1e-10: the iteration cap often binds first).
    max_backtracks : int
        Line-search trials (10, Spinning Up).
    backtrack_shrink : float
        Step shrink factor per trial (0.8, Spinning Up).
    fisher_fraction : float
        Fraction of the batch used for Fisher-vector products (1.0; the paper uses 0.1
        to save time).
    constraint : str
        ``"mean"`` (the practical algorithm, paper eq. (12)) or ``"max"`` (the theory's
        :math:`D_{KL}^{\\max}`, checked over the batch's states).
    preconditioner : str
        ``"none"`` (plain CG, as the paper) or ``"kfac"``: CG preconditioned by the exact
        inverse of the K-FAC approximation of the damped Fisher (Martens & Grosse 2015;
        :func:`rl.kfac.kfac_fisher_operator` with the same ``damping``, split between the
        factors). The system solved, and so the step CG converges to, is unchanged; only
        the iterations differ. Needs an MLP policy and ``damping > 0``.
    direction : str
        ``"cg"`` (the direction of ``cg_iterations`` CG iterations) or ``"kfac"``: the
        K-FAC natural gradient :math:`d = \\hat F^{-1} g` itself, as ACKTR (Wu et al. 2017)
        uses it, then scaled to the KL boundary with the exact Fisher product and
        line-searched like every TRPO step. It is the first iterate of K-FAC-preconditioned
        CG (which points along :math:`M g`), so it costs two Fisher products. Needs an MLP
        policy and ``damping > 0``.
    """

    max_kl: float = 0.01
    damping: float = 0.1
    cg_iterations: int = 10
    cg_rtol: float = 1e-10
    max_backtracks: int = 10
    backtrack_shrink: float = 0.8
    fisher_fraction: float = 1.0
    constraint: str = "mean"
    preconditioner: str = "none"
    direction: str = "cg"

    def __post_init__(self):
        super().__post_init__()
        check_range("max_kl", self.max_kl, 0.0, None, low_open=True)
        check_range("damping", self.damping, 0.0, None)
        check_range("cg_iterations", self.cg_iterations, 1, None, integer=True)
        check_range("cg_rtol", self.cg_rtol, 0.0, 1.0, low_open=True)
        check_range("max_backtracks", self.max_backtracks, 1, None, integer=True)
        check_range("backtrack_shrink", self.backtrack_shrink, 0.0, 1.0, low_open=True,
                    high_open=True)
        check_range("fisher_fraction", self.fisher_fraction, 0.0, 1.0, low_open=True)
        if self.constraint not in ("mean", "max"):
            raise ValueError(f"constraint must be 'mean' or 'max'; got {self.constraint!r}")
        if self.preconditioner not in ("none", "kfac"):
            raise ValueError(f"preconditioner must be 'none' or 'kfac'; got "
                             f"{self.preconditioner!r}")
        if self.direction not in ("cg", "kfac"):
            raise ValueError(f"direction must be 'cg' or 'kfac'; got {self.direction!r}")
        if "kfac" in (self.preconditioner, self.direction) and not self.damping > 0:
            raise ValueError("preconditioner='kfac' and direction='kfac' invert the K-FAC "
                             f"factors and need damping > 0; got damping={self.damping!r}")


def trpo_step(objective, config, rng=None):
    """One TRPO step on ``objective``; returns ``(theta_new, diagnostics)``.

    1. :math:`g = \\nabla_\\theta L(\\theta_{old})`.
    2. :math:`d \\approx F^{-1} g` by CG on the damped Fisher operator (preconditioned by
       K-FAC, or replaced by the K-FAC natural gradient, if the config says so) and the
       maximal step
       :math:`\\beta d`, :math:`\\beta = \\sqrt{2\\delta / d^T F d}`
       (:func:`trustregion.natural_step`).
    3. Backtrack :math:`\\theta_{old} + s^k \\beta d` until the surrogate improves **and**
       the KL constraint holds (:func:`trustregion.backtracking`).
    4. If no trial passes, keep :math:`\\theta_{old}` and say so.

    The diagnostics' keys are listed under :class:`TRPO`; every call returns all of them.
    """
    theta_old = objective.theta_old
    L_old, g = objective.value_and_gradient()
    F = objective.fisher_operator(fraction=config.fisher_fraction, rng=rng)
    if config.damping > 0:
        F = tr.damped(F, config.damping)
    M, maxiter = None, config.cg_iterations
    if "kfac" in (config.preconditioner, config.direction):
        # the exact inverse of K-FAC's approximation of F + damping I (Martens & Grosse)
        M = kfac_fisher_operator(objective.policy, objective.observations, objective.weights,
                                 theta=theta_old, damping=config.damping).inverse()
        if config.direction == "kfac":  # d = K^{-1} g: the first preconditioned CG iterate
            maxiter = 1
    ns = tr.natural_step(g, F, config.max_kl, M=M, maxiter=maxiter, rtol=config.cg_rtol)
    diag = {
        "trpo/surrogate_before": L_old,
        "trpo/grad_norm": float(np.linalg.norm(g)),
        "cg/nit": ns.cg.nit,
        "cg/residual": float(ns.cg.residual_norm),
        "cg/status": ns.cg.status.name,
        "trpo/expected_improvement": float(ns.expected_improvement),
        # 1/2 s^T F s of the undamped Fisher: the damped model's delta less the damping's
        # share 1/2 lambda ||s||^2 (>= 0 in exact arithmetic)
        "trpo/quadratic_kl": max(0.0, float(ns.quadratic_kl)
                                 - 0.5 * config.damping * float(ns.step @ ns.step)),
    }
    if not ns.success:  # no step: keep theta_old, report the keys of a row with a step
        diag.update(no_step_diagnostics("trpo", L_old, ns.status.message))
        diag.update({"trpo/expected_improvement_accepted": 0.0, "trpo/kl_max_state": 0.0,
                     "trpo/line_search_steps": 0, "trpo/line_search_success": False,
                     "trpo/step_fraction": 0.0})
        return theta_old, diag

    kl = objective.max_kl if config.constraint == "max" else objective.mean_kl

    def accept(theta, L):  # paper §6: surrogate improves and the KL constraint holds
        return bool(L > L_old) and float(kl(theta)) <= config.max_kl

    ls = tr.backtracking(objective.surrogate, theta_old, ns.step, step=1.0,
                         shrink=config.backtrack_shrink, max_steps=config.max_backtracks,
                         accept=accept, f0=L_old)
    if ls.success:
        theta = ls.x
        kls = np.asarray(objective.kl_per_sample(theta))  # one pass for the mean and the max
        kl_mean, kl_max = float(np.sum(objective.weights * kls)), float(np.max(kls))
    else:  # theta_old itself: its KL is 0, not the rounding of a KL evaluation
        theta, kl_mean, kl_max = theta_old, 0.0, 0.0
    diag.update({
        "trpo/surrogate_after": float(ls.fun),
        "trpo/actual_improvement": float(ls.fun) - L_old,
        # g^T (s^k beta d): the linear model's gain for the step taken (s^k = 0 on failure)
        "trpo/expected_improvement_accepted": float(ls.step) * float(ns.expected_improvement),
        "trpo/kl": kl_mean,
        "trpo/kl_max_state": kl_max,
        "trpo/line_search_steps": ls.nsteps,
        "trpo/line_search_success": bool(ls.success),
        "trpo/step_fraction": float(ls.step),
        "trpo/status": ls.message if not ls.success else ns.message,
    })
    return theta, diag


@register_algorithm
class TRPO(PolicyOptimizer):
    """Trust Region Policy Optimization.

    Solves, per iteration, :math:`\\max_\\theta L_{\\theta_{old}}(\\theta)` subject to
    :math:`\\bar D_{KL}(\\theta_{old}, \\theta) \\le \\delta` (TRPO paper eq. (12)) by the
    natural-gradient direction, the maximal quadratic step and a line search.

    :meth:`policy_step` (and :func:`trpo_step`) return these diagnostics, every key in
    every iteration, each a plain Python value; with :math:`g` the surrogate's gradient at
    :math:`\\theta_{old}`, :math:`\\beta d` the maximal step and :math:`s^k` the accepted
    step fraction:

    ``trpo/surrogate_before``, ``trpo/surrogate_after``
        :math:`L(\\theta_{old})` and :math:`L(\\theta_{new})` (after = before when no step is
        taken).
    ``trpo/actual_improvement``
        ``surrogate_after - surrogate_before`` (0.0 when no step is taken).
    ``trpo/expected_improvement``
        :math:`g^T \\beta d`, the linear model's gain for the **full** maximal step, even
        when the line search accepts a shorter one (0.0 when CG gives no step).
    ``trpo/expected_improvement_accepted``
        :math:`g^T s^k \\beta d` = ``step_fraction * expected_improvement``, the linear
        model's gain for the step actually taken (0.0 when the line search fails or CG
        gives no step); ``actual_improvement`` divided by it near 1 means the linear model
        predicted the step well.
    ``trpo/kl``, ``trpo/kl_max_state``
        Mean and largest :math:`D_{KL}(\\pi_{old} \\| \\pi_{new})` over the samples' states;
        exactly 0.0 when :math:`\\theta_{old}` is kept. (The largest was called
        ``trpo/max_kl`` before, beside the unrelated setting ``max_kl`` :math:`= \\delta`.)
    ``trpo/quadratic_kl``
        :math:`\\tfrac12 (\\beta d)^T F (\\beta d)` with the undamped Fisher: the KL the
        quadratic model predicts for the full step, to compare with the measured KL.
        It is :math:`\\delta - \\tfrac12 \\lambda \\|\\beta d\\|^2`, since the step is
        scaled to make the damped model's KL :math:`\\delta` (0.0 when CG gives no step).
    ``trpo/grad_norm``
        :math:`\\|g\\|`.
    ``trpo/line_search_steps``, ``trpo/line_search_success``, ``trpo/step_fraction``
        Trials evaluated (an ``int``), whether one passed (a ``bool``) and :math:`s^k`
        (0.0 when none passed or CG gives no step).
    ``trpo/status``, ``cg/nit``, ``cg/residual``, ``cg/status``
        A message, and CG's iterations, residual norm and status name.

    Examples
    --------
    >>> from rl.mdp import random_mdp
    >>> from rl.policies import TabularSoftmax
    >>> from rl.algorithms.objective import PolicyObjective
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> policy = TabularSoftmax(4, 2)
    >>> algo = TRPO(policy, baseline=None, config=TRPOConfig(max_kl=0.01))
    >>> eta0 = mdp.performance(policy.probs(policy.theta))
    >>> diag = algo.policy_step(PolicyObjective.exact(mdp, policy))
    >>> bool(mdp.performance(policy.probs(policy.theta)) > eta0), diag["trpo/kl"] <= 0.01
    (True, True)
    """

    name = "trpo"
    config_class = TRPOConfig
    headline_metrics = {"KL": "trpo/kl"}
    renamed_metrics = {"trpo/max_kl": "trpo/kl_max_state"}

    def policy_step(self, objective):
        theta, diag = trpo_step(objective, self.config, self.rng)
        self.policy.theta = theta
        return diag
