"""TabularMDP as a model (validation, built-ins) and as a Gymnasium environment.

Sampled checks run at fixed seeds; their tolerances come from the estimators' standard
errors (chi-square quantiles for frequencies, 4 standard errors plus the exact truncation
bias for Monte Carlo returns).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from hypothesis import given
from scipy import stats

from rl.mdp import TabularMDP, chain_mdp, gridworld, random_mdp, two_action_bandit
from rl.tabular_env import TabularEnv
from tests.strategies import random_mdps


def _valid_args():
    P = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.3, 0.7]]])
    R = np.array([[1.0, 0.0], [0.0, 2.0]])
    return {"P": P, "R": R, "gamma": 0.9, "mu0": np.array([1.0, 0.0])}


def _sample_episodes(mdp, pi, num_episodes, rng, *, seed):
    """Roll out ``num_episodes`` episodes of ``pi`` through reset/step; yield (s, a, r) lists."""
    cdf = np.cumsum(pi, axis=1)
    mdp.reset(seed=seed)
    for _ in range(num_episodes):
        s, _ = mdp.reset()
        episode, done = [], False
        while not done:
            a = min(int(np.searchsorted(cdf[s], rng.random(), side="right")), mdp.num_actions - 1)
            s_next, r, terminated, truncated, _ = mdp.step(a)
            episode.append((s, a, r))
            s, done = s_next, terminated or truncated
        yield episode


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"P": np.ones((2, 2))}, "P must have shape"),
        ({"P": np.ones((2, 2, 3)) / 3}, "P must have shape"),
        ({"P": np.array([[[1.5, -0.5], [1, 0]], [[0, 1], [0, 1]]])}, "non-negative"),
        ({"P": np.array([[[0.5, 0.4], [1, 0]], [[0, 1], [0, 1]]])}, r"P\[0, 0, :\] must sum to 1"),
        ({"P": np.full((2, 2, 2), np.nan)}, "P contains NaN"),
        ({"R": np.zeros((2, 3))}, "R must have shape"),
        ({"R": np.array([[np.inf, 0], [0, 0]])}, "R contains NaN or inf"),
        ({"gamma": 1.0}, "0 <= gamma < 1"),
        ({"gamma": -0.1}, "0 <= gamma < 1"),
        ({"gamma": True}, "gamma must be a real number"),
        ({"mu0": np.array([0.5, 0.4])}, r"mu0\[:\] must sum to 1"),
        ({"mu0": np.array([1.0, 0.0, 0.0])}, "mu0 must have shape"),
        ({"mu0": np.array([1.5, -0.5])}, "mu0 must be non-negative"),
        ({"horizon": 0}, "horizon must be a positive integer"),
        ({"horizon": 2.5}, "horizon must be a positive integer"),
        ({"terminal_states": [2]}, r"terminal_states must be an integer state in \[0, 2\)"),
        ({"terminal_states": 1}, "terminal_states must be a sequence"),
        ({"terminal_states": [0]}, "mu0 puts probability 1.0 on terminal state 0"),
    ],
)
def test_invalid_model_arguments_raise(change, match):
    """Bad input is rejected up front with a ValueError naming the argument: P a stochastic
    (S, A, S) kernel, R finite (S, A), 0 <= gamma < 1, mu0 a distribution, horizon >= 1,
    terminal states valid and not initial."""
    kwargs = {**_valid_args(), **change}
    P, R, gamma, mu0 = (kwargs.pop(k) for k in ("P", "R", "gamma", "mu0"))
    with pytest.raises(ValueError, match=match):
        TabularMDP(P, R, gamma, mu0, **kwargs)


@pytest.mark.parametrize(
    ("pi", "match"),
    [
        (np.full((2, 3), 1 / 3), r"pi must be an \(S, A\) = \(2, 2\) matrix"),
        (np.array([[0.5, 0.6], [0.5, 0.5]]), r"pi\[0, :\] must sum to 1"),
        (np.array([[1.2, -0.2], [0.5, 0.5]]), "pi must be non-negative"),
        (np.array([[np.nan, 0.5], [0.5, 0.5]]), "pi contains NaN"),
    ],
)
def test_invalid_policy_matrices_raise(pi, match):
    """Every exact method validates a plain-array policy: shape (S, A), finite,
    non-negative, rows summing to 1; pi_new is checked under its own name."""
    mdp = TabularMDP(**_valid_args())
    good = np.full((2, 2), 0.5)
    for method in (mdp.value, mdp.q_values, mdp.advantages, mdp.visitation, mdp.performance):
        with pytest.raises(ValueError, match=match):
            method(pi)
    for method in (mdp.surrogate, mdp.mean_kl, mdp.max_kl, mdp.max_tv, mdp.lower_bound):
        with pytest.raises(ValueError, match=match):
            method(pi, good)
        with pytest.raises(ValueError, match=match.replace("pi", "pi_new", 1)):
            method(good, pi)
    with pytest.raises(ValueError, match="divergence"):
        mdp.lower_bound(good, good, divergence="js")


def test_invalid_policy_functions_raise():
    """policy_gradient and fisher check theta (finite 1-D) and policy_fn's output."""
    mdp = TabularMDP(**_valid_args())
    with pytest.raises(ValueError, match="theta must be a 1-D vector"):
        mdp.fisher(lambda th: np.full((2, 2), 0.5), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="policy_fn must be a callable"):
        mdp.policy_gradient(None, np.zeros(2))
    with pytest.raises(ValueError, match=r"policy_fn\(theta\) must be an \(S, A\)"):
        mdp.policy_gradient(lambda th: th, np.zeros(2))


