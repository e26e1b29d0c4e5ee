"""The exact identities of policy optimization, checked on random tabular MDPs.

Every quantity comes from :class:`rl.mdp.TabularMDP`'s linear solves with
``M_pi = I - gamma P_pi``, whose infinity-norm condition number is at most
``kappa = (1 + gamma) / (1 - gamma)``. Tolerances are ``c * S * kappa * eps`` relative
to the size of the compared quantities (``c = 64`` covers the few solves and sums each
identity chains together); inequalities are checked with the same slack.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad, hessian
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.mdp import TabularMDP, two_action_bandit
from tests.strategies import finite_floats, random_mdps

EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------- helpers
def softmax_policy(theta, shape):
    """Tabular softmax ``pi(a|s) = exp(theta[s, a]) / sum_b exp(theta[s, b])``, traceable."""
    z = anp.reshape(theta, shape)
    z = z - anp.max(z, axis=1, keepdims=True)
    e = anp.exp(z)
    return e / anp.sum(e, axis=1, keepdims=True)


def policy_fn_for(mdp):
    shape = (mdp.num_states, mdp.num_actions)
    return lambda theta: softmax_policy(theta, shape)


def rel_tol(mdp, c=64.0):
    """``c * S * kappa * eps`` with ``kappa = (1 + gamma) / (1 - gamma)``, the solve's cond."""
    kappa = (1.0 + mdp.gamma) / (1.0 - mdp.gamma)
    return c * mdp.num_states * kappa * EPS


def value_scale(mdp):
    """``max |R| / (1 - gamma)``, a bound on every ``|V|``, ``|Q|`` and ``|eta|`` (plus 1)."""
    return 1.0 + np.max(np.abs(mdp.R)) / (1.0 - mdp.gamma)


def assert_close(actual, expected, tol, scale):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    err = np.max(np.abs(actual - expected))
    assert err <= tol * scale, f"error {err:.3e} > tol {tol * scale:.3e}"


@st.composite
def mdp_and_thetas(draw, k=1, max_states=5, max_actions=3, scale=3.0):
    """A random MDP (``tests.strategies.random_mdps``) and ``k`` softmax parameter vectors."""
    P, R, gamma, mu0 = draw(random_mdps(max_states=max_states, max_actions=max_actions))
    mdp = TabularMDP(P, R, gamma, mu0)
    n = mdp.num_states * mdp.num_actions
    thetas = [
        draw(hnp.arrays(np.float64, (n,), elements=finite_floats(-scale, scale))) for _ in range(k)
    ]
    return (mdp, *thetas)


# ----------------------------------------------------------------------------- evaluation
@given(mdp_and_thetas())
def test_bellman_expectation_equations(args):
    """Bellman expectation equations (Sutton & Barto 2018, eq. 3.14; Puterman 1994, §6.1):
    V_pi = r_pi + gamma P_pi V_pi, Q_pi(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V_pi(s'),
    and V_pi(s) = sum_a pi(a|s) Q_pi(s, a)."""
    mdp, theta = args
    pi = policy_fn_for(mdp)(theta)
    V, Q = mdp.value(pi), mdp.q_values(pi)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.sum(pi * mdp.R, axis=1)
    tol, scale = rel_tol(mdp), value_scale(mdp)
    assert_close(V, r_pi + mdp.gamma * P_pi @ V, tol, scale)
    assert_close(Q, mdp.R + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V), tol, scale)
    assert_close(V, np.sum(pi * Q, axis=1), tol, scale)
    assert_close(mdp.transition_matrix(pi), P_pi, 0.0, 1.0)


@given(mdp_and_thetas())
def test_advantages_average_to_zero_under_the_policy(args):
    """E_{a ~ pi(.|s)}[A_pi(s, a)] = 0 at every state, since V_pi(s) = E_a[Q_pi(s, a)]
    (Schulman et al. 2015, §2)."""
    mdp, theta = args
    pi = policy_fn_for(mdp)(theta)
    A = mdp.advantages(pi)
    assert_close(np.sum(pi * A, axis=1), 0.0, rel_tol(mdp), value_scale(mdp))
    assert_close(A, mdp.q_values(pi) - mdp.value(pi)[:, None], rel_tol(mdp), value_scale(mdp))


