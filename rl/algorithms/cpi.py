"""Conservative policy iteration (Kakade & Langford, 2002), in exact mode on a tabular MDP."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.algorithms.base import (
    AlgorithmConfig,
    ExactPolicyOptimizer,
    check_range,
    exact_mdp,
)
from rl.algorithms.registry import register_algorithm

__all__ = ["CPIConfig", "CPI", "cpi_step", "logits_of"]


@dataclass
class CPIConfig(AlgorithmConfig):
    """Conservative policy iteration settings.

    The discount of the exact step is the MDP's own; ``gamma``, ``lam`` and
    ``normalize_advantages`` (inherited) are not used in exact mode.

    Attributes
    ----------
    alpha : float or None
        The mixture weight :math:`\\alpha` of :math:`\\pi_{new} = (1-\\alpha)\\pi +
        \\alpha\\pi'`. ``None`` (the default, Kakade & Langford 2002, §4): the
        :math:`\\alpha` that maximises the bound (:doc:`/theory/monotonic_improvement`,
        eq. 5.3), which guarantees improvement. A number in (0, 1] fixes it; ``alpha=1`` is
        (Howard's) exact policy iteration, whose greedy step improves :math:`\\eta` by the
        performance-difference lemma alone.
    """

    alpha: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.alpha is not None:
            check_range("alpha", self.alpha, 0.0, 1.0, low_open=True)


def logits_of(pi):
    """Logits :math:`\\theta = \\log \\pi` of an ``(S, A)`` policy matrix, flattened row-major.

    ``softmax(log pi) = pi`` to rounding. A zero probability (the greedy policy of exact
    policy iteration) gets the logit ``log(tiny)`` (about -708): its probability is then
    about 1e-308, zero to rounding, and the logits stay finite as a policy needs.
    """
    pi = np.asarray(pi, dtype=np.float64)
    return np.log(np.maximum(pi, np.finfo(np.float64).tiny)).reshape(-1)


def cpi_step(objective, config):
    """One conservative-policy-iteration step on an exact objective.

    1. :math:`A_\\pi` exactly; the greedy policy :math:`\\pi'(s) = \\arg\\max_a A_\\pi(s, a)`
       and its expected advantages :math:`\\bar A'(s) = \\max_a A_\\pi(s, a) \\ge 0`.
    2. The policy advantage :math:`\\mathbb A = \\sum_s \\rho_\\pi(s) \\bar A'(s)
       = L_\\pi(\\pi') - \\eta(\\pi)` and :math:`\\epsilon = \\max_s |\\bar A'(s)|`.
    3. The bound (:doc:`/theory/monotonic_improvement`, eq. 5.3) is
       :math:`\\eta(\\pi_{new}) - \\eta(\\pi) \\ge \\alpha \\mathbb A - c\\,\\alpha^2` with
       :math:`c = 2\\epsilon\\gamma/(1-\\gamma)^2` (TRPO paper eq. (6));
       its maximiser is :math:`\\alpha^\\star = \\min(1, \\mathbb A / (2c))`, the guaranteed
       improvement :math:`\\alpha^\\star \\mathbb A - c\\,(\\alpha^\\star)^2 > 0`.
    4. :math:`\\pi_{new} = (1-\\alpha)\\pi + \\alpha\\pi'` (Kakade & Langford's mixture), stored as
       the logits :func:`logits_of` of the tabular softmax policy.

    Returns ``(theta_new, diagnostics)``; every call returns the keys ``cpi/alpha``,
    ``cpi/policy_advantage`` (:math:`\\mathbb A`), ``cpi/epsilon``,
    ``cpi/guaranteed_improvement`` (the bound's right-hand side minus :math:`\\eta(\\pi)`, for
    the :math:`\\alpha` taken), ``cpi/surrogate_improvement``
    (:math:`L_\\pi(\\pi_{new}) - \\eta(\\pi) = \\alpha\\mathbb A`), ``cpi/mean_kl`` and
    ``cpi/max_kl`` (of :math:`\\pi_{new}` from :math:`\\pi`) and ``cpi/status``.
    When no action improves on :math:`\\pi` by more than rounding, :math:`\\pi` is optimal:
    no step, :math:`\\alpha = 0`.
    """
    mdp = exact_mdp(objective, "cpi")
    policy = objective.policy
    pi = np.asarray(policy.probs(objective.theta_old))
    A = np.asarray(mdp.advantages(pi))
    S = mdp.num_states
    greedy = np.argmax(A, axis=1)
    pi_greedy = np.eye(mdp.num_actions)[greedy]
    abar = A[np.arange(S), greedy]  # max_a A(s, a) >= 0, since sum_a pi A = 0
    rho = np.asarray(mdp.visitation(pi))  # unnormalised, sums to 1 / (1 - gamma)
    gamma = mdp.gamma
    # advantages within rounding of zero (the scale of Q times S eps) are ties, not gains
    Q = np.asarray(mdp.q_values(pi))
    tol = 64.0 * S * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(Q))))
    policy_advantage = float(rho @ abar)  # L_pi(pi') - eta(pi)
    epsilon = float(np.max(np.abs(abar)))
    c = 2.0 * epsilon * gamma / (1.0 - gamma) ** 2  # TRPO paper eq. (6)
    if float(np.max(abar)) <= tol:
        alpha, status = 0.0, "no step: no action improves on pi (optimal to rounding)"
    elif config.alpha is not None:
        alpha, status = float(config.alpha), "ok: fixed alpha"
    elif c == 0.0:  # gamma = 0: the bound has no penalty; the greedy step is exact
        alpha, status = 1.0, "ok: alpha = 1 (no penalty at gamma = 0)"
    else:
        alpha, status = min(1.0, policy_advantage / (2.0 * c)), "ok: alpha of the bound"
    pi_new = (1.0 - alpha) * pi + alpha * pi_greedy  # the mixture, eq. (5.2)
    theta = logits_of(pi_new) if alpha > 0 else objective.theta_old
    pi_stored = np.asarray(policy.probs(theta))
    diag = {
        "cpi/alpha": alpha,
        "cpi/policy_advantage": policy_advantage,
        "cpi/epsilon": epsilon,
        "cpi/guaranteed_improvement": alpha * policy_advantage - c * alpha ** 2,
        "cpi/surrogate_improvement": alpha * policy_advantage,
        "cpi/mean_kl": float(mdp.mean_kl(pi, pi_stored)) if alpha > 0 else 0.0,
        "cpi/max_kl": float(mdp.max_kl(pi, pi_stored)) if alpha > 0 else 0.0,
        "cpi/status": status,
    }
    return theta, diag


@register_algorithm
class CPI(ExactPolicyOptimizer):
    """Conservative policy iteration (Kakade & Langford, 2002) with exact advantages.

    Each step mixes the current policy with the greedy one, :math:`\\pi_{new} =
    (1-\\alpha)\\pi + \\alpha\\pi'`, with the :math:`\\alpha` of the paper's bound (or a fixed
    one; ``alpha=1`` is exact policy iteration). It runs in exact mode only, on
    :meth:`PolicyObjective.exact <rl.algorithms.objective.PolicyObjective.exact>` of a
    :class:`~rl.policies.TabularSoftmax` policy; the diagnostics are those of
    :func:`cpi_step`.

    Examples
    --------
    >>> from rl.mdp import random_mdp
    >>> from rl.policies import TabularSoftmax
    >>> from rl.algorithms.objective import PolicyObjective
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> policy = TabularSoftmax(4, 2)
    >>> eta0 = float(mdp.performance(policy.probs()))
    >>> diag = CPI(policy, None).policy_step(PolicyObjective.exact(mdp, policy))
    >>> gain = float(mdp.performance(policy.probs())) - eta0
    >>> bool(gain >= diag["cpi/guaranteed_improvement"] > 0)
    True
    """

    name = "cpi"
    config_class = CPIConfig
    step = staticmethod(cpi_step)