def test_model_is_stored_read_only_and_renormalised():
    """The stored P, R, mu0 are read-only copies; rows within 1e-8 of summing to 1 are
    renormalised so the kernel is stochastic to rounding."""
    args = _valid_args()
    args["P"] = args["P"] * (1.0 + 5e-9)
    mdp = TabularMDP(**args)
    assert np.all(np.abs(mdp.P.sum(axis=2) - 1.0) <= 4 * np.finfo(float).eps)
    for arr in (mdp.P, mdp.R, mdp.mu0):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0.0
    assert (mdp.num_states, mdp.num_actions) == (2, 2)
    assert "TabularMDP(num_states=2" in repr(mdp)


# ----------------------------------------------------------------------------- the Env
@given(random_mdps(max_states=4, max_actions=3))
def test_env_spaces_and_first_step(mdp_args):
    """The Env has Discrete(S) observations and Discrete(A) actions; reset returns a state
    in mu0's support and step returns (s', R(s, a), terminated=False, truncated=False)."""
    P, R, gamma, mu0 = mdp_args
    mdp = TabularMDP(P, R, gamma, mu0)
    assert mdp.observation_space.n == mdp.num_states and mdp.action_space.n == mdp.num_actions
    s, info = mdp.reset(seed=0)
    assert mdp.observation_space.contains(s) and info == {}
    s_next, r, terminated, truncated, _ = mdp.step(mdp.num_actions - 1)
    assert mdp.observation_space.contains(s_next)
    assert r == mdp.R[s, mdp.num_actions - 1] and not terminated and not truncated


def test_env_passes_the_gymnasium_checker():
    """gymnasium.utils.env_checker.check_env: API signatures, spaces, seeding determinism."""
    check_env(random_mdp(4, 3, seed=0, horizon=10), skip_render_check=True)
    check_env(gridworld(horizon=20), skip_render_check=True)


def test_transition_and_initial_frequencies_match_the_model():
    """Sampling is exact: next-state counts from step(a) at each (s, a), and initial-state
    counts from reset, agree with P and mu0 by Pearson's chi-square test at level 1e-4
    (fixed seed; df = S A (S - 1) and S - 1)."""
    mdp = random_mdp(4, 3, seed=1)
    S, A, N = mdp.num_states, mdp.num_actions, 3000
    counts = np.zeros((S, A, S))
    mdp.reset(seed=123)
    for s in range(S):
        for a in range(A):
            for _ in range(N):
                mdp.reset(options={"state": s})
                counts[s, a, mdp.step(a)[0]] += 1
    expected = N * mdp.P
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 <= stats.chi2.ppf(1 - 1e-4, S * A * (S - 1))

    starts = np.bincount([mdp.reset()[0] for _ in range(N)], minlength=S)
    chi2 = np.sum((starts - N * mdp.mu0) ** 2 / (N * mdp.mu0))
    assert chi2 <= stats.chi2.ppf(1 - 1e-4, S - 1)