@given(mdp_and_thetas())
def test_visitation_mass_and_flow_equation(args):
    """Discounted visitation rho_pi(s) = sum_t gamma^t P(s_t = s) (Schulman et al. 2015, §2)
    sums to 1 / (1 - gamma), satisfies the flow equation rho = mu0 + gamma P_pi^T rho, and
    rho >= mu0 elementwise; the normalised d_pi = (1 - gamma) rho_pi sums to 1."""
    mdp, theta = args
    pi = policy_fn_for(mdp)(theta)
    rho, d = mdp.visitation(pi), mdp.visitation(pi, normalized=True)
    P_pi = mdp.transition_matrix(pi)
    tol, scale = rel_tol(mdp), 1.0 / (1.0 - mdp.gamma)
    assert_close(rho.sum(), 1.0 / (1.0 - mdp.gamma), tol, scale)
    assert_close(rho, mdp.mu0 + mdp.gamma * P_pi.T @ rho, tol, scale)
    assert np.all(rho >= mdp.mu0 - tol * scale)
    assert_close(d, (1.0 - mdp.gamma) * rho, 0.0, 1.0)
    assert_close(d.sum(), 1.0, tol, 1.0)


@given(mdp_and_thetas())
def test_visitation_equals_truncated_time_sum(args):
    """rho_pi = sum_{t<T} gamma^t mu0^T P_pi^t + O(gamma^T / (1 - gamma)): the linear solve
    agrees with the defining series (Schulman et al. 2015, §2), T chosen so the tail is
    below the solve's tolerance."""
    mdp, theta = args
    pi = policy_fn_for(mdp)(theta)
    P_pi = mdp.transition_matrix(pi)
    tol, scale = rel_tol(mdp), 1.0 / (1.0 - mdp.gamma)
    T = int(np.ceil(np.log(tol * (1.0 - mdp.gamma)) / np.log(mdp.gamma)))
    p, series = mdp.mu0.copy(), np.zeros(mdp.num_states)
    for t in range(T):
        series += mdp.gamma**t * p
        p = p @ P_pi
    assert_close(mdp.visitation(pi), series, 2.0 * tol, scale)


@given(mdp_and_thetas())
def test_performance_is_start_value_and_visitation_weighted_reward(args):
    """eta(pi) = mu0^T V_pi = sum_s rho_pi(s) sum_a pi(a|s) R(s, a)
    (Schulman et al. 2015, §2, definition of eta and of rho_pi)."""
    mdp, theta = args
    pi = policy_fn_for(mdp)(theta)
    eta = mdp.performance(pi)
    tol, scale = rel_tol(mdp), value_scale(mdp)
    assert_close(eta, mdp.mu0 @ mdp.value(pi), tol, scale)
    assert_close(eta, mdp.visitation(pi) @ np.sum(pi * mdp.R, axis=1), tol, scale)


# ----------------------------------------------------------------------------- TRPO theory
@given(mdp_and_thetas(k=2))
def test_performance_difference_lemma(args):
    """Performance-difference lemma (Kakade & Langford 2002, Lemma 6.1; Schulman et al.
    2015, eqs. (1)-(2)): eta(pi~) - eta(pi) = E_{tau ~ pi~}[sum_t gamma^t A_pi(s_t, a_t)]
    = sum_s rho_pi~(s) sum_a pi~(a|s) A_pi(s, a). The state-sum form is checked against
    the solves; the time-sum form against the series sum_t gamma^t mu0^T P_pi~^t abar."""
    mdp, theta, theta_new = args
    policy = policy_fn_for(mdp)
    pi, pi_new = policy(theta), policy(theta_new)
    A = mdp.advantages(pi)
    difference = mdp.performance(pi_new) - mdp.performance(pi)
    tol, scale = rel_tol(mdp), value_scale(mdp)
    assert_close(difference, mdp.visitation(pi_new) @ np.sum(pi_new * A, axis=1), tol, scale)

    abar = np.sum(pi_new * A, axis=1)  # expected advantage of pi~ over pi at each state
    P_new = mdp.transition_matrix(pi_new)
    T = int(np.ceil(np.log(tol * (1.0 - mdp.gamma)) / np.log(mdp.gamma)))
    p, series = mdp.mu0.copy(), 0.0
    for t in range(T):
        series += mdp.gamma**t * p @ abar
        p = p @ P_new
    assert_close(difference, series, 2.0 * tol, scale)


