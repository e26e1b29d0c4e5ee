"""Statuses and result types shared by every solver in :mod:`trustregion`.

Each solver returns a small frozen dataclass rather than printing or raising
mid-iteration: the iterate it ended on, the counts a user needs to compare
solvers, and a :class:`Status` whose members carry their own message and say
whether they count as success.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = [
    "Status",
    "CGStatus",
    "SubproblemStatus",
    "LineSearchStatus",
    "StepStatus",
    "MinimizeStatus",
    "CGResult",
    "SubproblemResult",
    "LineSearchResult",
    "NaturalStepResult",
]


class Status(enum.IntEnum):
    """Base class of the solver statuses.

    A member is an ``int`` (its code, as ``scipy.optimize`` numbers its
    statuses) with two attributes: :attr:`message`, the sentence a user reads,
    and :attr:`success`, whether the solve met its goal.
    """

    def __new__(cls, code: int, message: str, success: bool):
        member = int.__new__(cls, code)
        member._value_ = code
        member.message = message
        member.success = success
        return member

    def __str__(self) -> str:
        return self.message


class CGStatus(Status):
    """How :func:`trustregion.cg` ended.

    ``CONVERGED`` is decided on the residual ``r_k`` updated by the CG
    recurrence, not recomputed as ``b - A x_k`` (that would cost a product per
    iteration); :attr:`CGResult.residual_norm` reports the true residual.
    """

    CONVERGED = (0, "converged: the recurrence residual ||r_k|| <= max(rtol ||b||, atol)", True)
    MAX_ITERATIONS = (1, "stopped: the maximum number of iterations was reached", False)
    NONPOSITIVE_CURVATURE = (
        2,
        "stopped: p^T A p <= 0, so A is not positive definite; the last iterate is returned",
        False,
    )
    BREAKDOWN = (
        3,
        "stopped: breakdown, r^T z <= 0, so the preconditioner M is not positive definite",
        False,
    )
    NON_FINITE = (4, "stopped: a non-finite value appeared; the last finite iterate is "
                     "returned", False)


class SubproblemStatus(Status):
    """How a trust-region subproblem solver ended.

    ``INTERIOR`` means the returned step lies strictly inside the region and met
    the solver's own test: for :func:`trustregion.steihaug` a CG iterate whose
    residual ``||g + H p||`` met the tolerance (an approximate Newton step), for
    :func:`trustregion.dogleg` and :func:`trustregion.exact` the Newton step, for
    :func:`trustregion.cauchy_point` the minimiser along ``-g``.
    """

    INTERIOR = (
        0,
        "converged: the step lies inside the trust region and met the solver's stopping test "
        "(for steihaug, a CG iterate whose residual ||g + H p|| met the tolerance)",
        True,
    )
    BOUNDARY = (1, "converged: the step reached the trust-region boundary", True)
    NEGATIVE_CURVATURE = (
        2,
        "negative curvature found: the step follows it to the trust-region boundary",
        True,
    )
    MAX_ITERATIONS = (
        3,
        "stopped: the maximum number of iterations was reached; the last iterate is returned",
        False,
    )
    NON_FINITE = (4, "stopped: a non-finite value appeared; the last finite iterate is "
                     "returned", False)
    ZERO_GRADIENT = (5, "converged: the gradient is zero and no direction of negative curvature "
                        "is known", True)
    BREAKDOWN = (
        6,
        "stopped: breakdown, r^T M r <= 0, so the preconditioner M is not positive definite; "
        "the last iterate is returned",
        False,
    )


class LineSearchStatus(Status):
    """How :func:`trustregion.backtracking` ended."""

    ACCEPTED = (0, "accepted: a trial point passed the acceptance test", True)
    NO_ACCEPTABLE_STEP = (
        1,
        "failed: no trial point passed the acceptance test; the original point is returned",
        False,
    )


class StepStatus(Status):
    """How :func:`trustregion.natural_step` ended."""

    OK = (0, "ok: the step reaches the quadratic KL boundary", True)
    NONPOSITIVE_CURVATURE = (
        1,
        "no step: d^T F d <= 0 along the CG direction, so the step length is undefined",
        False,
    )
    ZERO_GRADIENT = (2, "no step: the gradient is zero", False)
    NON_FINITE = (3, "no step: a non-finite value appeared in the direction or its "
                     "curvature", False)
    NOT_ASCENT = (
        4,
        "no step: the CG direction d has g^T d <= 0, so it does not increase the linear model "
        "(possible from a warm start x0; start from zero)",
        False,
    )


class MinimizeStatus(Status):
    """How :func:`trustregion.minimize` ended."""

    CONVERGED = (0, "Optimization terminated successfully: ||g|| <= gtol.", True)
    MAX_ITERATIONS = (1, "Maximum number of iterations has been exceeded.", False)
    NON_FINITE = (2, "A non-finite value appeared at an accepted point.", False)
    RADIUS_COLLAPSED = (
        3,
        "The trust radius fell below machine precision relative to ||x||; no further progress "
        "possible.",
        False,
    )
    CALLBACK_STOP = (4, "The callback requested a stop.", False)


def _summary(value) -> str:
    """A short ``repr``: arrays by shape and dtype, tuples by length, nested results in brief."""
    if isinstance(value, np.ndarray):
        return f"<array shape={value.shape} dtype={value.dtype}>"
    if isinstance(value, tuple):
        return f"<tuple of length {len(value)}>"
    if isinstance(value, _Outcome):
        return f"{type(value).__name__}(status={value.status.name}, success={value.success})"
    if isinstance(value, Status):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


class _Outcome:
    """``success`` and ``message`` read off :attr:`status`; a ``repr`` that shows them."""

    status: Status

    @property
    def success(self) -> bool:
        return bool(self.status.success)

    @property
    def message(self) -> str:
        return self.status.message

    def __repr__(self) -> str:
        names = [f.name for f in fields(self)]
        parts = [f"status={_summary(self.status)}", f"success={self.success}",
                 f"message={self.message!r}"]
        parts += [f"{name}={_summary(getattr(self, name))}" for name in names if name != "status"]
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class CGResult(_Outcome):
    """Result of :func:`trustregion.cg`.

    Attributes
    ----------
    x : ndarray
        The last iterate (the solution when :attr:`success`).
    nit : int
        Number of CG iterations taken.
    nmatvec : int
        Number of products with ``A`` (including the one for the true residual).
    residual_norm : float
        The *true* residual ``||b - A x||``, recomputed from ``x`` at the end.
    residual_norms : ndarray
        The recurrence residual norms ``||r_0||, ..., ||r_nit||`` (length ``nit + 1``).
    status : CGStatus
        Why the iteration stopped; ``success`` and ``message`` follow from it.
    curvatures : ndarray
        ``p_j^T A p_j`` for every direction tried (diagnostic of definiteness).
    """

    x: np.ndarray
    nit: int
    nmatvec: int
    residual_norm: float
    residual_norms: np.ndarray
    status: CGStatus
    curvatures: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True, repr=False)
class SubproblemResult(_Outcome):
    """Result of a trust-region subproblem solver.

    The subproblem is ``min_p m(p) = g^T p + 1/2 p^T H p`` subject to
    ``||p|| <= radius`` (or ``||p||_M <= radius``).

    Attributes
    ----------
    p : ndarray
        The step.
    hits_boundary : bool
        Whether ``||p|| = radius`` (to rounding).
    status : SubproblemStatus
        Why the solver stopped.
    nit : int
        Iterations taken (CG iterations for Steihaug, Newton iterations for exact).
    model_decrease : float
        ``m(0) - m(p) >= 0``.
    lam : float or None
        The Lagrange multiplier of the norm constraint (exact solver only).
    nmatvec : int
        Products with ``H`` (0 for the dense reference solvers).
    """

    p: np.ndarray
    hits_boundary: bool
    status: SubproblemStatus
    nit: int
    model_decrease: float
    lam: float | None = None
    nmatvec: int = 0


@dataclass(frozen=True, repr=False)
class LineSearchResult(_Outcome):
    """Result of :func:`trustregion.backtracking`.

    Attributes
    ----------
    x : ndarray
        The accepted point, or the original point if the search failed.
    fun : float
        The objective at :attr:`x`.
    step : float
        The accepted step length (0.0 if the search failed).
    nsteps : int
        Number of trial points evaluated.
    status : LineSearchStatus
        Whether a trial point was accepted.
    trials : tuple of (float, float)
        ``(step, f(x + step d))`` for each trial point, in order.
    """

    x: np.ndarray
    fun: float
    step: float
    nsteps: int
    status: LineSearchStatus
    trials: tuple = ()


@dataclass(frozen=True, repr=False)
class NaturalStepResult(_Outcome):
    """Result of :func:`trustregion.natural_step`.

    Attributes
    ----------
    direction : ndarray
        ``d ~= F^{-1} g`` from conjugate gradient.
    step : ndarray
        ``beta d`` with ``beta = sqrt(2 max_kl / d^T F d)``; zeros when no step.
    beta : float
        The step length along :attr:`direction` (0.0 when no step).
    expected_improvement : float
        ``g^T step``, the first-order predicted improvement.
    quadratic_kl : float
        ``1/2 step^T F step``; equals ``max_kl`` for a successful step.
    curvature : float
        ``d^T F d``.
    cg : CGResult
        The inner CG solve.
    status : StepStatus
        Whether a step was taken.
    """

    direction: np.ndarray
    step: np.ndarray
    beta: float
    expected_improvement: float
    quadratic_kl: float
    curvature: float
    cg: CGResult
    status: StepStatus
