"""Advantage estimation: discounted sums, GAE identities, baselines and value-function fits.

References: Schulman et al., "High-dimensional continuous control using generalized
advantage estimation", ICLR 2016 (GAE); Duan et al., ICML 2016 (linear feature baseline);
van Hasselt et al., NeurIPS 2016 (PopArt).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.advantages import (
    ConstantBaseline,
    LinearFeatureBaseline,
    MLPValueFunction,
    ZeroBaseline,
    compute_advantages,
    discounted_cumsum,
    explained_variance,
    gae,
    normalize_advantages,
    reward_to_go,
)
from rl.policies import ObservationNormalizer
from rl.sampling import Batch
from tests.strategies import finite_floats

EPS = np.finfo(np.float64).eps
discounts = st.floats(0.0, 1.0)


# ------------------------------------------------------------------------------ strategies


@st.composite
def rollouts(draw, *, max_T=12, max_N=4):
    """A (T, N) rollout: rewards, V(s_t), V(s'_t) and episode-end masks.

    ``next_values`` equals ``values[t + 1]`` inside an episode (where ``s'_t = s_{t+1}``
    in sampled data) and is drawn freely at episode ends and at the last step, where it
    is the value of the true final observation.
    """
    T = draw(st.integers(1, max_T))
    N = draw(st.integers(1, max_N))
    shape = (T, N)
    r = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-10.0, 10.0)))
    V = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-10.0, 10.0)))
    V_final = draw(hnp.arrays(np.float64, shape, elements=finite_floats(-10.0, 10.0)))
    term = draw(hnp.arrays(np.bool_, shape))
    trunc = draw(hnp.arrays(np.bool_, shape))
    V_next = V_final.copy()
    inside = ~(term | trunc)
    inside[-1] = False  # the rollout's last step always bootstraps from V(s'_{T-1})
    V_next[:-1][inside[:-1]] = V[1:][inside[:-1]]
    return r, V, V_next, term, trunc


def _episode_end(done_col, t):
    """Last step of the episode containing ``t`` (or of the rollout)."""
    T = done_col.shape[0]
    e = t
    while e < T - 1 and not done_col[e]:
        e += 1
    return e


def _gae_direct(r, V, V_next, term, trunc, gamma, lam):
    """GAE eq. (16) by direct summation: A_t = sum_{k=t}^{e(t)} (gamma lam)^(k-t) delta_k."""
    T, N = r.shape
    A = np.zeros((T, N))
    for j in range(N):
        done = term[:, j] | trunc[:, j]
        for t in range(T):
            e = _episode_end(done, t)
            for k in range(t, e + 1):
                boot = 0.0 if term[k, j] else gamma * V_next[k, j]
                delta = r[k, j] + boot - V[k, j]
                A[t, j] += (gamma * lam) ** (k - t) * delta
    return A


def _bootstrapped_return(r, V_next, term, trunc, gamma):
    """sum_{k=t}^{e} gamma^(k-t) r_k + gamma^(e-t+1) V(s'_e) [not terminated], by direct sums."""
    T, N = r.shape
    G = np.zeros((T, N))
    for j in range(N):
        done = term[:, j] | trunc[:, j]
        for t in range(T):
            e = _episode_end(done, t)
            G[t, j] = sum(gamma ** (k - t) * r[k, j] for k in range(t, e + 1))
            if not term[e, j]:
                G[t, j] += gamma ** (e - t + 1) * V_next[e, j]
    return G


def _magnitude(r, V, V_next, term, trunc, gamma, lam):
    """Σ (γλ)^(k-t) (|r_k| + γ|V(s'_k)| + |V(s_k)|): the sum of |terms| of eq. (16)."""
    return _gae_direct(np.abs(r), -np.abs(V), np.abs(V_next), term, trunc, gamma, lam)


def _rounding_bound(T, magnitude):
    """Forward-error bound of a length-T sum/recursion: 4 (T + 2) eps times the sum of |terms|."""
    return 4.0 * (T + 2) * EPS * magnitude + 1e-300


def _std(x):
    """Population standard deviation computed on scaled deviations (no underflow)."""
    centred = x - x.mean()
    m = np.abs(centred).max()
    return m * np.sqrt(np.mean((centred / m) ** 2))


def _batch(obs, next_obs, rewards, terminated, truncated, timesteps):
    T, N = rewards.shape
    return Batch(
        obs, np.zeros((T, N), np.int64), rewards, terminated, truncated, next_obs,
        np.zeros((T, N)), np.zeros((T, N, 2)), timesteps, np.zeros(0), np.zeros(0, np.int64),
    )


# ------------------------------------------------------------------------- discounted sums


@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 3)),
                 elements=finite_floats(-100.0, 100.0)),
    gamma=discounts,
)
def test_discounted_cumsum_matches_python_loop(x, gamma):
    """lfilter's reversed first-order filter equals the recursion y_t = x_t + γ y_{t+1}.

    Reference: the definition y_t = Σ_k γ^k x_{t+k} (Sutton & Barto eq. 3.8) computed by a
    Python loop; the two agree to the forward-error bound of a length-T recursion. Also
    ``axis=1`` on the transpose gives the same sums.
    """
    T = x.shape[0]
    expected = np.zeros_like(x)
    magnitude = np.zeros_like(x)
    acc = np.zeros(x.shape[1])
    acc_abs = np.zeros(x.shape[1])
    for t in range(T - 1, -1, -1):
        acc = x[t] + gamma * acc
        acc_abs = np.abs(x[t]) + gamma * acc_abs
        expected[t], magnitude[t] = acc, acc_abs
    y = discounted_cumsum(x, gamma)
    assert y.shape == x.shape
    assert np.all(np.abs(y - expected) <= _rounding_bound(T, magnitude))
    np.testing.assert_array_equal(discounted_cumsum(x.T, gamma, axis=1), y.T)