def test_reset_is_reproducible_and_options_choose_the_state():
    """reset(seed=k) gives the same episode for the same k; options={"state": s} starts at s
    and rejects out-of-range or terminal states."""
    mdp = random_mdp(5, 2, seed=0, horizon=15)

    def episode(seed):
        out = [mdp.reset(seed=seed)[0]]
        for t in range(15):
            out.append(mdp.step(t % 2)[0])
        return out

    assert episode(7) == episode(7)
    assert mdp.reset(options={"state": 3})[0] == 3
    with pytest.raises(ValueError, match=r'options\["state"\] must be an integer state'):
        mdp.reset(options={"state": 5})
    grid = gridworld()
    with pytest.raises(ValueError, match="terminal state"):
        grid.reset(options={"state": grid.terminal_states[0]})


def test_horizon_truncates_and_step_needs_reset():
    """With horizon H the H-th step returns truncated=True (as gymnasium's TimeLimit), a
    further step raises ResetNeeded until reset; stepping before any reset raises too."""
    H = 4
    mdp = random_mdp(3, 2, seed=0, horizon=H)
    with pytest.raises(ResetNeeded):
        mdp.step(0)
    with pytest.raises(ResetNeeded):
        mdp.get_state()
    mdp.reset(seed=0)
    flags = [mdp.step(0)[2:4] for _ in range(H)]
    assert flags == [(False, False)] * (H - 1) + [(False, True)]
    with pytest.raises(ResetNeeded):
        mdp.step(0)
    mdp.reset()
    assert mdp.step(1)[3] is False


@pytest.mark.parametrize("action", [-1, 2, 1.5, "a", np.array([0, 1])])
def test_step_rejects_invalid_actions(action):
    """step(a) needs an integer action in [0, A): anything else is a ValueError."""
    mdp = random_mdp(3, 2, seed=0)
    mdp.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer action in \[0, 2\)"):
        mdp.step(action)
    assert mdp.step(np.int64(1))[0] in range(3)


def test_terminal_states_end_episodes_and_have_zero_value():
    """Terminal states are absorbing with zero reward (the episodic task as a discounted
    MDP; Sutton & Barto 2018, §3.4): V_pi = 0 there for every pi, and arriving there
    returns terminated=True."""
    mdp = gridworld(slip=0.0)
    goal = mdp.terminal_states[0]
    assert np.all(mdp.P[goal, :, goal] == 1.0) and np.all(mdp.R[goal] == 0.0)
    pi = np.full((mdp.num_states, mdp.num_actions), 0.25)
    assert mdp.value(pi)[goal] == 0.0
    # the cell left of the goal, moving right (action 1), enters the goal
    mdp.reset(options={"state": goal - 1})
    s, r, terminated, truncated, _ = mdp.step(1)
    assert (s, r, terminated, truncated) == (goal, 1.0, True, False)
    with pytest.raises(ResetNeeded):
        mdp.step(0)


def test_the_env_face_stands_alone_and_is_the_oracles():
    """TabularEnv built from a TabularMDP's checked model samples the same episodes as the
    TabularMDP itself (which is that env plus the exact answers), and has none of the exact
    answers: the two responsibilities are separate classes."""
    mdp = gridworld(horizon=12)
    env = TabularEnv(mdp.P, mdp.R, mdp.mu0, horizon=mdp.horizon,
                     terminal_states=mdp.terminal_states)
    assert isinstance(mdp, TabularEnv)
    assert not hasattr(env, "value") and not hasattr(env, "fisher")

    def episode(e, seed):
        s = e.reset(seed=seed)[0]
        out = [s]
        while True:
            s, r, terminated, truncated, _ = e.step(s % 4)
            out.append((s, r, terminated, truncated))
            if terminated or truncated:
                return out

    for seed in range(5):
        assert episode(env, seed) == episode(mdp, seed)
    env.reset(seed=3)
    env.step(1)
    mdp.set_state(env.get_state())  # the two share the snapshot format
    assert [mdp.step(a)[:4] for a in (0, 1, 2)] == [env.step(a)[:4] for a in (0, 1, 2)]


