"""trustregion: verified conjugate gradient, trust-region subproblem solvers,
line search, a trust-region minimizer, and matrix-free curvature operators.

Everything works on flat float64 vectors and ``scipy.sparse.linalg.LinearOperator``;
nothing here knows about reinforcement learning.
"""

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

# conjugate_gradient
# steihaug
# subproblem
# line_search
# operators
# natural_step
# minimize

__version__ = "0.1.0"