# ---------------------------------------------------------------------------------- GAE


@given(data=rollouts(), gamma=discounts)
def test_gae_lambda_zero_is_td_residual(data, gamma):
    """GAE(γ, 0) = δ_t = r_t + γ (1 - term_t) V(s'_t) - V(s_t) (GAE paper eq. 17)."""
    r, V, V_next, term, trunc = data
    delta = r + gamma * np.where(term, 0.0, V_next) - V
    A = gae(r, V, V_next, term, trunc, gamma, 0.0)
    np.testing.assert_array_equal(A, delta)


@given(data=rollouts(), gamma=discounts)
def test_gae_lambda_one_is_bootstrapped_return_minus_value(data, gamma):
    """GAE(γ, 1) = Σ_{k=t}^{e} γ^{k-t} r_k + γ^{e-t+1} V(s'_e)·[not terminated] - V(s_t).

    GAE paper eq. (18): the telescoping sum of TD residuals. ``e`` is the end of the
    episode containing ``t`` (or the rollout's last step); a truncated end bootstraps from
    the value of the true final observation, a terminated end does not. The reference is a
    direct sum per (t, env) column; tolerance is the forward-error bound of the sums.
    """
    r, V, V_next, term, trunc = data
    T = r.shape[0]
    expected = _bootstrapped_return(r, V_next, term, trunc, gamma) - V
    magnitude = _magnitude(r, V, V_next, term, trunc, gamma, 1.0) + np.abs(V)
    A = gae(r, V, V_next, term, trunc, gamma, 1.0)
    assert np.all(np.abs(A - expected) <= _rounding_bound(T, magnitude))


@given(data=rollouts(), gamma=discounts, lam=discounts)
def test_gae_equals_discounted_sum_of_td_residuals(data, gamma, lam):
    """Â_t = Σ_{l=0}^{e-t} (γλ)^l δ_{t+l}, cut at every episode end (GAE paper eq. 16).

    Reference: direct summation per column, so episode boundaries (terminated: no
    bootstrap; truncated: bootstrap from V(final obs); both: the sum stops) are checked
    for every λ, not only the endpoints.
    """
    r, V, V_next, term, trunc = data
    T = r.shape[0]
    expected = _gae_direct(r, V, V_next, term, trunc, gamma, lam)
    magnitude = _magnitude(r, V, V_next, term, trunc, gamma, lam)
    A = gae(r, V, V_next, term, trunc, gamma, lam)
    assert np.all(np.abs(A - expected) <= _rounding_bound(T, magnitude))


@given(data=rollouts(max_N=5), gamma=discounts, lam=discounts)
def test_gae_vectorised_equals_each_environment_alone(data, gamma, lam):
    """GAE over (T, N) equals GAE of each environment column on its own, bit for bit.

    The recursion couples time steps only, never environments: column j of the batched
    result is the (T,) computation on column j.
    """
    r, V, V_next, term, trunc = data
    A = gae(r, V, V_next, term, trunc, gamma, lam)
    for j in range(r.shape[1]):
        col = gae(r[:, j], V[:, j], V_next[:, j], term[:, j], trunc[:, j], gamma, lam)
        np.testing.assert_array_equal(A[:, j], col)


def test_gae_episode_boundaries_by_hand():
    """Terminated resets with no bootstrap; truncated bootstraps from V(final obs).

    One column, γ = 0.5, λ = 1, r = 1, V(s_t) = 0, episodes [0, 1] (terminated at 1),
    [2, 3] (truncated at 3, V(final) = 8), [4] (rollout end, V(s'_4) = 4):
    Â = [1 + 0.5, 1, 1 + 0.5 (1 + 0.5·8), 1 + 0.5·8, 1 + 0.5·4] = [1.5, 1, 3.5, 5, 3]
    (GAE eq. 18 evaluated by hand). V(s'_t) at the terminated step must be ignored.
    """
    r = np.ones(5)
    V = np.zeros(5)
    V_next = np.array([0.0, 123.0, 0.0, 8.0, 4.0])  # 123 sits behind a terminal state
    term = np.array([False, True, False, False, False])
    trunc = np.array([False, False, False, True, False])
    A = gae(r, V, V_next, term, trunc, 0.5, 1.0)
    np.testing.assert_array_equal(A, [1.5, 1.0, 3.5, 5.0, 3.0])
    both = gae(r, V, V_next, term, term | trunc, 0.5, 1.0)  # terminated wins over truncated
    np.testing.assert_array_equal(both, A)