@given(mdp_and_thetas())
def test_surrogate_matches_performance_at_the_old_policy(args):
    """L_pi(pi) = eta(pi) (Schulman et al. 2015, eq. (4), zeroth order), because
    sum_a pi(a|s) A_pi(s, a) = 0."""
    mdp, theta = args
    pi = policy_fn_for(mdp)(theta)
    assert_close(mdp.surrogate(pi, pi), mdp.performance(pi), rel_tol(mdp), value_scale(mdp))


@given(mdp_and_thetas(k=3), st.floats(0.0, 1.0))
def test_surrogate_is_affine_in_the_new_policy(args, t):
    """L_pi(pi~) = eta(pi) + sum_s rho_pi(s) sum_a pi~(a|s) A_pi(s, a) (Schulman et al. 2015,
    eq. (3)) uses the OLD visitation rho_pi, so it is affine in pi~:
    L_pi((1 - t) pi1 + t pi2) = (1 - t) L_pi(pi1) + t L_pi(pi2) (eta itself is not)."""
    mdp, theta, theta1, theta2 = args
    policy = policy_fn_for(mdp)
    pi, pi1, pi2 = policy(theta), policy(theta1), policy(theta2)
    mixed = mdp.surrogate(pi, (1.0 - t) * pi1 + t * pi2)
    expected = (1.0 - t) * mdp.surrogate(pi, pi1) + t * mdp.surrogate(pi, pi2)
    assert_close(mixed, expected, rel_tol(mdp), value_scale(mdp))


@given(mdp_and_thetas())
def test_surrogate_gradient_matches_performance_gradient(args):
    """grad_theta L_{pi_theta_old}(pi_theta) at theta_old = grad_theta eta(pi_theta) at
    theta_old (Schulman et al. 2015, eq. (4), first order; Kakade & Langford 2002), both
    by autograd through the linear solves."""
    mdp, theta = args
    policy = policy_fn_for(mdp)
    pi_old = policy(theta)
    g_surrogate = grad(lambda th: mdp.surrogate(pi_old, policy(th)))(theta)
    g_eta = grad(lambda th: mdp.performance(policy(th)))(theta)
    assert_close(g_surrogate, g_eta, rel_tol(mdp), value_scale(mdp) / (1.0 - mdp.gamma))


@given(mdp_and_thetas())
def test_policy_gradient_theorem(args):
    """Policy-gradient theorem (Sutton et al. 2000, Thm. 1): grad eta(pi_theta) =
    sum_s rho_pi(s) sum_a grad pi_theta(a|s) Q_pi(s, a); TabularMDP.policy_gradient
    (Jacobian of the policy, exact rho and Q) equals autograd.grad of eta(policy_fn(theta))."""
    mdp, theta = args
    policy = policy_fn_for(mdp)
    g = mdp.policy_gradient(policy, theta)
    g_autograd = grad(lambda th: mdp.performance(policy(th)))(theta)
    assert g.shape == theta.shape
    assert_close(g, g_autograd, rel_tol(mdp), value_scale(mdp) / (1.0 - mdp.gamma))


@given(mdp_and_thetas())
def test_fisher_is_hessian_of_mean_kl_and_psd(args):
    """Fisher = Hessian of the mean KL at theta_old (Schulman et al. 2015, App. C; Kakade
    2001): sum_s d_pi(s) E_a[grad log pi grad log pi^T] = hess_theta sum_s d_pi_old(s)
    KL(pi_old(.|s) || pi_theta(.|s)) at theta = theta_old; and F is symmetric PSD."""
    mdp, theta = args
    policy = policy_fn_for(mdp)
    pi_old = policy(theta)
    F = mdp.fisher(policy, theta)
    H = hessian(lambda th: mdp.mean_kl(pi_old, policy(th)))(theta)
    n = theta.size
    assert F.shape == (n, n)
    assert_close(F, F.T, 0.0, 1.0)
    tol = rel_tol(mdp)
    assert_close(F, H, tol, 1.0)  # |F| <= sum_s d(s) max_a |grad log pi|^2 <= 2 for softmax
    assert np.min(np.linalg.eigvalsh(F)) >= -tol


