"""trustregion: verified conjugate gradient, trust-region subproblem solvers,
line search, a trust-region minimizer, and matrix-free curvature operators.

Everything works on flat float64 vectors and ``scipy.sparse.linalg.LinearOperator``;
nothing here knows about reinforcement learning.
"""

from trustregion.conjugate_gradient import cg
from trustregion.kronecker import KroneckerFactoredOperator, kronecker_factored_operator
from trustregion.line_search import armijo, backtracking
from trustregion.minimize import minimize
from trustregion.natural_step import natural_step
from trustregion.operators import (
    Linearization,
    damped,
    empirical_fisher_operator,
    fisher_operator,
    gauss_newton_operator,
    hessian_operator,
)
from trustregion.result import (
    CGResult,
    CGStatus,
    LineSearchResult,
    LineSearchStatus,
    MinimizeStatus,
    NaturalStepResult,
    Status,
    StepStatus,
    SubproblemResult,
    SubproblemStatus,
)
from trustregion.steihaug import steihaug
from trustregion.subproblem import cauchy_point, dogleg, exact

__all__ = [
    "armijo",
    "backtracking",
    "cauchy_point",
    "cg",
    "CGResult",
    "CGStatus",
    "damped",
    "dogleg",
    "empirical_fisher_operator",
    "exact",
    "fisher_operator",
    "gauss_newton_operator",
    "hessian_operator",
    "KroneckerFactoredOperator",
    "kronecker_factored_operator",
    "Linearization",
    "LineSearchResult",
    "LineSearchStatus",
    "minimize",
    "MinimizeStatus",
    "natural_step",
    "NaturalStepResult",
    "Status",
    "steihaug",
    "StepStatus",
    "SubproblemResult",
    "SubproblemStatus",
]

__version__ = "0.1.0"