def test_get_set_state_replays_the_identical_trajectory():
    """Vine sampling (Schulman et al. 2015, §5.2) needs restorable simulators: after
    set_state(get_state()), the same actions give the same next states, rewards, flags and
    step counts, even after the generator was advanced, and in another env instance."""
    mdp = random_mdp(6, 3, seed=2, horizon=30)
    mdp.reset(seed=5)
    for a in (0, 1, 2, 1):
        mdp.step(a)
    snapshot = mdp.get_state()
    saved = copy.deepcopy(snapshot)
    actions = [1, 0, 2, 2, 1, 0, 0, 1]

    def replay(env):
        return [env.step(a)[:4] for a in actions]

    first = replay(mdp)
    for _ in range(5):  # advance the generator
        mdp.reset()
    mdp.set_state(snapshot)
    assert replay(mdp) == first

    other = random_mdp(6, 3, seed=2, horizon=30)
    other.reset(seed=999)
    other.set_state(snapshot)
    assert replay(other) == first
    assert snapshot == saved  # restoring does not consume the snapshot

    # the step count is restored too: from 4 elapsed steps, 26 more reach the horizon 30
    mdp.set_state(snapshot)
    flags = [mdp.step(0)[3] for _ in range(26)]
    assert flags == [False] * 25 + [True]


@pytest.mark.parametrize(
    "bad",
    [None, {"state": 0}, {"state": 9, "elapsed_steps": 0, "needs_reset": False, "rng": {}}],
)
def test_set_state_rejects_invalid_snapshots(bad):
    """set_state accepts only a get_state() snapshot with a state in range."""
    mdp = random_mdp(3, 2, seed=0)
    with pytest.raises(ValueError, match="state"):
        mdp.set_state(bad)


def test_monte_carlo_returns_match_exact_performance():
    """eta(pi) = E[sum_t gamma^t r_t] (Schulman et al. 2015, §2): on the gridworld (slip,
    walls, a terminal goal) the mean discounted return of 2000 sampled episodes, truncated
    at H, lies within 4 standard errors (plus the exact tail bound
    gamma^H max|R| / (1 - gamma)) of the exact eta(pi)."""
    mdp = gridworld(gamma=0.9, horizon=100)
    rng = np.random.default_rng(0)
    pi = 0.8 * mdp.optimal_policy() + 0.2 / mdp.num_actions
    returns = np.array(
        [
            sum(mdp.gamma**t * r for t, (_, _, r) in enumerate(ep))
            for ep in _sample_episodes(mdp, pi, 2000, rng, seed=1)
        ]
    )
    bias = mdp.gamma**mdp.horizon * np.max(np.abs(mdp.R)) / (1 - mdp.gamma)
    se = returns.std(ddof=1) / np.sqrt(returns.size)
    assert abs(returns.mean() - mdp.performance(pi)) <= 4 * se + bias


def test_monte_carlo_performance_difference_expectation_form():
    """Performance-difference lemma, expectation form (Kakade & Langford 2002; Schulman et
    al. 2015, eq. (1)): eta(pi~) - eta(pi) = E_{tau ~ pi~}[sum_t gamma^t A_pi(s_t, a_t)],
    estimated from 2000 episodes of pi~ within 4 standard errors plus the truncation bound."""
    mdp = random_mdp(4, 3, gamma=0.8, seed=4, horizon=40)
    rng = np.random.default_rng(1)
    pi = np.tile([1.0, 0.0, 0.0], (mdp.num_states, 1))  # always action 0
    pi_new = 0.8 * mdp.optimal_policy() + 0.2 / mdp.num_actions
    A = mdp.advantages(pi)
    sums = np.array(
        [
            sum(mdp.gamma**t * A[s, a] for t, (s, a, _) in enumerate(ep))
            for ep in _sample_episodes(mdp, pi_new, 2000, rng, seed=2)
        ]
    )
    bias = mdp.gamma**mdp.horizon * np.max(np.abs(A)) / (1 - mdp.gamma)
    se = sums.std(ddof=1) / np.sqrt(sums.size)
    exact = mdp.performance(pi_new) - mdp.performance(pi)
    assert abs(sums.mean() - exact) <= 4 * se + bias


