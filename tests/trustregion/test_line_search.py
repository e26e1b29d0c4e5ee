"""Backtracking line search and the Armijo sufficient-decrease test (N&W §3.1, Alg. 3.1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import trustregion as tr
from tests.strategies import finite_floats, spd_matrices, vectors
from trustregion.result import LineSearchStatus

EPS = np.finfo(np.float64).eps


@st.composite
def quadratic_descent(draw, *, max_n=6):
    """``(A, x, d)``: f(x) = 1/2 x^T A x with A SPD, and the steepest-descent direction d."""
    n = draw(st.integers(1, max_n))
    A = draw(spd_matrices(n, max_log10_cond=3.0))
    x = draw(vectors(n))
    assume(np.linalg.norm(x) > 1e-2)
    d = -A @ x
    return A, x, d


def quadratic(A):
    return lambda x: 0.5 * float(x @ A @ x)


@given(
    quadratic_descent(),
    finite_floats(0.1, 10.0),
    finite_floats(0.1, 0.9),
)
def test_backtracking_returns_first_accepted_trial(case, step, shrink):
    """Backtracking (N&W Alg. 3.1) tries t_k = step shrink^k in order and returns the first
    trial point x + t_k d that passes the test (default: f decreases); all earlier trials fail.
    Along a descent direction of a smooth f a small enough step decreases f, so it succeeds."""
    A, x, d = case
    f = quadratic(A)
    f0 = f(x)
    res = tr.backtracking(f, x, d, step=step, shrink=shrink, max_steps=200)
    assert res.status == LineSearchStatus.ACCEPTED and res.success
    k = res.nsteps - 1
    assert res.step == step * shrink**k
    assert np.array_equal(res.x, x + res.step * d)
    assert res.fun == f(res.x) and res.fun < f0
    assert len(res.trials) == res.nsteps
    for j, (t, value) in enumerate(res.trials[:-1]):
        assert t == step * shrink**j and value >= f0


@given(quadratic_descent(), finite_floats(1e-4, 0.9))
def test_armijo_condition_holds_at_accepted_point(case, c1):
    """With accept = armijo(f0, g^T d, x, d, c1) the accepted point satisfies the
    sufficient-decrease condition f(x + t d) <= f(x) + c1 t g^T d (N&W eq. 3.4), and every
    earlier (longer) trial violates it."""
    A, x, d = case
    f = quadratic(A)
    g = A @ x
    f0, slope = f(x), float(g @ d)
    res = tr.backtracking(f, x, d, accept=tr.armijo(f0, slope, x, d, c1=c1), max_steps=200)
    assert res.success
    assert res.fun <= f0 + c1 * res.step * slope
    for t, value in res.trials[:-1]:
        assert value > f0 + c1 * t * slope


@given(quadratic_descent())
def test_armijo_accepts_full_newton_step_on_quadratic(case):
    """For a convex quadratic the Newton step t = 1, d = -A^{-1} g gives f(x + d) = f(x) + g^T d /2,
    which satisfies Armijo for any c1 <= 1/2 (N&W §3.1): accepted at the first trial."""
    A, x, _ = case
    f = quadratic(A)
    g = A @ x
    d = -np.linalg.solve(A, g)
    res = tr.backtracking(f, x, d, accept=tr.armijo(f(x), g @ d, x, d, c1=0.25))
    assert res.success and res.nsteps == 1 and res.step == 1.0


@given(quadratic_descent(), st.integers(1, 8))
def test_failed_search_returns_original_point(case, max_steps):
    """If no trial passes, the search returns the original point, f(x), step 0 and the status
    NO_ACCEPTABLE_STEP after exactly max_steps trials; x itself is never modified."""
    A, x, d = case
    f = quadratic(A)
    x_before = x.copy()
    res = tr.backtracking(f, x, d, max_steps=max_steps, accept=lambda xc, fc: False)
    assert res.status == LineSearchStatus.NO_ACCEPTABLE_STEP and not res.success
    assert np.array_equal(res.x, x_before) and np.array_equal(x, x_before)
    assert res.fun == f(x_before) and res.step == 0.0
    assert res.nsteps == max_steps == len(res.trials)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_candidate_is_rejected(bad):
    """A trial value that is NaN or infinite is rejected without consulting the caller's test
    (even an always-true test): the first finite trial is accepted. -inf is not a decrease."""
    calls = []

    def f(x):
        return bad if np.linalg.norm(x) > 1.0 else float(x @ x)

    def accept(candidate_x, candidate_f):
        calls.append(candidate_f)
        return True

    x = np.array([0.5, 0.0])
    res = tr.backtracking(f, x, np.array([-8.0, 0.0]), accept=accept)
    assert res.success and np.isfinite(res.fun)
    assert all(np.isfinite(c) for c in calls) and len(calls) == 1
    assert res.nsteps == 4  # t = 1, 1/2, 1/4 land at |x| > 1; t = 1/8 lands at x = -0.5
    default = tr.backtracking(f, x, np.array([-8.0, 0.0]))
    assert default.success and np.isfinite(default.fun)


def test_non_finite_everywhere_fails_with_original_point():
    """If every trial value is NaN the search fails and returns the original point and f(x)."""
    res = tr.backtracking(lambda x: float("nan") if x[0] != 1.0 else 3.0, [1.0], [1.0])
    assert not res.success and res.x.tolist() == [1.0] and res.fun == 3.0


def test_overflowing_candidate_is_rejected():
    """A trial point whose coordinates overflow to inf is rejected without evaluating f."""
    seen = []

    def f(x):
        seen.append(x.copy())
        return float(np.sum(np.abs(x)))

    res = tr.backtracking(f, [1e308], [-1e308], step=4.0, max_steps=3)
    assert res.success and all(np.all(np.isfinite(v)) for v in seen)
    assert res.trials[0][0] == 4.0 and np.isnan(res.trials[0][1])


def test_caller_acceptance_test_trust_region_style():
    """A TRPO-style test, "objective improved and the step stays within a trust region", is
    honoured: the accepted point is the first trial meeting both conditions."""
    f = lambda x: float((x[0] - 3.0) ** 2)  # noqa: E731
    x = np.zeros(1)

    def accept(candidate_x, candidate_f):
        return candidate_f < f(x) and abs(candidate_x[0] - x[0]) <= 0.3

    res = tr.backtracking(f, x, np.array([6.0]), accept=accept)
    assert res.success and res.step == 1.0 / 32.0 and res.nsteps == 6
    assert abs(res.x[0]) <= 0.3 and res.fun < f(x)
    assert all(abs(t * 6.0) > 0.3 for t, _ in res.trials[:-1])


def test_bad_input_raises_value_error():
    """Bad input is rejected up front with a ValueError naming the argument."""
    f = lambda x: float(x @ x)  # noqa: E731
    x, d = np.ones(2), -np.ones(2)
    for shrink in (0.0, 1.0, -0.5, 2.0, np.nan):
        with pytest.raises(ValueError, match="shrink"):
            tr.backtracking(f, x, d, shrink=shrink)
    for step in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="step"):
            tr.backtracking(f, x, d, step=step)
    for max_steps in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_steps"):
            tr.backtracking(f, x, d, max_steps=max_steps)
    with pytest.raises(ValueError, match="direction"):
        tr.backtracking(f, x, np.ones(3))
    with pytest.raises(ValueError, match="x"):
        tr.backtracking(f, [np.nan, 1.0], d)
    with pytest.raises(ValueError, match="f\\(x\\)"):
        tr.backtracking(lambda x: float("nan"), x, d)
    with pytest.raises(ValueError, match="scalar"):
        tr.backtracking(lambda x: x, x, d)


def test_armijo_bad_input_raises_value_error():
    """armijo rejects a non-descent slope, c1 outside (0, 1), a zero or mismatched direction."""
    x, d = np.ones(2), -np.ones(2)
    with pytest.raises(ValueError, match="slope"):
        tr.armijo(1.0, 0.0, x, d)
    with pytest.raises(ValueError, match="slope"):
        tr.armijo(1.0, 2.0, x, d)
    with pytest.raises(ValueError, match="f0"):
        tr.armijo(np.nan, -1.0, x, d)
    for c1 in (0.0, 1.0, -1e-4):
        with pytest.raises(ValueError, match="c1"):
            tr.armijo(1.0, -1.0, x, d, c1=c1)
    with pytest.raises(ValueError, match="direction"):
        tr.armijo(1.0, -1.0, x, np.zeros(2))
    with pytest.raises(ValueError, match="direction"):
        tr.armijo(1.0, -1.0, x, np.ones(3))


def test_non_callable_f_or_accept_is_refused_up_front():
    """f and accept are checked before any trial point, with the argument named."""
    x, d = np.ones(2), -np.ones(2)
    with pytest.raises(ValueError, match="^f must be a callable"):
        tr.backtracking(3, x, d)
    with pytest.raises(ValueError, match="^accept must be a callable"):
        tr.backtracking(lambda z: float(z @ z), x, d, accept=3)


def test_accept_returning_an_array_is_refused():
    """An acceptance test must return one bool; an elementwise array is an error that says so."""
    with pytest.raises(ValueError, match="^accept must return a single bool"):
        tr.backtracking(lambda z: float(z @ z), np.ones(2), -np.ones(2),
                        accept=lambda xc, fc: xc > 0)


def test_direction_length_message_names_x():
    with pytest.raises(ValueError, match="^direction must have length 2 to match x"):
        tr.backtracking(lambda z: float(z @ z), np.ones(2), np.ones(3))


def test_complex_values_are_refused():
    """A complex start, direction or objective value is refused, not cast to its real part."""
    f = lambda z: float(z @ z)  # noqa: E731
    with pytest.raises(ValueError, match="^x must be real"):
        tr.backtracking(f, np.array([1.0 + 1j, 0.0]), -np.ones(2))
    with pytest.raises(ValueError, match="^direction must be real"):
        tr.backtracking(f, np.ones(2), -np.ones(2) + 0j)
    with pytest.raises(ValueError, match="^f must return a real scalar"):
        tr.backtracking(lambda z: complex(z @ z), np.ones(2), -np.ones(2))


def test_zero_dimensional_arrays_are_accepted_as_scalar_options():
    f = lambda z: float(z @ z)  # noqa: E731
    x, d = np.ones(2), -4.0 * np.ones(2)
    plain = tr.backtracking(f, x, d, step=1.0, shrink=0.5, max_steps=5)
    wrapped = tr.backtracking(f, x, d, step=np.array(1.0), shrink=np.array(0.5),
                              max_steps=np.array(5))
    assert wrapped.step == plain.step and wrapped.nsteps == plain.nsteps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1.0, -1.0, [np.nan, 0.0], [-1.0, 0.0]), r"^x contains NaN or inf"),
        ((1.0, -1.0, [0.0, 0.0], [-1.0]), r"^direction must have length 2 to match x;"),
        ((1.0, -1.0, [0.0, 0.0], [np.inf, 0.0]), r"^direction contains NaN or inf"),
        ((1.0, -1.0, [0.0, 0.0], [0.0, 0.0]), r"^direction must be non-zero$"),
        ((np.ones(2), -1.0, [0.0, 0.0], [-1.0, 0.0]), r"^f0 must return a scalar"),
        ((np.inf, -1.0, [0.0, 0.0], [-1.0, 0.0]), r"^f0 must be finite"),
        ((1.0, np.ones(2), [0.0, 0.0], [-1.0, 0.0]), r"^slope must return a scalar"),
        ((1.0, 0.5, [0.0, 0.0], [-1.0, 0.0]),
         r"^slope = grad f\(x\)\^T d must be finite and negative .*\(negate the direction, "
         r"or the objective if maximising\)$"),
    ],
)
def test_armijo_bad_input_message_starts_with_the_argument(args, message):
    """Each refusal of armijo is one line that starts with the argument's name (and, for a
    non-descent slope, says what to do instead)."""
    with pytest.raises(ValueError, match=message):
        tr.armijo(*args)


@pytest.mark.parametrize("c1", [True, "0.5", None])
def test_armijo_c1_must_be_a_real_number(c1):
    """c1 is a real number, not a bool (True == 1 would pass a numeric range check)."""
    with pytest.raises(ValueError, match=r"^c1 must be a real number in \(0, 1\)"):
        tr.armijo(1.0, -1.0, np.zeros(2), -np.ones(2), c1=c1)


def test_armijo_accepts_equality_and_rejects_one_ulp_above():
    """N&W eq. (3.4) is a non-strict inequality: f(x + t d) = f(x) + c1 t grad f^T d is
    accepted, the next float above it is not. Checked with c1 = 1/2 (exact binary
    arithmetic) and with the default c1 = 1e-4 (N&W §3.1), with t recovered from the
    candidate by projection onto d."""
    x, d = np.array([1.0, -2.0]), np.array([-2.0, 0.0])
    f0, slope = 3.0, -4.0
    half = tr.armijo(f0, slope, x, d, c1=0.5)
    bound = f0 + 0.5 * 0.25 * slope  # t = 1/4: 2.5, exact
    assert half(x + 0.25 * d, bound) is True
    assert half(x + 0.25 * d, np.nextafter(bound, np.inf)) is False
    default = tr.armijo(f0, slope, x, d)
    bound = f0 + 1e-4 * 1.0 * slope  # t = 1
    assert default(x + d, bound) is True
    assert default(x + d, np.nextafter(bound, np.inf)) is False
    # the step is read off the candidate: the bound at t = 1/2 is too high at t = 1
    assert default(x + 0.5 * d, f0 + 1e-4 * 0.5 * slope) is True
    assert default(x + d, f0 + 1e-4 * 0.5 * slope) is False


def test_accept_may_return_a_one_element_array_or_a_number():
    """accept's verdict may be a one-element array, list or tuple (a reduced numpy
    comparison) or a number; it is read as its element's truth value, so a rejection in a
    list ([False], itself a non-empty list) is a rejection. A longer array is refused with
    a message saying how to reduce it."""
    f = lambda z: float(z @ z)  # noqa: E731
    x, d = np.ones(2), -np.ones(2)  # step 2: f = 2, rejected; step 1: f = 0, accepted
    for wrap in (np.array, list, tuple, lambda v: int(v[0]), lambda v: float(v[0])):
        res = tr.backtracking(f, x, d, step=2.0, accept=lambda cx, cf, w=wrap: w([cf < 0.1]))
        assert res.status.name == "ACCEPTED"
        assert res.step == 1.0 and res.nsteps == 2 and res.fun == 0.0
    refused = (r"^accept must return a single bool; got an array of shape \(2,\) "
               r"\(reduce it with \.all\(\) or \.any\(\)\)$")
    with pytest.raises(ValueError, match=refused):
        tr.backtracking(f, x, d, accept=lambda cx, cf: np.array([True, False]))


def test_default_test_is_strict_decrease_and_default_budget_is_ten_trials():
    """Without accept a trial must lower f strictly: on a constant f nothing is accepted,
    after the default max_steps = 10 trials t = 1, 1/2, ..., 1/512 (default step and
    shrink), and the result is x itself with f(x)."""
    calls = []

    def f(z):
        calls.append(z.copy())
        return 3.0

    x, d = np.array([1.0, 2.0]), np.array([-1.0, 0.0])
    res = tr.backtracking(f, x, d)
    assert res.status.name == "NO_ACCEPTABLE_STEP" and res.step == 0.0
    assert [t for t, _ in res.trials] == [0.5**k for k in range(10)]
    assert res.nsteps == 10 and res.fun == 3.0
    np.testing.assert_array_equal(res.x, x)


def test_given_f0_is_the_reference_and_f_is_not_evaluated_at_x():
    """f0, when given, replaces f(x): plain decrease is measured against it, a failed
    search reports it, and f is called only at the trial points."""
    calls = []

    def f(z):
        calls.append(z.copy())
        return float(z @ z)

    x, d = np.ones(2), -np.ones(2)
    res = tr.backtracking(f, x, d, step=2.0, max_steps=3, f0=1.5)  # f = 2, 0.0, ...
    assert res.status.name == "ACCEPTED" and res.step == 1.0
    assert len(calls) == 2
    calls.clear()
    res = tr.backtracking(f, x, d, step=2.0, max_steps=1, f0=1.5)
    assert res.status.name == "NO_ACCEPTABLE_STEP" and res.fun == 1.5 and len(calls) == 1
    with pytest.raises(ValueError, match=r"^f0 must return a scalar"):
        tr.backtracking(f, x, d, f0=np.ones(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"f": 3}, r"^f must be a callable f\(x\) -> float; got int$"),
        ({"accept": 3},
         r"^accept must be a callable accept\(candidate_x, candidate_f\) -> bool, or None; "
         r"got int$"),
        ({"step": -1.0}, r"^step must be finite and > 0"),
        ({"shrink": True}, r"^shrink must be a real number in \(0, 1\); got True$"),
        ({"shrink": "0.5"}, r"^shrink must be a real number in \(0, 1\); got '0.5'$"),
        ({"f": lambda z: np.ones(2)}, r"^f must return a scalar"),
        ({"f": lambda z: np.ones(2), "accept": lambda cx, cf: True}, r"^f must return a scalar"),
        ({"f": lambda z: float("inf")},
         r"^f\(x\) = inf is not finite, so 'decrease' is undefined; start from a point where "
         r"f is finite or pass accept=\.\.\.$"),
    ],
)
def test_backtracking_refusals_say_what_to_pass(kwargs, message):
    """Every refusal names the argument first and says what it must be; f's output is
    checked at x (without accept) and at the trial points (with accept)."""
    args = {"f": lambda z: float(z @ z), "x": np.ones(2), "direction": -np.ones(2)} | kwargs
    with pytest.raises(ValueError, match=message):
        tr.backtracking(args.pop("f"), args.pop("x"), args.pop("direction"), **args)


def test_failed_search_checks_f_at_x_too():
    """With accept given, f(x) is first evaluated after a failed search (to report it);
    an array there is refused like one at a trial point."""
    x, d = np.ones(2), -np.ones(2)

    def f(z):
        return np.ones(2) if np.array_equal(z, x) else float(z @ z)

    with pytest.raises(ValueError, match=r"^f must return a scalar"):
        tr.backtracking(f, x, d, accept=lambda cx, cf: False, max_steps=2)