@given(mdp_and_thetas(k=2), st.floats(0.0, 1.0))
def test_trpo_lower_bound_theorem_1(args, t):
    """TRPO Theorem 1 (Schulman et al. 2015, Thm. 1 and eq. (9)): with
    epsilon = max_{s,a} |A_pi(s, a)|, alpha = max_s D_TV(pi(.|s) || pi~(.|s)),
    eta(pi~) >= L_pi(pi~) - 4 epsilon gamma / (1 - gamma)^2 * alpha^2
              >= L_pi(pi~) - 4 epsilon gamma / (1 - gamma)^2 * max_s KL(pi(.|s) || pi~(.|s)),
    the second by D_TV^2 <= D_KL (eq. (8)). pi~ = softmax(theta + t (theta' - theta))."""
    mdp, theta, theta_other = args
    policy = policy_fn_for(mdp)
    pi, pi_new = policy(theta), policy(theta + t * (theta_other - theta))
    eta_new = mdp.performance(pi_new)
    L = mdp.surrogate(pi, pi_new)
    epsilon = np.max(np.abs(mdp.advantages(pi)))
    C = 4.0 * epsilon * mdp.gamma / (1.0 - mdp.gamma) ** 2
    alpha, kl_max = mdp.max_tv(pi, pi_new), mdp.max_kl(pi, pi_new)
    slack = rel_tol(mdp) * value_scale(mdp)
    assert alpha**2 <= kl_max + 1e3 * EPS  # eq. (8)
    assert eta_new >= L - C * alpha**2 - slack  # Theorem 1
    assert eta_new >= L - C * kl_max - slack  # eq. (9)
    assert_close(mdp.penalty_coefficient(pi), C, 0.0, 1.0)
    assert_close(mdp.lower_bound(pi, pi_new, divergence="tv"), L - C * alpha**2, 0.0, 1.0)
    assert_close(mdp.lower_bound(pi, pi_new), L - C * kl_max, 0.0, 1.0)


@given(mdp_and_thetas(k=2), st.floats(0.0, 1.0))
def test_conservative_policy_iteration_bound(args, alpha):
    """Kakade & Langford (2002), as Schulman et al. 2015 eqs. (5)-(6): for the mixture
    pi_new = (1 - alpha) pi + alpha pi', with epsilon = max_s |E_{a ~ pi'}[A_pi(s, a)]|,
    eta(pi_new) >= L_pi(pi_new) - 2 epsilon gamma / (1 - gamma)^2 * alpha^2."""
    mdp, theta, theta_prime = args
    policy = policy_fn_for(mdp)
    pi, pi_prime = policy(theta), policy(theta_prime)
    pi_new = (1.0 - alpha) * pi + alpha * pi_prime
    epsilon = np.max(np.abs(np.sum(pi_prime * mdp.advantages(pi), axis=1)))
    C_cpi = 2.0 * epsilon * mdp.gamma / (1.0 - mdp.gamma) ** 2
    bound = mdp.surrogate(pi, pi_new) - C_cpi * alpha**2
    assert mdp.performance(pi_new) >= bound - rel_tol(mdp) * value_scale(mdp)


@given(mdp_and_thetas(k=2))
def test_kl_divergences_are_nonnegative_and_vanish_at_equality(args):
    """Gibbs' inequality: KL(p || q) >= 0 with equality iff p = q (Cover & Thomas 2006,
    Thm. 2.6.3); hence mean KL and max KL are >= 0, 0 at pi~ = pi, and
    mean KL <= max KL (d_pi is a distribution); 0 <= D_TV^max <= 1."""
    mdp, theta, theta_new = args
    policy = policy_fn_for(mdp)
    pi, pi_new = policy(theta), policy(theta_new)
    mean_kl, max_kl = mdp.mean_kl(pi, pi_new), mdp.max_kl(pi, pi_new)
    tiny = 16.0 * EPS
    assert mean_kl >= -tiny and max_kl >= -tiny
    assert mean_kl <= max_kl + rel_tol(mdp) * max(1.0, max_kl)
    assert abs(mdp.mean_kl(pi, pi)) <= tiny and abs(mdp.max_kl(pi, pi)) <= tiny
    assert 0.0 <= mdp.max_tv(pi, pi_new) <= 1.0
    assert mdp.max_tv(pi, pi) == 0.0
    # state-independent policies: KL is the same at every state, and d_pi sums to 1
    p, q = np.tile(pi[0], (mdp.num_states, 1)), np.tile(pi_new[0], (mdp.num_states, 1))
    kl = np.sum(p[0] * np.log(p[0] / q[0]))
    assert_close(mdp.mean_kl(p, q), kl, rel_tol(mdp), max(1.0, kl))
    assert_close(mdp.max_kl(p, q), kl, rel_tol(mdp), max(1.0, kl))