# ----------------------------------------------------------------------------- built-ins
def test_random_mdp_is_reproducible_from_its_seed():
    """Same seed, same MDP; another seed, another MDP; rows are distributions."""
    a, b, c = random_mdp(5, 3, seed=11), random_mdp(5, 3, seed=11), random_mdp(5, 3, seed=12)
    assert np.array_equal(a.P, b.P) and np.array_equal(a.R, b.R) and np.array_equal(a.mu0, b.mu0)
    assert not np.array_equal(a.P, c.P)
    assert a.gamma == 0.9 and a.P.shape == (5, 3, 5)
    with pytest.raises(ValueError, match="num_states must be a positive integer"):
        random_mdp(0, 2, seed=0)


def test_chain_mdp_rewards_and_optimal_policy():
    """Strens's (2000) n-chain: "back" earns the small reward and returns to 0, "forward"
    at the end earns the large one; with gamma = 0.9 going forward is optimal and beats
    always going back, whose value is small_reward / (1 - gamma) at best."""
    mdp = chain_mdp(n=5, slip=0.0)
    assert mdp.R[4, 0] == 10.0 and mdp.R[2, 1] == 2.0 and mdp.R[2, 0] == 0.0
    assert mdp.P[2, 0, 3] == 1.0 and mdp.P[2, 1, 0] == 1.0
    forward = np.tile([1.0, 0.0], (5, 1))
    back = np.tile([0.0, 1.0], (5, 1))
    assert np.array_equal(mdp.optimal_policy(), forward)
    assert mdp.performance(forward) > mdp.performance(back) == pytest.approx(2.0 / 0.1)
    with pytest.raises(ValueError, match="slip"):
        chain_mdp(slip=1.5)


def test_gridworld_layout_and_dynamics():
    """The gridworld's states are the free cells in row-major order; a blocked move stays
    put; slip spreads slip/4 over the four moves; the goal is the only terminal state."""
    mdp = gridworld(layout=["S.", "#G"], slip=0.2, step_reward=-0.1)
    assert mdp.num_states == 3 and mdp.terminal_states == (2,)
    # from the start (0, 0): up is blocked (stay), right -> 1; left blocked; down is a wall
    assert mdp.P[0, 0, 0] == pytest.approx(0.8 + 0.2 * 3 / 4)
    assert mdp.P[0, 1, 1] == pytest.approx(0.8 + 0.2 / 4)
    assert mdp.R[1, 2] == pytest.approx(-0.1 + (0.8 + 0.2 / 4))  # from (0, 1) down: goal
    for bad, match in [("S.G", "sequence of strings"), (["S.", "G"], "equal length"),
                       (["S.", ".."], "goal"), (["Sx", ".G"], "only")]:
        with pytest.raises(ValueError, match=match):
            gridworld(layout=bad)


def test_two_action_bandit_is_the_lecture_example():
    """One state, rewards 100 and 1, gamma = 0, one-step episodes: eta = J(pi) =
    100 pi[1] + pi[2] (Janson & Kakade 2023), 50.5 under the uniform policy."""
    mdp = two_action_bandit()
    assert mdp.gamma == 0.0 and mdp.horizon == 1
    assert mdp.performance(np.array([[0.5, 0.5]])) == pytest.approx(50.5, abs=1e-12)
    mdp.reset(seed=0)
    assert mdp.step(0)[1:4] == (100.0, False, True)


# ------------------------------------------------------------- precision and argument checks
def _float32_normalised(x, axis):
    x = np.asarray(x, dtype=np.float32)
    return x / x.sum(axis=axis, keepdims=True)


