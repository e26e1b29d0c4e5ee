"""Identities of the theory pages' worked questions, each checked numerically.

One test (or two) per labelled equation: preconditioned CG as plain CG on a transformed
system, the shift that makes a symmetric matrix positive definite, the degradation bound of
approximate policy iteration, Gibbs' inequality and the KL divergence of two Gaussians with
the same isotropic covariance, the gradient step as the maximiser of a linear model in a
Euclidean ball, the factor sqrt(2) between NPG's and TRPO's steps, the n-step advantage
estimator, and GAE as the exponential mixture of n-step estimators.

Tolerances are multiples of the float64 epsilon scaled by the size of the compared quantities
(and by a condition number where a linear solve is involved).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import trustregion as tr
from rl.advantages import gae
from rl.algorithms import NPGConfig, PolicyObjective, TRPOConfig, npg_step, trpo_step
from rl.distributions import Categorical, DiagGaussian
from rl.mdp import TabularMDP
from rl.policies import TabularSoftmax
from tests.strategies import (
    finite_floats,
    nonzero_vectors,
    random_mdps,
    spd_matrices,
    stochastic_matrices,
    symmetric_matrices,
    vectors,
)

EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------- shared pieces
def softmax_rows(logits):
    z = logits - np.max(logits, axis=1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=1, keepdims=True)


def mdp_tol(mdp, c=64.0):
    """``c * S * kappa * eps`` with ``kappa = (1 + gamma) / (1 - gamma)``, the value solve's
    condition number in the infinity norm."""
    return c * mdp.num_states * (1.0 + mdp.gamma) / (1.0 - mdp.gamma) * EPS


def value_scale(mdp):
    """``1 + max |R| / (1 - gamma)``: a bound on every ``|V|``, ``|Q|``, ``|A|`` and ``|eta|``."""
    return 1.0 + np.max(np.abs(mdp.R)) / (1.0 - mdp.gamma)


# ----------------------------------------------------------------------------- CG (N&W 5.9)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    spd_matrices(n, max_log10_cond=1.0), spd_matrices(n, max_log10_cond=1.0),
    nonzero_vectors(n, min_norm=1e-2))))
def test_preconditioned_cg_is_plain_cg_on_the_transformed_system(args):
    """N&W Exercise 5.9 (eq. pcg-change-of-variables): with M = C^{-1} C^{-T}, plain CG on
    (C^{-T} A C^{-1}) xhat = C^{-T} b, mapped back by x = C^{-1} xhat, produces the iterates
    of preconditioned CG on A x = b, and its residual norms are ||rhat_k|| = sqrt(r_k^T M r_k).

    The two runs round differently, and CG passes a perturbation of its state on amplified by
    up to about the condition number khat of C^{-T} A C^{-1} per iteration; iterate k is
    compared to 16 n eps khat^(k+1) relative to ||x*||, for as long as that is <= 1e-8 (always
    at least the first iterate). A wrong change of variables is off by O(1)."""
    A, M, b = args
    n = b.size
    C = np.linalg.cholesky(np.linalg.inv(M)).T  # M^{-1} = C^T C with C upper triangular
    Cinv = np.linalg.inv(C)
    A_hat = Cinv.T @ A @ Cinv
    A_hat = 0.5 * (A_hat + A_hat.T)
    b_hat = Cinv.T @ b

    xs, xs_hat = [], []
    pcg = tr.cg(A, b, M=M, rtol=1e-10, maxiter=n, callback=lambda xk: xs.append(xk.copy()))
    plain = tr.cg(A_hat, b_hat, rtol=1e-10, maxiter=n,
                  callback=lambda xk: xs_hat.append(xk.copy()))
    assert pcg.nit >= 1 and plain.nit >= 1
    x_star = np.linalg.solve(A, b)
    kappa_hat = np.linalg.cond(A_hat)
    compared = 0
    for k, (x, x_hat) in enumerate(zip(xs, xs_hat, strict=False)):
        tol = 16 * n * EPS * kappa_hat ** (k + 1)
        if k > 0 and tol > 1e-8:
            break
        err = np.linalg.norm(x - Cinv @ x_hat)
        assert err <= tol * np.linalg.norm(x_star), f"iterate {k + 1} differs by {err:.3e}"
        r = b - A @ x
        r_hat = b_hat - A_hat @ x_hat
        assert abs(np.linalg.norm(r_hat) - np.sqrt(r @ M @ r)) <= tol * np.linalg.norm(b_hat)
        compared += 1
    assert compared >= 1


# ----------------------------------------------------------------------------- trust region
@given(st.integers(1, 8).flatmap(lambda n: symmetric_matrices(n)),
       finite_floats(1e-3, 10.0), st.data())
def test_shifted_symmetric_matrix_is_positive_definite(B, c, data):
    """Eq. shift-positive-definite: for symmetric B and lambda >= 0 with lambda > -lambda_min(B),
    x^T (B + lambda I) x >= (lambda_min + lambda) ||x||^2 > 0, so B + lambda I has a
    Cholesky factor; a shift below -lambda_min leaves it indefinite, and Cholesky fails."""
    n = B.shape[0]
    lam_min = float(np.linalg.eigvalsh(B)[0])
    scale = 1.0 + np.max(np.abs(B))
    lam = max(0.0, -lam_min) + c
    shifted = B + lam * np.eye(n)
    np.linalg.cholesky(shifted)  # raises LinAlgError unless positive definite
    assert np.linalg.eigvalsh(shifted)[0] == pytest.approx(lam_min + lam, abs=64 * n * EPS * scale)
    assert np.linalg.eigvalsh(shifted)[0] >= c - 64 * n * EPS * scale
    x = data.draw(nonzero_vectors(n), label="x")
    assert x @ shifted @ x >= (lam_min + lam - 64 * n * EPS * scale) * (x @ x)
    if lam_min < -c:  # a shift that stops short of -lambda_min by c leaves a negative eigenvalue
        with pytest.raises(np.linalg.LinAlgError):
            np.linalg.cholesky(B + (-lam_min - c) * np.eye(n))


# ----------------------------------------------------------------------------- API degradation
@st.composite
def mdp_policy_and_noisy_q(draw):
    """A random MDP, a softmax policy pi, noise for pi's Q-values (the estimation error of an
    approximate policy-iteration step) and logits of a second, stochastic policy."""
    P, R, gamma, mu0 = draw(random_mdps(max_states=5, max_actions=3))
    mdp = TabularMDP(P, R, gamma, mu0)
    shape = (mdp.num_states, mdp.num_actions)
    logits = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-3.0, 3.0)))
    noise = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-1.0, 1.0)))
    other = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-3.0, 3.0)))
    return mdp, softmax_rows(logits), noise * value_scale(mdp), softmax_rows(other)


@given(mdp_policy_and_noisy_q())
def test_approximate_policy_iteration_degradation_bound(args):
    """Eq. api-degradation: with abar(s) = sum_a pi'(a|s) A_pi(s, a) and
    Delta_inf = min_s abar(s), eta(pi') >= eta(pi) + Delta_inf / (1 - gamma), i.e.
    eta(pi') >= eta(pi) - |Delta_inf| / (1 - gamma) when Delta_inf < 0; and symmetrically
    eta(pi') <= eta(pi) + max_s abar(s) / (1 - gamma). Checked for the greedy policy of a
    noisy Q estimate (an approximate policy-iteration step) and for a stochastic pi'."""
    mdp, pi, noise, pi_other = args
    A = mdp.advantages(pi)
    greedy = np.eye(mdp.num_actions)[np.argmax(mdp.q_values(pi) + noise, axis=1)]
    slack = mdp_tol(mdp) * value_scale(mdp) / (1.0 - mdp.gamma)
    eta = mdp.performance(pi)
    for pi_new in (greedy, pi_other):
        abar = np.sum(pi_new * A, axis=1)
        change = mdp.performance(pi_new) - eta
        assert change >= abar.min() / (1.0 - mdp.gamma) - slack
        assert change <= abar.max() / (1.0 - mdp.gamma) + slack


@given(hnp.arrays(np.float64, (1, 4), elements=finite_floats(-1.0, 1.0)),
       finite_floats(0.0, 0.99), stochastic_matrices(2, 4))
def test_degradation_bound_is_attained_when_every_state_has_the_same_advantage(R, gamma, pis):
    """Eq. api-degradation is tight: on a one-state MDP abar is the same at every state, and
    eta(pi') - eta(pi) = Delta_inf / (1 - gamma) exactly (no smaller factor than 1/(1-gamma)
    can replace it)."""
    mdp = TabularMDP(np.ones((1, 4, 1)), R, gamma, np.ones(1))
    pi, pi_new = pis[:1], pis[1:]
    delta_inf = float(np.min(np.sum(pi_new * mdp.advantages(pi), axis=1)))
    change = mdp.performance(pi_new) - mdp.performance(pi)
    assert change == pytest.approx(delta_inf / (1.0 - gamma),
                                   abs=mdp_tol(mdp) * value_scale(mdp) / (1.0 - gamma))


# ----------------------------------------------------------------------------- KL divergence
@given(st.integers(1, 6).flatmap(lambda k: st.tuples(
    hnp.arrays(np.float64, (4, k), elements=finite_floats(-5.0, 5.0)),
    hnp.arrays(np.float64, (4, k), elements=finite_floats(-5.0, 5.0)))),
    st.integers(1, 4).flatmap(lambda d: st.tuples(
        hnp.arrays(np.float64, (3, 2 * d), elements=finite_floats(-3.0, 3.0)),
        hnp.arrays(np.float64, (3, 2 * d), elements=finite_floats(-3.0, 3.0)))))
def test_gibbs_inequality_for_categorical_and_gaussian(logits, gauss):
    """Eq. kl-gibbs: KL(P || Q) >= 0 with equality iff P = Q (Cover & Thomas 2006, Thm. 2.6.3).
    For categorical distributions it is checked in the quantitative form of Pinsker's
    inequality, KL >= 2 TV^2, which is positive whenever P != Q; for diagonal Gaussians
    KL >= 0, KL(P || P) = 0, and KL > 0 for parameters that differ by 1e-6 or more (a
    smaller difference may give a KL below the smallest float)."""
    lp, lq = logits
    p, q = Categorical(lp), Categorical(lq)
    kl = np.asarray(p.kl(q))
    tv = 0.5 * np.sum(np.abs(softmax_rows(lp) - softmax_rows(lq)), axis=1)
    assert np.all(kl >= 2.0 * tv**2 - 64 * EPS * (1.0 + kl))
    assert np.all(np.abs(np.asarray(p.kl(p))) <= 16 * EPS)

    gp, gq = DiagGaussian(gauss[0]), DiagGaussian(gauss[1])
    kl_g = np.asarray(gp.kl(gq))
    assert np.all(kl_g >= 0.0)
    assert np.all(np.asarray(gp.kl(gp)) == 0.0)
    differ = np.max(np.abs(gauss[0] - gauss[1]), axis=1) >= 1e-6  # KL >= ~1e-15 there
    assert np.all(kl_g[differ] > 0.0)


@given(st.integers(1, 5).flatmap(lambda d: st.tuples(
    hnp.arrays(np.float64, (3, d), elements=finite_floats(-5.0, 5.0)),
    hnp.arrays(np.float64, (3, d), elements=finite_floats(-5.0, 5.0)))),
    finite_floats(-2.0, 2.0))
def test_kl_between_gaussians_with_equal_isotropic_covariance(means, log_sigma):
    """Eq. kl-gaussian-isotropic: KL(N(mu1, s^2 I) || N(mu2, s^2 I)) = ||mu1 - mu2||^2 / (2 s^2),
    for rl.distributions.DiagGaussian.kl; it equals the quadratic form 1/2 u^T F u of the
    Gaussian's Fisher matrix (1/s^2 on the mean) at u = (mu2 - mu1, 0), so the quadratic KL
    model is exact here; in one dimension it also equals the integral of p log(p/q)."""
    mu1, mu2 = means
    d = mu1.shape[1]
    log_std = np.full(d, log_sigma)
    p = DiagGaussian.from_mean_log_std(mu1, log_std)
    q = DiagGaussian.from_mean_log_std(mu2, log_std)
    sigma2 = math.exp(2.0 * log_sigma)
    expected = np.sum((mu1 - mu2) ** 2, axis=1) / (2.0 * sigma2)
    kl = np.asarray(p.kl(q))
    assert kl == pytest.approx(expected, rel=16 * d * EPS, abs=16 * d * EPS)
    u = np.concatenate([mu2 - mu1, np.zeros_like(mu1)], axis=1)
    quadratic = 0.5 * np.sum(u * DiagGaussian.fisher_vector(p.params, u), axis=1)
    assert kl == pytest.approx(quadratic, rel=16 * d * EPS, abs=16 * d * EPS)

    # one dimension, by quadrature of p log(p / q) (independent of the closed form)
    m1, m2, s = float(mu1[0, 0]), float(mu2[0, 0]), math.sqrt(sigma2)

    def integrand(x):
        log_ratio = ((x - m2) ** 2 - (x - m1) ** 2) / (2.0 * sigma2)
        density = math.exp(-((x - m1) ** 2) / (2.0 * sigma2)) / (s * math.sqrt(2 * math.pi))
        return density * log_ratio

    value, _ = scipy.integrate.quad(integrand, m1 - 40 * s, m1 + 40 * s, epsabs=1e-13,
                                    epsrel=1e-12, limit=200)
    one_d = (m1 - m2) ** 2 / (2.0 * sigma2)
    assert value == pytest.approx(one_d, rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------- steps
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(
    nonzero_vectors(n), vectors(n), st.lists(vectors(n), min_size=8, max_size=8))),
    finite_floats(1e-3, 10.0))
def test_gradient_step_maximises_the_linear_model_in_a_euclidean_ball(args, eps):
    """Eq. euclidean-step: argmax_{||D|| <= eps} g^T D = eps g / ||g||, with value eps ||g||
    (Cauchy-Schwarz); it is trustregion.natural_step with the metric F = I and
    max_kl = eps^2 / 2; and the penalised form argmax g^T D - ||D||^2 / (2 alpha) = alpha g is
    the gradient step with learning rate alpha."""
    g, d, others = args
    step = eps * g / np.linalg.norm(g)
    best = g @ step
    assert best == pytest.approx(eps * np.linalg.norm(g), rel=8 * EPS)
    for v in [d, *others]:
        if np.linalg.norm(v) > 0:
            assert g @ (eps * v / np.linalg.norm(v)) <= best * (1 + 8 * EPS)
    n = g.size
    ns = tr.natural_step(g, np.eye(n), 0.5 * eps**2, maxiter=n)
    assert ns.step == pytest.approx(step, rel=64 * EPS, abs=64 * EPS * eps)

    alpha = eps  # any positive learning rate
    penalised = lambda D: g @ D - (D @ D) / (2 * alpha)  # noqa: E731
    top = penalised(alpha * g)
    assert top == pytest.approx(0.5 * alpha * (g @ g), rel=8 * EPS)
    for v in [d, *others]:
        assert penalised(alpha * g + v) <= top + 8 * EPS * abs(top)


@st.composite
def exact_objectives(draw):
    """A random MDP with a softmax policy whose advantages are not all zero, a KL radius,
    a damping and a CG iteration count (truncated CG included)."""
    P, R, gamma, mu0 = draw(random_mdps(max_states=4, max_actions=3))
    mdp = TabularMDP(P, R, gamma, mu0)
    S, A = mdp.num_states, mdp.num_actions
    policy = TabularSoftmax(S, A)
    policy.theta = draw(hnp.arrays(np.float64, (S * A,), elements=finite_floats(-2.0, 2.0)))
    pi = policy.probs(policy.theta)
    assume(float(np.max(np.abs(mdp.advantages(pi)))) > 1e-6 * value_scale(mdp))
    delta = draw(finite_floats(1e-4, 0.1))
    damping = draw(finite_floats(1e-2, 1.0))
    iterations = draw(st.integers(1, S * A))
    return mdp, policy, delta, damping, iterations


@given(exact_objectives())
def test_npg_step_is_the_trpo_maximal_step_divided_by_sqrt_2(args):
    """Eq. npg-trpo-step-ratio: with the same max_kl = delta, damping and CG iterations,
    rl.algorithms.npg_step moves by eta d with eta = sqrt(delta / g^T d), whose quadratic KL
    1/2 D^T F D is delta / 2, while trpo_step's maximal step beta d (beta = sqrt(2 delta /
    d^T F d), trustregion.natural_step) has quadratic KL delta: the TRPO step is sqrt(2)
    times the NPG step. This holds for truncated CG too, because g^T d_k = d_k^T F d_k for
    every CG iterate started from zero."""
    mdp, policy, delta, damping, iterations = args
    objective = PolicyObjective.exact(mdp, policy)
    theta_old = objective.theta_old.copy()
    npg_cfg = NPGConfig(max_kl=delta, damping=damping, cg_iterations=iterations)
    theta_npg, npg_diag = npg_step(objective, npg_cfg)
    assert npg_diag["npg/status"] == "ok"
    step_npg = theta_npg - theta_old

    F = tr.damped(objective.fisher_operator(), damping)
    _, g = objective.value_and_gradient()
    ns = tr.natural_step(g, F, delta, maxiter=iterations, rtol=npg_cfg.cg_rtol)
    kappa = 1.0 + 2.0 / damping  # the softmax Fisher's eigenvalues lie in [0, 2]
    tol = 64 * iterations * kappa * EPS
    assert 0.5 * step_npg @ (F @ step_npg) == pytest.approx(delta / 2, rel=tol)
    assert ns.quadratic_kl == pytest.approx(delta, rel=tol)
    assert ns.step == pytest.approx(math.sqrt(2.0) * step_npg, rel=tol,
                                    abs=tol * np.linalg.norm(ns.step))

    trpo_cfg = TRPOConfig(max_kl=delta, damping=damping, cg_iterations=iterations)
    _, trpo_diag = trpo_step(objective, trpo_cfg)
    assert trpo_diag["trpo/expected_improvement"] == pytest.approx(
        math.sqrt(2.0) * npg_diag["npg/expected_improvement"], rel=tol)


# ----------------------------------------------------------------------------- n-step and GAE
@st.composite
def episodes(draw, max_len=25):
    """Rewards, values and next values of a rollout of length T holding one or two episodes:
    the first ends at a drawn step (terminated or truncated), the second is terminated,
    truncated or cut by the end of the rollout. Next values equal the following step's value
    inside an episode; at a truncation or a cut they are a drawn bootstrap value."""
    T = draw(st.integers(1, max_len))
    r = draw(hnp.arrays(np.float64, (T,), elements=finite_floats(-10.0, 10.0)))
    V = draw(hnp.arrays(np.float64, (T,), elements=finite_floats(-10.0, 10.0)))
    V_next = np.append(V[1:], draw(finite_floats(-10.0, 10.0)))
    term = np.zeros(T, dtype=bool)
    trunc = np.zeros(T, dtype=bool)
    ends = [T - 1]
    if T > 1 and draw(st.booleans()):
        ends.insert(0, draw(st.integers(0, T - 2)))
    for i, e in enumerate(ends):
        kind = draw(st.sampled_from(["terminated", "truncated", "cut"] if i == len(ends) - 1
                                    else ["terminated", "truncated"]))
        if kind == "terminated":
            term[e] = True
        elif kind == "truncated":
            trunc[e] = True
        if kind != "cut" and e < T - 1:
            V_next[e] = draw(finite_floats(-10.0, 10.0))  # the true final observation's value
    gamma = draw(st.one_of(st.just(0.0), st.just(1.0), finite_floats(0.0, 1.0)))
    lam = draw(st.one_of(st.just(0.0), st.just(1.0), finite_floats(0.0, 1.0)))
    return r, V, V_next, term, trunc, gamma, lam


def n_step_advantages(r, V, V_next, term, trunc, gamma):
    """``{t: [A^(1)_t, ..., A^(m)_t]}`` from rewards and values directly:
    A^(n)_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n}) - V(s_t), where V(s_{t+n}) is
    V[t+n] inside the episode and, at the episode's end (n = m, the steps left), the
    bootstrap value of the final observation, or 0 after a termination."""
    T = r.size
    done = term | trunc
    out = {}
    for t in range(T):
        e = t
        while e < T - 1 and not done[e]:
            e += 1
        m = e - t + 1
        after = 0.0 if term[e] else V_next[e]
        estimates = []
        for n in range(1, m + 1):
            ret = sum(gamma**k * r[t + k] for k in range(n))
            boot = V[t + n] if n < m else after
            estimates.append(ret + gamma**n * boot - V[t])
        out[t] = estimates
    return out


@given(episodes())
def test_n_step_advantage_telescopes_into_td_residuals(args):
    """Eq. n-step-advantage: A^(n)_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n}) - V(s_t)
    = sum_{l<n} gamma^l delta_{t+l}; it is rl.advantages.gae with lambda = 1 on the window
    t, ..., t+n-1 cut after n steps and bootstrapped from V(s_{t+n})."""
    r, V, V_next, term, trunc, gamma, _ = args
    delta = r + gamma * np.where(term, 0.0, V_next) - V
    for t, estimates in n_step_advantages(r, V, V_next, term, trunc, gamma).items():
        for n, a_n in enumerate(estimates, start=1):
            assert a_n == pytest.approx(sum(gamma**l * delta[t + l] for l in range(n)),
                                        abs=1e-10)
            window = slice(t, t + n)
            cut = np.zeros(n, dtype=bool)
            window_gae = gae(r[window], V[window], V_next[window], term[window], cut,
                             gamma, 1.0)
            assert window_gae[0] == pytest.approx(a_n, abs=1e-10)


@given(episodes())
def test_gae_is_the_exponential_mixture_of_n_step_advantages(args):
    """Eq. gae-n-step-mixture: on an episode with m = T_end - t steps left,
    GAE(gamma, lambda)_t = (1 - lambda) sum_{n=1}^{m-1} lambda^{n-1} A^(n)_t
    + lambda^{m-1} A^(m)_t, the infinite mixture (1 - lambda) sum_n lambda^{n-1} A^(n)_t with
    every n >= m equal to the Monte Carlo (bootstrapped) estimator A^(m)_t; the weights sum
    to one; lambda = 0 leaves A^(1), lambda = 1 leaves A^(m). Against rl.advantages.gae."""
    r, V, V_next, term, trunc, gamma, lam = args
    A = gae(r, V, V_next, term, trunc, gamma, lam)
    for t, estimates in n_step_advantages(r, V, V_next, term, trunc, gamma).items():
        m = len(estimates)
        weights = [(1.0 - lam) * lam ** (n - 1) for n in range(1, m)] + [lam ** (m - 1)]
        assert sum(weights) == pytest.approx(1.0, abs=64 * EPS)
        mixture = sum(w * a for w, a in zip(weights, estimates, strict=True))
        assert A[t] == pytest.approx(mixture, abs=1e-10)
        if lam == 0.0:
            assert A[t] == pytest.approx(estimates[0], abs=1e-10)
        if lam == 1.0:
            assert A[t] == pytest.approx(estimates[-1], abs=1e-10)