def test_kl_handles_zero_probabilities():
    """KL(p || q) = sum_{a: p_a > 0} p_a log(p_a / q_a): actions outside p's support add 0,
    and q_a = 0 < p_a gives +inf (Cover & Thomas 2006, §2.3); gradients stay finite."""
    mdp = two_action_bandit()
    p = np.array([[1.0, 0.0]])
    assert float(mdp.max_kl(p, np.array([[0.5, 0.5]]))) == np.log(2.0)
    assert float(mdp.max_kl(np.array([[0.5, 0.5]]), p)) == np.inf
    g = grad(lambda q: mdp.mean_kl(p, q))(np.array([[0.5, 0.5]]))
    assert np.all(np.isfinite(g)) and g[0, 1] == 0.0


# ----------------------------------------------------------------------------- optimality
@given(mdp_and_thetas())
def test_optimal_policy_satisfies_bellman_optimality(args):
    """Policy iteration returns pi* with V* = max_a [R + gamma P V*] (Bellman optimality,
    Puterman 1994, Thm. 6.2.5), and V*(s) >= V_pi(s) for every policy pi."""
    mdp, theta = args
    pi_star = mdp.optimal_policy()
    V_star, Q_star = mdp.value(pi_star), mdp.q_values(pi_star)
    tol, scale = rel_tol(mdp), value_scale(mdp)
    assert np.all(np.sum(pi_star, axis=1) == 1.0) and set(np.unique(pi_star)) <= {0.0, 1.0}
    assert_close(V_star, Q_star.max(axis=1), tol, scale)
    assert np.all(V_star >= mdp.value(policy_fn_for(mdp)(theta)) - tol * scale)


# ----------------------------------------------------------------------------- the lecture
@given(finite_floats(-8.0, 8.0))
def test_two_action_bandit_matches_the_lecture(theta0):
    """Janson & Kakade (CS/Stat 184, 2023), one state, two actions, pi[1] = sigma(theta):
    J(theta) = 100 sigma + (1 - sigma), J'(theta) = 99 sigma (1 - sigma),
    F(theta) = sigma (1 - sigma), so the natural gradient J'/F = 99 for every theta."""
    mdp = two_action_bandit()

    def policy(theta):
        p = 1.0 / (1.0 + anp.exp(-theta[0]))
        return anp.reshape(anp.stack([p, 1.0 - p]), (1, 2))

    theta = np.array([theta0])
    sigma = 1.0 / (1.0 + np.exp(-theta0))
    J = mdp.performance(policy(theta))
    g = mdp.policy_gradient(policy, theta)
    F = mdp.fisher(policy, theta)
    assert abs(J - (100.0 * sigma + (1.0 - sigma))) <= 1e3 * EPS
    assert abs(g[0] - 99.0 * sigma * (1.0 - sigma)) <= 1e3 * EPS
    assert abs(F[0, 0] - sigma * (1.0 - sigma)) <= 16 * EPS
    # pi[2] = 1 - sigma loses relative accuracy eps / min(pi): that bounds the ratio's error
    assert abs(g[0] / F[0, 0] - 99.0) <= 99.0 * 64 * EPS / min(sigma, 1.0 - sigma)


@given(mdp_and_thetas())
def test_mean_kl_gradient_vanishes_at_the_old_policy(args):
    """grad_theta' mean KL(pi_theta || pi_theta') = 0 at theta' = theta (natural_gradient.rst,
    eq. kl-gradient-zero: sum_a pi grad log pi = grad sum_a pi = 0), so the KL is
    second order in the step; away from theta the gradient is not zero (the check can
    fail). Tolerance: rounding of the softmax, |grad log pi| <= 2."""
    mdp, theta = args
    policy = policy_fn_for(mdp)
    pi_old = policy(theta)
    kl_grad = grad(lambda th: mdp.mean_kl(pi_old, policy(th)))
    assert np.max(np.abs(kl_grad(theta))) <= 64 * mdp.num_actions * EPS
    away = theta + 0.5 * np.sign(np.arange(theta.size) % 2 - 0.5)
    if mdp.num_actions > 1 and float(mdp.mean_kl(pi_old, policy(away))) > 1e-6:
        assert np.max(np.abs(kl_grad(away))) > 1e-8