def test_float32_normalised_model_and_policy_are_accepted_and_renormalised():
    """Rows normalised in float32 (P / P.sum(...)) sum to 1 only to float32 rounding, up
    to ~1e-7 here; they are accepted within 4 n eps of float32 and renormalised in
    float64, so the exact answers use distributions that sum to 1 to float64 rounding."""
    base = random_mdp(8, 3, seed=1)
    P32 = _float32_normalised(base.P, 2)
    assert np.max(np.abs(P32.astype(np.float64).sum(axis=2) - 1.0)) > 1e-8
    mdp = TabularMDP(P32, base.R, base.gamma, _float32_normalised(base.mu0, 0))
    assert np.max(np.abs(mdp.P.sum(axis=2) - 1.0)) <= 4 * np.finfo(float).eps
    pi32 = _float32_normalised(np.random.default_rng(1).random((8, 3)), 1)
    assert np.max(np.abs(pi32.astype(np.float64).sum(axis=1) - 1.0)) > 1e-8
    pi = pi32.astype(np.float64)
    pi /= pi.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(mdp.value(pi32), mdp.value(pi))
    assert abs(float(mdp.visitation(pi32, normalized=True).sum()) - 1.0) <= 1e-14
    # the float32 tolerance is a few rounding errors, not a licence for wrong rows
    bad = P32.copy()
    bad[0, 0] *= np.float32(1.001)
    with pytest.raises(ValueError, match=r"P\[0, 0, :\] must sum to 1"):
        TabularMDP(bad, base.R, base.gamma, base.mu0)
    with pytest.raises(ValueError, match=r"pi\[0, :\] must sum to 1"):
        mdp.value(pi32 * np.float32(1.001))


def test_visitation_normalized_must_be_a_bool():
    """normalized="no" used to be truthy and return d_pi."""
    mdp = chain_mdp()
    pi = np.full((5, 2), 0.5)
    for bad in ("no", 0, None):
        with pytest.raises(ValueError, match="normalized must be True or False"):
            mdp.visitation(pi, normalized=bad)
    np.testing.assert_array_equal(mdp.visitation(pi, normalized=np.bool_(False)),
                                  mdp.visitation(pi))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: random_mdp(3, 2, seed=-1), "seed must be a non-negative integer"),
        (lambda: random_mdp(3, 2, seed="a"), "seed must be a non-negative integer"),
        (lambda: random_mdp(3, 2, seed=1.5), "seed must be a non-negative integer"),
        (lambda: chain_mdp(small_reward="a"), "small_reward must be a finite real number"),
        (lambda: chain_mdp(large_reward=np.nan), "large_reward must be a finite real number"),
        (lambda: chain_mdp(slip="a"), r"slip must be a probability in \[0, 1\]"),
        (lambda: gridworld(goal_reward="1"), "goal_reward must be a finite real number"),
        (lambda: gridworld(step_reward=np.inf), "step_reward must be a finite real number"),
        (lambda: gridworld(slip=None), r"slip must be a probability in \[0, 1\]"),
    ],
)
def test_builders_reject_bad_arguments_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_builders_accept_numpy_scalars_and_generators():
    rng = np.random.default_rng(3)
    assert np.array_equal(random_mdp(3, 2, seed=rng).P,
                          random_mdp(3, 2, seed=np.random.default_rng(3)).P)
    assert np.array_equal(random_mdp(3, 2, seed=np.int64(3)).P, random_mdp(3, 2, seed=3).P)
    a, b = chain_mdp(small_reward=np.float32(2.0)), chain_mdp()
    assert np.array_equal(a.R, b.R)


