"""The TRPO paper's Algorithm 1: maximise L_pi(pi~) - C D_KL^max, in exact mode."""

from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np

import trustregion as tr
from rl.algorithms.base import (
    AlgorithmConfig,
    PolicyOptimizer,
    check_range,
    exact_mdp,
    require_tabular_policy,
)

__all__ = ["TRPOPenaltyConfig", "TRPOPenalty", "trpo_penalty_step"]

_SUBPROBLEMS = ("steihaug", "exact", "dogleg", "cauchy")


@dataclass
class TRPOPenaltyConfig(AlgorithmConfig):
    """Settings of the TRPO paper's Algorithm 1 (policy iteration with guaranteed improvement).

    The penalty :math:`C = 4\\epsilon\\gamma/(1-\\gamma)^2` is the theory's (TRPO paper
    Theorem 1), computed from the MDP at every iteration; the discount is the MDP's own,
    and ``gamma``, ``lam`` and ``normalize_advantages`` (inherited) are not used.

    Attributes
    ----------
    maxiter : int
        Iterations of :func:`trustregion.minimize` per policy step (10, this
        implementation's choice). The algorithm asks
        for the maximiser; any number of iterations keeps the guarantee, since the solver
        only accepts steps that increase the penalised objective.
    gtol : float
        Stop the inner solve when the gradient norm falls below ``gtol`` times its value at
        :math:`\\theta_{old}` (1e-8). The objective has kinks where the maximising state of
        the KL changes, so ``maxiter`` usually decides.
    subproblem : str
        Trust-region subproblem solver of :func:`trustregion.minimize` (``"steihaug"``, its
        default; ``"exact"``, ``"dogleg"``, ``"cauchy"``).
    """

    maxiter: int = 10
    gtol: float = 1e-8
    subproblem: str = "steihaug"

    def __post_init__(self):
        super().__post_init__()
        check_range("maxiter", self.maxiter, 1, None, integer=True)
        check_range("gtol", self.gtol, 0.0, 1.0)
        if self.subproblem not in _SUBPROBLEMS:
            raise ValueError(f"subproblem must be one of {_SUBPROBLEMS}; got "
                             f"{self.subproblem!r}")


def trpo_penalty_step(objective, config):
    """One iteration of the TRPO paper's Algorithm 1 on an exact objective.

    1. :math:`A_{\\pi_i}` exactly, :math:`\\epsilon = \\max_{s,a}|A_{\\pi_i}(s,a)|` and
       :math:`C = 4\\epsilon\\gamma/(1-\\gamma)^2` (:meth:`rl.TabularMDP.penalty_coefficient`).
    2. :math:`\\theta_{i+1} \\approx \\arg\\max_\\theta M_i(\\theta)`,
       :math:`M_i = L_{\\pi_i}(\\pi_\\theta) - C\\, D_{KL}^{\\max}(\\pi_i, \\pi_\\theta)`, by the
       trust-region method :func:`trustregion.minimize` on :math:`-M_i`. The objective's
       surrogate is :math:`(1-\\gamma)(L_{\\pi_i} - \\eta(\\pi_i))`, so
       :math:`M_i - \\eta(\\pi_i)` = ``surrogate / (1 - gamma) - C * max KL``.

    By the minorize-maximize argument (:doc:`/theory/monotonic_improvement`, eq. 5.7),
    :math:`\\eta(\\pi_{i+1}) - \\eta(\\pi_i) \\ge M_i(\\pi_{i+1}) - M_i(\\pi_i) \\ge 0`; the
    middle term is reported as ``trpo_penalty/guaranteed_improvement``.

    Returns ``(theta_new, diagnostics)`` with the keys ``trpo_penalty/penalty_coefficient``
    (:math:`C`), ``trpo_penalty/epsilon``, ``trpo_penalty/guaranteed_improvement``,
    ``trpo_penalty/surrogate_improvement`` (:math:`L_{\\pi_i}(\\pi_{i+1}) - \\eta(\\pi_i)`),
    ``trpo_penalty/mean_kl``, ``trpo_penalty/max_kl``, ``trpo_penalty/nit``,
    ``trpo_penalty/nfev`` and ``trpo_penalty/status`` (the solver's message).
    """
    mdp = exact_mdp(objective, "trpo-penalty")
    theta_old = objective.theta_old
    pi = np.asarray(objective.policy.probs(theta_old))
    C = float(mdp.penalty_coefficient(pi))
    epsilon = float(np.max(np.abs(mdp.advantages(pi))))
    scale = 1.0 / (1.0 - mdp.gamma)
    _, g = objective.value_and_gradient()

    def negative_penalised(theta):  # -(M_i(theta) - eta(pi_i)), traceable by autograd
        return -(scale * objective.surrogate(theta)
                 - C * anp.max(objective.kl_per_sample(theta)))

    g_norm = scale * float(np.linalg.norm(g))
    if g_norm == 0.0:
        theta, nit, nfev, status = theta_old, 0, 0, "no step: the surrogate's gradient is zero"
    else:
        res = tr.minimize(negative_penalised, theta_old, gtol=config.gtol * g_norm,
                          maxiter=config.maxiter, subproblem=config.subproblem)
        theta, nit, nfev, status = res.x, int(res.nit), int(res.nfev), str(res.message)
    pi_new = np.asarray(objective.policy.probs(theta))
    eta = float(mdp.performance(pi))
    diag = {
        "trpo_penalty/penalty_coefficient": C,
        "trpo_penalty/epsilon": epsilon,
        "trpo_penalty/guaranteed_improvement": float(mdp.lower_bound(pi, pi_new)) - eta,
        "trpo_penalty/surrogate_improvement": float(mdp.surrogate(pi, pi_new)) - eta,
        "trpo_penalty/mean_kl": float(mdp.mean_kl(pi, pi_new)),
        "trpo_penalty/max_kl": float(mdp.max_kl(pi, pi_new)),
        "trpo_penalty/nit": nit,
        "trpo_penalty/nfev": nfev,
        "trpo_penalty/status": status,
    }
    return theta, diag


class TRPOPenalty(PolicyOptimizer):
    """The TRPO paper's Algorithm 1: each step maximises :math:`L_\\pi - C\\, D_{KL}^{\\max}`.

    The theory's algorithm, before the approximations that make TRPO practical
    (:doc:`/theory/monotonic_improvement`): the penalty coefficient of Theorem 1 and the
    maximal KL over states, with exact advantages. It runs in exact mode only, on
    :meth:`PolicyObjective.exact <rl.algorithms.objective.PolicyObjective.exact>` of a
    :class:`~rl.policies.TabularSoftmax` policy; the diagnostics are those of
    :func:`trpo_penalty_step`.

    Examples
    --------
    >>> from rl.mdp import random_mdp
    >>> from rl.policies import TabularSoftmax
    >>> from rl.algorithms.objective import PolicyObjective
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> policy = TabularSoftmax(4, 2)
    >>> eta0 = float(mdp.performance(policy.probs()))
    >>> diag = TRPOPenalty(policy, None).policy_step(PolicyObjective.exact(mdp, policy))
    >>> gain = float(mdp.performance(policy.probs())) - eta0
    >>> bool(gain >= diag["trpo_penalty/guaranteed_improvement"] > 0)
    True
    """

    name = "trpo-penalty"
    config_class = TRPOPenaltyConfig

    def __init__(self, policy, baseline=None, config=None, *, seed=None):
        require_tabular_policy(policy, self.name)
        super().__init__(policy, baseline, config, seed=seed)

    def policy_step(self, objective):
        theta, diag = trpo_penalty_step(objective, self.config)
        self.policy.theta = theta
        return diag