# ---------------------------------------------------------------------------- reward to go


@given(data=rollouts(), gamma=discounts, s=st.integers(0, 11), bump=finite_floats(0.5, 5.0))
def test_reward_to_go_is_causal(data, gamma, s, bump):
    """A reward at step s enters G_t only for t ≤ s in the same episode, with weight γ^{s-t}.

    Causality (Williams 1992): G_t = Σ_{k=t}^{e(t)} γ^{k-t} r_k. Raising r_s by Δ leaves
    every later G_t and every other episode unchanged and raises G_t, t ≤ s in s's
    episode, by γ^{s-t} Δ (to the rounding of a length-T recursion).
    """
    r, _, _, term, trunc = data
    T, N = r.shape
    s = min(s, T - 1)
    done = term | trunc
    G = reward_to_go(r, done, gamma)
    r2 = r.copy()
    r2[s] += bump
    G2 = reward_to_go(r2, done, gamma)
    magnitude = reward_to_go(np.abs(r) + bump, done, gamma)
    for j in range(N):
        for t in range(T):
            same_episode = t <= s and _episode_end(done[:, j], t) >= s
            expected = gamma ** (s - t) * bump if same_episode else 0.0
            err = abs(G2[t, j] - G[t, j] - expected)
            assert err <= 2 * _rounding_bound(T, magnitude[t, j]), (t, j)
        # later steps are untouched bit for bit
        np.testing.assert_array_equal(G2[s + 1 :, j], G[s + 1 :, j])


@given(data=rollouts(), gamma=discounts, last=finite_floats(-10.0, 10.0))
def test_reward_to_go_equals_gae_lambda_one_with_zero_values(data, gamma, last):
    """reward_to_go = GAE(γ, 1) with V ≡ 0 and no bootstrap at episode ends.

    With V = 0 the TD residuals are the rewards, so eq. (16) with λ = 1 is the
    discounted reward-to-go; the rollout's last step bootstraps ``last_values`` in both.
    """
    r, _, _, term, trunc = data
    done = term | trunc
    V_next = np.zeros_like(r)
    V_next[-1] = last
    G = reward_to_go(r, done, gamma, last_values=np.full(r.shape[1], last))
    A = gae(r, np.zeros_like(r), V_next, done, np.zeros_like(done), gamma, 1.0)
    np.testing.assert_allclose(G, A, rtol=0, atol=_rounding_bound(r.shape[0], 10.0 * 20))


# --------------------------------------------------------------------- compute_advantages


class _SumOfObservation:
    """V(s) = sum(s) + t, a known baseline to check what compute_advantages evaluates."""

    def predict(self, obs, timesteps=None):
        obs = np.asarray(obs, dtype=np.float64)
        return obs.sum(axis=1) + (0.0 if timesteps is None else np.asarray(timesteps, float))


def test_compute_advantages_bootstraps_truncation_from_final_observation():
    """compute_advantages = gae(r, V(s_t), V(s'_t), term, trunc) and targets = Â + V(s_t).

    V is evaluated on ``observations`` (at t) and on ``next_observations`` (at t + 1, the
    TRUE final observation at an episode end); a terminated step ignores V(s'_t), a
    truncated step and the rollout's last step use it (GAE paper Alg. 1 with time limits).
    """
    rng = np.random.default_rng(3)
    T, N, d = 6, 3, 2
    obs = rng.normal(size=(T, N, d))
    next_obs = np.concatenate([obs[1:], rng.normal(size=(1, N, d))])
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[2, 0] = True
    truncated[3, 1] = True
    final = rng.normal(size=(2, d)) * 10.0
    next_obs[2, 0], next_obs[3, 1] = final[0], final[1]  # true final observations
    timesteps = np.tile(np.arange(T)[:, None], (1, N))
    rewards = rng.normal(size=(T, N))
    batch = _batch(obs, next_obs, rewards, terminated, truncated, timesteps)
    baseline = _SumOfObservation()
    A, targets = compute_advantages(batch, baseline, 0.9, 0.8, normalize=False)
    V = obs.sum(axis=2) + timesteps
    V_next = next_obs.sum(axis=2) + timesteps + 1
    np.testing.assert_allclose(A, gae(rewards, V, V_next, terminated, truncated, 0.9, 0.8))
    np.testing.assert_allclose(targets, A + V)
    # the truncated step's advantage uses V(final obs); the terminated step's does not
    assert A[3, 1] == pytest.approx(rewards[3, 1] + 0.9 * V_next[3, 1] - V[3, 1])
    assert A[2, 0] == pytest.approx(rewards[2, 0] - V[2, 0])
    A_norm, targets2 = compute_advantages(batch, baseline, 0.9, 0.8)
    np.testing.assert_allclose(A_norm, normalize_advantages(A))
    np.testing.assert_array_equal(targets2, targets)