@given(random_mdps(max_states=4, max_actions=3))
def test_kl_from_log_probabilities_equals_kl_from_probabilities(mdp_args):
    """mean_kl, max_kl and lower_bound with ``log=True`` agree with the probability form
    wherever no probability underflows (softmax logits in [-3, 3]); relative error a
    few eps times the number of actions, as both sum the same terms."""
    mdp = TabularMDP(*mdp_args)
    S, A = mdp.num_states, mdp.num_actions
    rng = np.random.default_rng(S * 10 + A)
    logits = rng.uniform(-3, 3, size=(2, S, A))
    log_p = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    pi, pi_new = np.exp(log_p)
    tol = 16 * A * np.finfo(float).eps
    for method in (mdp.mean_kl, mdp.max_kl):
        exact = float(method(pi, pi_new))
        assert float(method(log_p[0], log_p[1], log=True)) == pytest.approx(exact, rel=tol,
                                                                            abs=tol)
    assert float(mdp.lower_bound(log_p[0], log_p[1], log=True)) == pytest.approx(
        float(mdp.lower_bound(pi, pi_new)), rel=1e-12, abs=1e-12)


def test_kl_from_log_probabilities_survives_underflow():
    """A new probability exp(-800) is 0 as a float: the KL from probabilities is +inf,
    the KL from log-probabilities is the exact 0.5 (log 0.5 - 0) + 0.5 (log 0.5 + 800)
    = 400 + log 0.5 = 399.3069."""
    mdp = two_action_bandit()
    log_pi = np.log([[0.5, 0.5]])
    log_new = np.array([[0.0, -800.0]])
    expected = 0.5 * 800.0 + np.log(0.5)
    assert float(mdp.mean_kl(np.exp(log_pi), np.exp(log_new))) == np.inf
    assert float(mdp.mean_kl(log_pi, log_new, log=True)) == pytest.approx(expected, rel=1e-15)
    assert float(mdp.max_kl(log_pi, log_new, log=True)) == pytest.approx(expected, rel=1e-15)
    # a zero old probability contributes nothing; a zero new one under a positive old: +inf
    assert float(mdp.max_kl(np.array([[0.0, -np.inf]]), log_new, log=True)) == 0.0
    assert float(mdp.max_kl(log_pi, np.array([[0.0, -np.inf]]), log=True)) == np.inf


@pytest.mark.parametrize(
    ("log_pi", "match"),
    [
        (np.zeros((2, 3)), r"pi must be an \(S, A\) = \(2, 2\) real matrix"),
        (np.array([[np.nan, 0.0], [0.0, -np.inf]]), "NaN or \\+inf"),
        (np.array([[np.inf, 0.0], [0.0, -np.inf]]), "NaN or \\+inf"),
        (np.zeros((2, 2)), r"exp\(pi\)\[0, :\] must sum to 1"),
    ],
)
def test_invalid_log_policies_raise(log_pi, match):
    """With log=True each matrix must be (S, A) log-probabilities whose exponentials are
    distributions; pi_new is checked under its own name; log must be a bool."""
    mdp = TabularMDP(**_valid_args())
    good = np.log(np.full((2, 2), 0.5))
    for method in (mdp.mean_kl, mdp.max_kl, mdp.lower_bound):
        with pytest.raises(ValueError, match=match):
            method(log_pi, good, log=True)
        with pytest.raises(ValueError, match=match.replace("pi", "pi_new", 1)):
            method(good, log_pi, log=True)
    with pytest.raises(ValueError, match="log must be True or False"):
        mdp.mean_kl(good, good, log=1)


def test_fisher_of_a_subnormal_probability_is_finite():
    """F = sum_a grad pi grad pi^T / pi: at pi(a) = e^-710 (subnormal, 1/pi overflows)
    the term is ~pi, so F equals the sigmoid's s (1 - s) ~ e^-710, finite, not NaN."""
    import autograd.numpy as anp

    def policy(theta):  # (sigmoid(t), sigmoid(-t)) from logs, so no exp overflows
        log_p = -anp.logaddexp(0.0, -theta[0])
        log_q = -anp.logaddexp(0.0, theta[0])
        return anp.reshape(anp.stack([anp.exp(log_p), anp.exp(log_q)]), (1, 2))

    theta = np.array([-710.0])
    s = np.exp(-710.0)  # sigmoid(-710) to a relative 1e-308
    F = two_action_bandit().fisher(policy, theta)
    assert np.isfinite(F).all()
    assert float(F[0, 0]) == pytest.approx(s * (1.0 - s), rel=1e-6)
