"""The TRPO paper's Algorithm 1: maximise L_pi(pi~) - C D_KL^max, in exact mode."""

from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd import make_hvp

import trustregion as tr
from rl.algorithms.base import (
    AlgorithmConfig,
    ExactPolicyOptimizer,
    check_range,
    exact_mdp,
)
from rl.algorithms.registry import register_algorithm

__all__ = ["TRPOPenaltyConfig", "TRPOPenalty", "trpo_penalty_step"]



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
        if self.subproblem not in ("steihaug", "exact", "dogleg", "cauchy"):
            raise ValueError("subproblem must be one of ['steihaug', 'exact', 'dogleg', "
                             f"'cauchy']; got {self.subproblem!r}")


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

    def head(params, idx=None):  # -(M_i - eta(pi_i)) in the distribution parameters
        return -(scale * objective.surrogate_from(params, idx)
                 - C * anp.max(objective.kl_per_sample_from(params, idx)))

    # The tabular policy's parameters y(theta) (the logit rows of the samples' states) are
    # linear in theta, so the Hessian of head(y(theta)) is J^T H_y J exactly: derivatives
    # by autograd in y alone, pulled back by the policy's hand-written J and J^T.
    obs = objective.observations

    def fun_and_jac(theta):
        return objective.value_and_gradient_of(head, theta)

    at = {}  # the linearisation and the traced gradient at the last theta (a CG solve
    # asks for many products at one point)

    def hessp(theta, v):
        if "theta" not in at or not np.array_equal(at["theta"], theta):
            lin = objective.policy.linearize(obs, theta)
            at.update(theta=np.array(theta), lin=lin, hvp=make_hvp(head)(lin.output)[0])
        return at["lin"].vjp(at["hvp"](at["lin"].jvp(v)))

    g_norm = scale * float(np.linalg.norm(g))
    if g_norm == 0.0:
        theta, nit, nfev, status = theta_old, 0, 0, "no step: the surrogate's gradient is zero"
    else:
        # first radius: the length of the model's Cauchy step along the gradient (N&W
        # eq. (4.12) without the boundary), ||g||^3 / g^T H g, the scale of the tiny step C
        # allows; a radius of 1 would spend the first iterations shrinking
        gf = -scale * g  # the gradient of -M_i at theta_old (the KL's gradient is 0 there)
        curvature = float(gf @ hessp(theta_old, gf))
        radius = g_norm ** 3 / curvature if curvature > 0 else 1.0
        res = tr.minimize(fun_and_jac, theta_old, jac=True, hessp=hessp,
                          initial_radius=radius, max_radius=max(1000.0, radius),
                          gtol=config.gtol * g_norm, maxiter=config.maxiter,
                          subproblem=config.subproblem)
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


@register_algorithm
class TRPOPenalty(ExactPolicyOptimizer):
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
    step = staticmethod(trpo_penalty_step)