@given(data=rollouts(), gamma=discounts)
def test_compute_advantages_zero_baseline_is_reward_to_go(data, gamma):
    """With ZeroBaseline and λ = 1, advantages = value targets = reward-to-go.

    V ≡ 0 makes every bootstrap zero, so GAE(γ, 1) is the discounted reward-to-go of each
    episode (eq. 18 with V = 0), on discrete (integer) observations too.
    """
    r, _, _, term, trunc = data
    T, N = r.shape
    states = np.zeros((T, N), np.int64)
    batch = _batch(states, states, r, term, trunc, np.zeros((T, N), np.int64))
    A, targets = compute_advantages(batch, ZeroBaseline(), gamma, 1.0, normalize=False)
    G = reward_to_go(r, term | trunc, gamma)
    np.testing.assert_allclose(A, G, rtol=0, atol=_rounding_bound(T, 10.0 * T))
    np.testing.assert_array_equal(targets, A)


# ---------------------------------------------------------------- normalisation, diagnostics


@given(a=hnp.arrays(np.float64, st.tuples(st.integers(2, 40), st.integers(1, 3)),
                    elements=finite_floats(-1e3, 1e3)))
def test_normalize_advantages_zero_mean_unit_std(a):
    """normalize(a) has mean 0 and population std 1; a constant array maps to zeros.

    (a - mean) / std: the mean of the result is at rounding level (≤ n eps · max|z|) and its
    std is 1 to a few n eps; with every entry equal the std is exactly 0 and the centred
    values (zeros) are returned with no division.
    """
    z = normalize_advantages(a)
    assert z.shape == a.shape
    if np.all(a == a.flat[0]):
        np.testing.assert_array_equal(z, 0.0)
        return
    n = a.size
    assert abs(z.mean()) <= 4 * n * EPS * np.abs(z).max()
    assert abs(z.std() - 1.0) <= 8 * n * EPS


@given(y=hnp.arrays(np.float64, st.integers(2, 50), elements=finite_floats(-100.0, 100.0)),
       shift=finite_floats(-10.0, 10.0))
def test_explained_variance_perfect_is_one_and_mean_is_zero(y, shift):
    """EV(y, y) = 1, EV(y + c, y) = 1 (EV ignores a constant bias), EV(mean(y), y) = 0.

    EV = 1 - Var[y - ŷ] / Var[y] (GAE paper §6). With Var[y] = 0 the value is defined as 0.
    Tolerances: Var of a rounding-level residual over Var[y].
    """
    if np.all(y == y[0]):
        assert explained_variance(y, y) == 0.0
        return
    assert explained_variance(y, y) == 1.0
    with np.errstate(over="ignore"):  # a shift that swamps y makes the bound infinite
        tol = 16 * y.size * EPS * ((np.abs(y).max() + abs(shift)) / _std(y)) ** 2
    assert abs(explained_variance(y + shift, y) - 1.0) <= tol
    assert abs(explained_variance(np.full_like(y, y.mean()), y)) <= tol


# ------------------------------------------------------------------------------- baselines


@settings(max_examples=20)
@given(
    obs_dim=st.integers(1, 3),
    w=hnp.arrays(np.float64, 10, elements=finite_floats(-5.0, 5.0)),
    seed=st.integers(0, 2**16),
)
def test_linear_baseline_recovers_linear_in_features_target(obs_dim, w, seed):
    """A target exactly linear in φ(s, t) = [o, o², τ, τ², τ³, 1] is fitted exactly.

    With reg = 0 the ridge solution is the least-squares solution w, so Φŵ = y up to the
    normal equations' forward error, ‖Φŵ - y‖ ≤ c κ(Φ)² eps ‖y‖ (Higham, *Accuracy and
    Stability of Numerical Algorithms*, §20.4); c = 10 here. Rllab's features (Duan et al.
    2016).
    """
    rng = np.random.default_rng(seed)
    n = 60
    obs = rng.uniform(-3.0, 3.0, size=(n, obs_dim))
    t = rng.integers(0, 200, size=n)
    baseline = LinearFeatureBaseline(reg=0.0)
    Phi = baseline.features(obs, t)
    coeffs = w[: Phi.shape[1]]
    y = Phi @ coeffs
    info = baseline.fit(obs, y, timesteps=t)
    kappa = np.linalg.cond(Phi)
    tol = 10 * kappa**2 * EPS * np.linalg.norm(y) + 1e-300
    assert np.linalg.norm(baseline.predict(obs, t) - y) <= tol
    assert info["value/loss"] <= info["value/loss_before"]


def test_linear_baseline_escalates_regularisation_on_singular_features():
    """Singular normal equations (a constant observation column) get a larger ridge λ.

    With o ≡ 0 the o and o² columns of Φ vanish, so ΦᵀΦ is singular and Cholesky fails at
    λ = 0; the fit must raise λ (rllab's retry rule), return finite weights and still fit
    the time-dependent target exactly up to that λ's bias.
    """
    n = 50
    obs = np.zeros((n, 2))
    t = np.arange(n)
    y = 3.0 - 2.0 * (t / 100.0) + (t / 100.0) ** 3
    baseline = LinearFeatureBaseline(reg=0.0)
    info = baseline.fit(obs, y, timesteps=t)
    assert info["value/reg"] > 0.0
    assert np.all(np.isfinite(baseline.coeffs))
    assert info["value/explained_variance"] > 1.0 - 1e-6


