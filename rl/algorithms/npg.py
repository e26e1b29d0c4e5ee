"""Natural Policy Gradient (Kakade, 2001) with the normalised or a fixed step."""

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

__all__ = ["NPGConfig", "NPG", "npg_step"]


@dataclass
class NPGConfig(AlgorithmConfig):
    """NPG settings.

    Attributes
    ----------
    max_kl : float
        :math:`\\delta` of the normalised step :math:`\\eta = \\sqrt{\\delta / g^T F^{-1} g}`
        (0.01, TRPO's default). This lecture-form step has
        :math:`\\tfrac12 \\Delta\\theta^T F \\Delta\\theta = \\delta / 2`: its KL is about
        half of TRPO's full step for the same value (TRPO scales by
        :math:`\\sqrt{2\\delta / g^T F^{-1} g}`); pass twice the value to compare the two at
        the same KL (:doc:`/theory/natural_gradient`).
    step_size : float or None
        A fixed step :math:`\\eta` instead of the normalised one (``None``: normalised).
    damping : float
        Fisher damping :math:`F + \\lambda I` for CG (0.1, as TRPO).
    cg_iterations : int
        CG iterations for :math:`F^{-1} g` (10, as TRPO).
    cg_rtol : float
        CG relative residual tolerance.
    fisher_fraction : float
        Fraction of the batch the Fisher-vector products use (1.0: all of it; TRPO paper
        §6 subsamples 10 %, as :class:`TRPOConfig` can).
    """

    max_kl: float = 0.01
    step_size: float | None = None
    damping: float = 0.1
    cg_iterations: int = 10
    cg_rtol: float = 1e-10
    fisher_fraction: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check_range("max_kl", self.max_kl, 0.0, None, low_open=True)
        if self.step_size is not None:
            check_range("step_size", self.step_size, 0.0, None, low_open=True)
        check_range("damping", self.damping, 0.0, None)
        check_range("cg_iterations", self.cg_iterations, 1, None, integer=True)
        check_range("cg_rtol", self.cg_rtol, 0.0, 1.0, low_open=True)
        check_range("fisher_fraction", self.fisher_fraction, 0.0, 1.0, low_open=True)


def npg_step(objective, config, rng=None):
    """One natural-gradient step; returns ``(theta_new, diagnostics)``.

    :math:`\\theta_{k+1} = \\theta_k + \\eta\\, F^{-1} g` with
    :math:`\\eta = \\sqrt{\\delta / (g^T F^{-1} g)}` (the lecture's normalised step, for
    which :math:`(\\Delta\\theta)^T F \\Delta\\theta = \\delta`) or a fixed ``step_size``.
    There is no line search: that is what TRPO adds.

    Every call returns the same diagnostics, each a plain Python value:

    ``npg/surrogate_before``, ``npg/surrogate_after``
        :math:`L(\\theta_k)` and :math:`L(\\theta_{k+1})` (after = before when no step is
        taken).
    ``npg/expected_improvement``
        :math:`g^T \\Delta\\theta = \\eta\\, g^T F^{-1} g`, the linear model's gain for the
        step taken (0.0 when no step is taken).
    ``npg/actual_improvement``
        ``surrogate_after - surrogate_before`` (0.0 when no step is taken).
    ``npg/kl``
        Mean :math:`D_{KL}(\\pi_k \\| \\pi_{k+1})` over the samples (0.0 when no step is
        taken).
    ``npg/eta``, ``npg/grad_norm``, ``npg/natural_grad_norm``
        :math:`\\eta`, the step size taken (0.0 when no step is taken; called
        ``npg/step_size`` before, beside the setting ``step_size``), :math:`\\|g\\|` and
        :math:`\\|F^{-1} g\\|`.
    ``npg/status``, ``cg/nit``, ``cg/residual``, ``cg/status``
        ``"ok"`` or why no step was taken, and CG's iterations, residual norm and status
        name.
    """
    theta_old = objective.theta_old
    L_old, g = objective.value_and_gradient()
    F = objective.fisher_operator(fraction=config.fisher_fraction, rng=rng)
    if config.damping > 0:
        F = tr.damped(F, config.damping)
    # the lecture's normalised step: (dtheta)^T F dtheta = delta, i.e. the quadratic KL
    # 1/2 dtheta^T F dtheta = delta / 2, with g^T d estimating g^T F^-1 g
    ns = tr.natural_step(g, F, config.max_kl / 2.0, maxiter=config.cg_iterations,
                         rtol=config.cg_rtol, normalization="gradient")
    d = ns.direction
    diag = {"cg/nit": ns.cg.nit, "cg/residual": float(ns.cg.residual_norm),
            "cg/status": ns.cg.status.name, "npg/grad_norm": float(np.linalg.norm(g)),
            "npg/natural_grad_norm": float(np.linalg.norm(d))}
    if not ns.success:  # keep theta_old, report the keys of a row with a step
        diag.update(no_step_diagnostics("npg", L_old, "no step: " + ns.status.message))
        diag["npg/eta"] = 0.0
        return theta_old, diag
    gFg = float(g @ d)
    eta = config.step_size if config.step_size is not None else ns.beta
    theta = theta_old + eta * d
    L_new = float(objective.surrogate(theta))
    diag.update({
        "npg/eta": float(eta),
        "npg/expected_improvement": float(eta * gFg),  # g^T (eta d), the step taken
        "npg/surrogate_before": L_old,
        "npg/surrogate_after": L_new,
        "npg/actual_improvement": L_new - L_old,
        "npg/kl": float(objective.mean_kl(theta)),
        "npg/status": "ok",
    })
    return theta, diag


@register_algorithm
class NPG(PolicyOptimizer):
    """Natural Policy Gradient: a CG-solved natural direction, no line search."""

    name = "npg"
    config_class = NPGConfig
    headline_metrics = {"KL": "npg/kl"}
    renamed_metrics = {"npg/step_size": "npg/eta"}

    def policy_step(self, objective):
        theta, diag = npg_step(objective, self.config, self.rng)
        self.policy.theta = theta
        return diag
