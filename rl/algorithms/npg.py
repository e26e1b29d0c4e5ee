"""Natural Policy Gradient (Kakade, 2001) with the normalised or a fixed step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import trustregion as tr
from rl.algorithms.base import AlgorithmConfig, PolicyOptimizer, check_range

__all__ = ["NPGConfig", "NPG", "npg_step"]


@dataclass
class NPGConfig(AlgorithmConfig):
    """NPG settings.

    Attributes
    ----------
    max_kl : float
        :math:`\\delta` of the normalised step :math:`\\eta = \\sqrt{\\delta / g^T F^{-1} g}`
        (0.01, as TRPO's trust region, so the two are comparable).
    step_size : float or None
        A fixed step :math:`\\eta` instead of the normalised one (``None``: normalised).
    damping : float
        Fisher damping :math:`F + \\lambda I` for CG (0.1, as TRPO).
    cg_iterations : int
        CG iterations for :math:`F^{-1} g` (10, as TRPO).
    cg_rtol : float
        CG relative residual tolerance.
    """

    max_kl: float = 0.01
    step_size: float | None = None
    damping: float = 0.1
    cg_iterations: int = 10
    cg_rtol: float = 1e-10

    def __post_init__(self):
        super().__post_init__()
        check_range("max_kl", self.max_kl, 0.0, None, low_open=True)
        if self.step_size is not None:
            check_range("step_size", self.step_size, 0.0, None, low_open=True)
        check_range("damping", self.damping, 0.0, None)
        check_range("cg_iterations", self.cg_iterations, 1, None, integer=True)
        check_range("cg_rtol", self.cg_rtol, 0.0, 1.0, low_open=True)


def npg_step(objective, config):
    """One natural-gradient step; returns ``(theta_new, diagnostics)``.

    :math:`\\theta_{k+1} = \\theta_k + \\eta\\, F^{-1} g` with
    :math:`\\eta = \\sqrt{\\delta / (g^T F^{-1} g)}` (the lecture's normalised step, for
    which :math:`(\\Delta\\theta)^T F \\Delta\\theta = \\delta`) or a fixed ``step_size``.
    There is no line search: that is what TRPO adds.
    """
    theta_old = objective.theta_old
    L_old, g = objective.value_and_gradient()
    F = objective.fisher_operator()
    if config.damping > 0:
        F = tr.damped(F, config.damping)
    res = tr.cg(F, g, maxiter=config.cg_iterations, rtol=config.cg_rtol)
    d = res.x
    gFg = float(g @ d)
    diag = {"cg/nit": res.nit, "cg/residual": float(res.residual_norm),
            "cg/status": res.status.name, "npg/grad_norm": float(np.linalg.norm(g)),
            "npg/natural_grad_norm": float(np.linalg.norm(d))}
    usable = res.status in (tr.CGStatus.CONVERGED, tr.CGStatus.MAX_ITERATIONS) and gFg > 0
    if not usable:
        diag.update({"npg/step_size": 0.0, "npg/kl": 0.0, "npg/expected_improvement": 0.0,
                     "npg/status": "no step: " + (res.message if gFg > 0 else "g^T F^-1 g <= 0")})
        return theta_old, diag
    eta = config.step_size if config.step_size is not None else np.sqrt(config.max_kl / gFg)
    theta = theta_old + eta * d
    diag.update({
        "npg/step_size": float(eta),
        "npg/expected_improvement": float(eta * gFg),
        "npg/surrogate_before": L_old,
        "npg/surrogate_after": float(objective.surrogate(theta)),
        "npg/kl": float(objective.mean_kl(theta)),
        "npg/status": "ok",
    })
    return theta, diag


class NPG(PolicyOptimizer):
    """Natural Policy Gradient: a CG-solved natural direction, no line search."""

    name = "npg"
    config_class = NPGConfig

    def policy_step(self, objective):
        theta, diag = npg_step(objective, self.config)
        self.policy.theta = theta
        return diag