def test_constant_and_zero_baselines():
    """ConstantBaseline predicts the mean of its last targets (the least-squares constant),
    so its explained variance is 0; ZeroBaseline predicts 0 and never changes."""
    y = np.array([1.0, 2.0, 6.0])
    obs = np.zeros((3, 4))
    c = ConstantBaseline()
    info = c.fit(obs, y)
    np.testing.assert_array_equal(c.predict(obs), 3.0)
    assert info["value/loss"] == pytest.approx(np.var(y))
    assert info["value/explained_variance"] == pytest.approx(0.0, abs=1e-15)
    z = ZeroBaseline()
    assert z.fit(obs, y)["value/loss"] == pytest.approx(np.mean(y**2))
    np.testing.assert_array_equal(z.predict(obs), 0.0)


# ------------------------------------------------------------------------ MLP value function


SMOOTH_X = np.linspace(-2.0, 2.0, 512)[:, None]
SMOOTH_Y = np.sin(SMOOTH_X[:, 0]) + SMOOTH_X[:, 0] ** 2


@pytest.mark.parametrize(
    "optimizer, options",
    [
        ("trust-region", {"iterations": 12}),
        ("lbfgs", {"iterations": 100}),
        ("adam", {"iterations": 100, "learning_rate": 3e-3}),
    ],
)
def test_mlp_value_function_fits_smooth_target(optimizer, options):
    """Each solver fits y = sin x + x² (512 points) to explained variance ≥ 0.99.

    Threshold: a 24x24 tanh network (small, so full-batch products stay cheap) represents
    this smooth target to a residual variance far below 1% (L-BFGS run to convergence
    reaches EV > 0.9999), while a solver that does not move stays at the initial EV < 0.5,
    so 0.99 separates working from broken. For the trust region (ε = 0.05) each step can
    shrink the RMS error at most by the factor 1 - √(2ε) ≈ 0.68 (GAE paper §5
    constraint), so 12 steps allow a residual of 0.68¹² ≈ 1% of the initial RMS error,
    EV up to 0.9999: the bound is attainable with the constraint active. Measured
    (seed 0): EV 0.9992 (trust-region, 12 steps), 0.9999 (L-BFGS, 100 iterations),
    0.9989 (Adam, 100 epochs).
    """
    vf = MLPValueFunction(1, (24, 24), seed=0, optimizer=optimizer, **options)
    info = vf.fit(SMOOTH_X, SMOOTH_Y)
    assert info["value/loss"] < info["value/loss_before"]
    assert info["value/explained_variance_before"] < 0.5
    assert info["value/explained_variance"] >= 0.99
    assert explained_variance(vf.predict(SMOOTH_X), SMOOTH_Y) == info["value/explained_variance"]


@settings(max_examples=12)
@given(
    seed=st.integers(0, 2**16),
    max_change=st.sampled_from([0.005, 0.02, 0.1]),
    a=finite_floats(-3.0, 3.0),
    b=finite_floats(0.5, 5.0),
)
def test_trust_region_value_step_respects_its_constraint(seed, max_change, a, b):
    """Every trust-region step keeps mean((V_new - V_old)²) / (2σ²) ≤ ε and lowers the loss.

    GAE paper §5: σ² = mean((V_old(s) - y)²). Checked from outside on three consecutive
    one-step fits (the first also sets the output standardisation, which by PopArt leaves
    V_old unchanged). Tolerance: the constraint is enforced on the network's standardised
    outputs; predictions differ from them by an affine map whose rounding perturbs each
    V by ≤ 4 eps max|V|, which bounds the change in the ratio.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(128, 2))
    y = a + b * np.sin(2.0 * x[:, 0]) * x[:, 1]
    vf = MLPValueFunction(2, hidden_sizes=(16,), seed=seed, iterations=1, max_change=max_change)
    for _ in range(3):
        V_old = vf.predict(x)
        sigma2 = np.mean((V_old - y) ** 2)
        info = vf.fit(x, y)
        V_new = vf.predict(x)
        change = np.mean((V_new - V_old) ** 2) / (2.0 * sigma2)
        delta = 4 * EPS * max(np.abs(V_old).max(), np.abs(V_new).max())
        tol = (2 * np.sqrt(np.mean((V_new - V_old) ** 2)) * delta + delta**2) / (2 * sigma2)
        assert change <= max_change + tol
        assert info["value/max_step_kl"] <= max_change
        assert info["value/success"] == 1.0
        assert info["value/loss"] < info["value/loss_before"]


def test_target_standardisation_preserves_predictions():
    """Re-standardising the outputs to new target statistics changes no prediction (PopArt).

    μ + s (hW + b) = μ' + s' (hW' + b') with W' = W s/s', b' = (s b + μ - μ')/s'
    (van Hasselt et al. 2016, Alg. 1); checked to rounding of the affine map.
    """
    x = np.linspace(-1.0, 1.0, 32)[:, None]
    vf = MLPValueFunction(1, hidden_sizes=(8,), seed=1)
    vf.fit(x, 3.0 + x[:, 0])
    before = vf.predict(x)
    vf._restandardize(np.array([100.0, 400.0, -250.0]))
    assert (vf.target_mean, vf.target_scale) == (
        pytest.approx(250.0 / 3.0), pytest.approx(np.std([100.0, 400.0, -250.0]))
    )
    np.testing.assert_allclose(vf.predict(x), before, rtol=0, atol=64 * EPS * 400.0)


def test_mlp_value_function_uses_the_observation_normalizer():
    """With a shared normaliser, V(s) = net(normalize(s)): the same network given the
    normalised observations directly predicts the same values."""
    rng = np.random.default_rng(0)
    obs = rng.normal(loc=5.0, scale=3.0, size=(40, 3))
    normalizer = ObservationNormalizer((3,))
    normalizer.update(obs)
    with_norm = MLPValueFunction(3, hidden_sizes=(8,), seed=2, obs_normalizer=normalizer)
    plain = MLPValueFunction(3, hidden_sizes=(8,), seed=2)
    np.testing.assert_array_equal(with_norm.predict(obs), plain.predict(normalizer.normalize(obs)))


@pytest.mark.parametrize("optimizer", ["trust-region", "lbfgs", "adam"])
def test_state_dict_round_trip(optimizer):
    """load_state_dict(state_dict()) reproduces predictions exactly and, for Adam, the next
    fit too (moments and shuffling RNG are part of the state)."""
    x = np.linspace(-1.0, 1.0, 64)[:, None]
    y = np.cos(3.0 * x[:, 0])
    vf = MLPValueFunction(1, hidden_sizes=(8,), seed=0, optimizer=optimizer, iterations=2)
    vf.fit(x, y)
    clone = MLPValueFunction(1, hidden_sizes=(8,), seed=99, optimizer=optimizer, iterations=2)
    clone.load_state_dict(vf.state_dict())
    np.testing.assert_array_equal(clone.predict(x), vf.predict(x))
    vf.fit(x, y + 1.0)
    clone.fit(x, y + 1.0)
    np.testing.assert_array_equal(clone.predict(x), vf.predict(x))
    with pytest.raises(ValueError, match="obs_dim"):
        MLPValueFunction(2, hidden_sizes=(8,), seed=0).load_state_dict(vf.state_dict())
    with pytest.raises(ValueError, match="LinearFeatureBaseline"):
        vf.load_state_dict(LinearFeatureBaseline().state_dict())


def test_linear_and_constant_baseline_state_round_trip():
    """LinearFeatureBaseline and ConstantBaseline restore their fitted weights exactly."""
    rng = np.random.default_rng(1)
    obs, t = rng.normal(size=(30, 2)), np.arange(30)
    y = rng.normal(size=30)
    for make in (LinearFeatureBaseline, ConstantBaseline):
        b = make()
        b.fit(obs, y, timesteps=t)
        c = make()
        c.load_state_dict(b.state_dict())
        np.testing.assert_array_equal(c.predict(obs, t), b.predict(obs, t))


# ------------------------------------------------------------------------------ bad input


_r = np.zeros((4, 2))
_m = np.zeros((4, 2), bool)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: gae(_r, np.zeros((4, 3)), _r, _m, _m, 0.9, 0.9), "values"),
        (lambda: gae(_r, _r, np.zeros(4), _m, _m, 0.9, 0.9), "next_values"),
        (lambda: gae(_r, _r, _r, _m[:3], _m, 0.9, 0.9), "terminated"),
        (lambda: gae(_r, _r, _r, _m, _m + 2, 0.9, 0.9), "truncated"),
        (lambda: gae(_r, _r, _r, _m, _m, 1.5, 0.9), "gamma"),
        (lambda: gae(_r, _r, _r, _m, _m, 0.9, -0.1), "lam"),
        (lambda: gae(_r + np.nan, _r, _r, _m, _m, 0.9, 0.9), "rewards"),
        (lambda: discounted_cumsum(_r, float("nan")), "gamma"),
        (lambda: reward_to_go(_r, _m[:, :1], 0.9), "dones"),
        (lambda: reward_to_go(_r, _m, 0.9, last_values=np.zeros(3)), "last_values"),
        (lambda: normalize_advantages(np.array([1.0, np.inf])), "a"),
        (lambda: explained_variance(np.zeros(3), np.zeros(4)), "pred"),
        (lambda: MLPValueFunction(2, seed=0).predict(np.zeros((5, 3))), "obs"),
        (lambda: MLPValueFunction(2, seed=0).fit(np.zeros((5, 2)), np.zeros(4)), "targets"),
        (lambda: MLPValueFunction(2, seed=0, optimizer="sgd"), "optimizer"),
        (lambda: MLPValueFunction(2, seed=0, max_change=0.0), "max_change"),
        (lambda: LinearFeatureBaseline(reg=-1.0), "reg"),
        (lambda: LinearFeatureBaseline().fit(np.zeros((5, 2)), np.zeros(5), np.zeros(4)),
         "timesteps"),
        (lambda: compute_advantages(
            _batch(np.zeros((4, 2, 1)), np.zeros((4, 2, 1)), _r, _m, _m, np.zeros((4, 2))),
            ZeroBaseline(), 0.9, 2.0), "lam"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    """Shape mismatches, non-finite values and γ, λ outside [0, 1] raise ValueError up front,
    and the message names the offending argument."""
    with pytest.raises(ValueError, match=name):
        call()


class _CountingBaseline:
    """A baseline wrapper that counts the rows it is asked to predict."""

    def __init__(self, inner):
        self.inner, self.rows = inner, 0

    def predict(self, obs, timesteps=None):
        self.rows += np.asarray(obs).shape[0]
        return self.inner.predict(obs, timesteps)


@pytest.mark.parametrize("baseline_kind", ["mlp", "linear"])
def test_compute_advantages_predicts_next_values_only_where_they_are_new(baseline_kind):
    """On a sampled batch V(s'_t) = V(s_{t+1}) wherever no episode ended, so only episode
    ends and the last step are predicted; the advantages equal those from predicting every
    next observation. A batch without that structure falls back to predicting them all."""
    from rl.envs import make_vector_env
    from rl.policies import CategoricalMLP
    from rl.sampling import SinglePathSampler

    venv = make_vector_env("CartPole-v1", 3)
    batch = SinglePathSampler(venv, CategoricalMLP(4, 2, (8,), seed=0), 60, seed=1).sample()
    venv.close()
    T, N = batch.rewards.shape
    if baseline_kind == "mlp":
        inner = MLPValueFunction(4, (16,), seed=0)
    else:
        inner = LinearFeatureBaseline()
        inner.fit(batch.flat("observations"), np.arange(T * N, dtype=float),
                  batch.flat("timesteps"))
    counting = _CountingBaseline(inner)
    A, targets = compute_advantages(batch, counting, 0.99, 0.95, normalize=False)
    ends = int(np.sum(batch.terminated | batch.truncated))
    assert ends > 0
    ends_before_last = int(np.sum((batch.terminated | batch.truncated)[:-1]))
    assert counting.rows == T * N + ends_before_last + N  # V(s), then ends and the last step
    V = inner.predict(batch.flat("observations"), batch.flat("timesteps")).reshape(T, N)
    V_next = inner.predict(batch.flat("next_observations"),
                           batch.flat("timesteps") + 1).reshape(T, N)
    expected = gae(batch.rewards, V, V_next, batch.terminated, batch.truncated, 0.99, 0.95)
    np.testing.assert_allclose(A, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(targets, expected + V, rtol=1e-12, atol=1e-12)
    # a next observation that is not the following observation: every row is predicted
    changed = dataclasses.replace(batch, next_observations=batch.next_observations + 0.5)
    counting.rows = 0
    compute_advantages(changed, counting, 0.99, 0.95, normalize=False)
    assert counting.rows == 2 * T * N


def test_mlp_value_function_reuses_a_prediction_only_for_the_same_weights_and_inputs():
    vf = MLPValueFunction(3, (8,), seed=0)
    x = np.random.default_rng(0).standard_normal((20, 3))
    first = vf.predict(x)
    first[:] = 7.0  # the caller owns the returned array
    again = vf.predict(x)
    np.testing.assert_array_equal(again, vf.net.forward_numpy(x)[:, 0])
    x2 = x.copy()
    x2[3, 1] += 1e-9
    np.testing.assert_array_equal(vf.predict(x2), vf.net.forward_numpy(x2)[:, 0])
    vf.fit(x, np.arange(20.0))  # new weights and output scaling
    after = vf.predict(x)
    expected = vf.target_mean + vf.target_scale * vf.net.forward_numpy(x)[:, 0]
    np.testing.assert_allclose(after, expected, rtol=1e-15)
    assert not np.allclose(after, again)


# ------------------------------------------------------------------- state, repr, settings


def test_a_diverged_adam_fit_leaves_the_optimizer_state_unpoisoned():
    """Targets that overflow float32 make the fitted weights non-finite: the fit reports
    success 0, keeps the network, and restores Adam's m, v and t, so the next fit on
    ordinary targets succeeds (before, m stayed NaN and every later fit failed)."""
    x = np.linspace(-1.0, 1.0, 32)[:, None]
    vf = MLPValueFunction(1, hidden_sizes=(8,), seed=0, optimizer="adam", iterations=2,
                          minibatch_size=16, normalize_targets=False, dtype="float32")
    vf.fit(x, np.sin(x[:, 0]))
    params, adam = vf.params, vf._adam.state_dict()
    with np.errstate(over="ignore", invalid="ignore"):
        info = vf.fit(x, np.full(32, 1e39))  # finite in float64, inf in float32
    assert info["value/success"] == 0.0
    np.testing.assert_array_equal(vf.params, params)
    restored = vf._adam.state_dict()
    assert restored["t"] == adam["t"] == 4
    np.testing.assert_array_equal(restored["m"], adam["m"])
    np.testing.assert_array_equal(restored["v"], adam["v"])
    info = vf.fit(x, 2.0 * x[:, 0])
    assert info["value/success"] == 1.0 and info["value/loss"] < info["value/loss_before"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"time_scale": 0}, r"state\['time_scale'\] must be a finite number > 0"),
        ({"obs_clip": -1.0}, r"state\['obs_clip'\] must be a finite number > 0"),
        ({"reg": float("nan")}, r"state\['reg'\] must be a real number >= 0"),
        ({"reg": float("inf")}, r"state\['reg'\] must be finite"),
    ],
)
def test_linear_baseline_load_state_dict_checks_like_the_constructor(change, match):
    """A state with time_scale 0 or obs_clip < 0 used to load and predict NaN; it is refused
    with the constructor's checks, and the baseline is left as it was."""
    rng = np.random.default_rng(0)
    obs, t, y = rng.normal(size=(20, 2)), np.arange(20), rng.normal(size=20)
    b = LinearFeatureBaseline()
    b.fit(obs, y, timesteps=t)
    before = b.predict(obs, t)
    with pytest.raises(ValueError, match=match):
        b.load_state_dict({**b.state_dict(), **change})
    np.testing.assert_array_equal(b.predict(obs, t), before)


@pytest.mark.parametrize(
    ("make", "key", "value"),
    [
        (ConstantBaseline, "constant", "a"),
        (ConstantBaseline, "constant", None),
        (lambda: MLPValueFunction(1, hidden_sizes=(4,), seed=0), "target_mean", "a"),
        (lambda: MLPValueFunction(1, hidden_sizes=(4,), seed=0), "target_scale", None),
        (lambda: MLPValueFunction(1, hidden_sizes=(4,), seed=0), "hidden_sizes", 4),
    ],
)
def test_load_state_dict_rejects_non_numeric_entries_with_a_value_error(make, key, value):
    b = make()
    with pytest.raises(ValueError, match=key):
        b.load_state_dict({**b.state_dict(), key: value})


def test_mlp_value_function_load_state_dict_checks_adam_before_changing_anything():
    vf = MLPValueFunction(1, hidden_sizes=(4,), seed=0, optimizer="adam")
    state = vf.state_dict()
    state["params"] = state["params"] + 1.0
    state["adam"] = {**state["adam"], "t": -1}
    before = vf.params
    with pytest.raises(ValueError, match=r"state\['t'\]"):
        vf.load_state_dict(state)
    np.testing.assert_array_equal(vf.params, before)


@pytest.mark.parametrize(
    ("hidden_sizes", "match"),
    [((3.7,), "each entry of hidden_sizes must be a positive integer; got 3.7"),
     (64, r"hidden_sizes must be a sequence of positive ints, e.g. \(64, 64\); got 64"),
     ((8, 0), "each entry of hidden_sizes")],
)
def test_mlp_value_function_rejects_bad_hidden_sizes(hidden_sizes, match):
    """(3.7,) was silently truncated to (3,) and 64 raised a TypeError."""
    with pytest.raises(ValueError, match=match):
        MLPValueFunction(3, hidden_sizes=hidden_sizes, seed=0)


def test_mlp_value_function_rejects_a_negative_seed_naming_it():
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        MLPValueFunction(3, seed=-1)


def test_baselines_have_short_reprs():
    assert repr(ZeroBaseline()) == "ZeroBaseline()"
    b = ConstantBaseline()
    b.fit(np.zeros((2, 1)), [1.0, 2.0])
    assert repr(b) == "ConstantBaseline(constant=1.5)"
    assert repr(LinearFeatureBaseline(reg=0.0, time_scale=50.0)) == (
        "LinearFeatureBaseline(reg=0.0, time_scale=50.0, obs_clip=10.0)")
    assert repr(MLPValueFunction(3, hidden_sizes=(8, 8), seed=0)) == (
        "MLPValueFunction(obs_dim=3, hidden_sizes=(8, 8), optimizer='trust-region', "
        "iterations=5)")
    assert repr(MLPValueFunction(3, seed=0, optimizer="adam", dtype="float32")) == (
        "MLPValueFunction(obs_dim=3, hidden_sizes=(64, 64), optimizer='adam', iterations=10, "
        "dtype='float32')")


def test_gae_next_values_must_be_finite_even_where_terminated():
    """next_values is not used where terminated (any finite value gives the same
    estimates) but must still be finite there, as the docstring says."""
    r, V = np.ones((3, 1)), np.zeros((3, 1))
    term = np.array([[False], [False], [True]])
    trunc = np.zeros((3, 1), bool)
    a = gae(r, V, np.where(term, 0.0, 0.5), term, trunc, 0.9, 0.95)
    b = gae(r, V, np.where(term, 1e6, 0.5), term, trunc, 0.9, 0.95)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="next_values contains NaN or inf"):
        gae(r, V, np.where(term, np.inf, 0.5), term, trunc, 0.9, 0.95)
    assert "Must be finite everywhere" in gae.__doc__
