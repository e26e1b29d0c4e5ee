"""Theorems about the policies: Fisher = Hessian of the mean KL, fast path = traced path,
running normalisation = batch moments, checkpoints round-trip, clear errors for bad spaces.

References: Schulman et al., "Trust Region Policy Optimization" (ICML 2015), App. C.1 for
the Fisher-vector product; Chan, Golub & LeVeque (1979) for the parallel variance update.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special
from autograd import elementwise_grad, hessian, make_jvp
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.distributions import Categorical, DiagGaussian
from rl.networks import MLP, tanh
from rl.policies import (
    BernoulliMLP,
    CategoricalCNN,
    CategoricalMLP,
    GaussianMLP,
    MultiCategoricalMLP,
    MultiInputPolicy,
    ObservationNormalizer,
    Policy,
    TabularSoftmax,
    make_policy,
)
from tests.strategies import finite_floats

EPS = np.finfo(np.float64).eps
OBS_DIM, NUM_STATES = 3, 4
KINDS = ["tabular", "categorical", "gaussian", "categorical-normalized", "gaussian-normalized",
         "multicategorical", "bernoulli", "cnn", "multiinput-normalized", "multiinput-image"]
NVEC = (2, 3)
IMAGE = (4, 4, 1)
TINY_CONV = ((2, 2, 2),)  # 4 x 4 x 1 frames to 2 x 2 x 2 features: a Hessian stays cheap
DICT_SPACE = spaces.Dict({"pos": spaces.Box(-5.0, 5.0, (OBS_DIM,)), "door": spaces.Discrete(3),
                          "bits": spaces.MultiBinary(2)})
IMAGE_SPACE = spaces.Dict({"frame": spaces.Box(0, 255, IMAGE, np.uint8),
                           "dir": spaces.Discrete(3, start=1)})


def build(kind: str, seed: int = 0, hidden=(3, 3)) -> Policy:
    """A small policy of each kind; the normalised ones carry non-trivial statistics."""
    norm = None
    if kind.endswith("normalized") and not kind.startswith("multiinput"):
        norm = ObservationNormalizer(OBS_DIM, clip=3.0)
        norm.update(np.random.default_rng(seed).normal(1.0, 2.0, size=(50, OBS_DIM)))
    if kind == "tabular":
        return TabularSoftmax(NUM_STATES, 3, init_std=1.0, seed=seed)
    if kind == "multicategorical":
        return MultiCategoricalMLP(OBS_DIM, NVEC, hidden, seed=seed)
    if kind == "bernoulli":
        return BernoulliMLP(OBS_DIM, 3, hidden, seed=seed)
    if kind == "cnn":
        return _off_ties(CategoricalCNN(IMAGE, 3, conv_layers=TINY_CONV, hidden_sizes=(3,),
                                        seed=seed, chunk_size=2))
    if kind == "multiinput-normalized":
        pi = MultiInputPolicy(DICT_SPACE, spaces.Box(-1.0, 1.0, (2,)), hidden, seed=seed,
                              init_log_std=-0.3, obs_normalization=True)
        pi.obs_normalizer.update(np.random.default_rng(seed).normal(1.0, 2.0, (50, OBS_DIM)))
        return pi
    if kind == "multiinput-image":
        return _off_ties(MultiInputPolicy(IMAGE_SPACE, spaces.MultiDiscrete(NVEC), seed=seed,
                                          conv_layers=TINY_CONV, conv_hidden_sizes=(3,)))
    if kind.startswith("categorical"):
        return CategoricalMLP(OBS_DIM, 3, hidden, seed=seed, obs_normalizer=norm)
    return GaussianMLP(OBS_DIM, 2, hidden, init_log_std=-0.3, seed=seed, obs_normalizer=norm)


def _off_ties(policy: Policy) -> Policy:
    """Shift θ off the zero biases of the initialisation: a ReLU network on a blank frame
    would otherwise sit exactly on its kinks (pre-activation 0), where autograd's derivative
    (½) and the hand-written one (0) are different conventions."""
    policy.theta = policy.theta + 0.0371
    return policy


def observations(kind: str, max_rows: int = 6):
    """A batch of observations for ``kind``: integer states, (N, OBS_DIM) floats, uint8 frames
    or a dict of arrays with one row per observation."""
    if kind == "tabular":
        states = st.integers(0, NUM_STATES - 1)
        return hnp.arrays(np.int64, st.integers(1, max_rows), elements=states)
    vectors = st.integers(1, max_rows).flatmap(lambda n: hnp.arrays(
        np.float64, (n, OBS_DIM), elements=finite_floats(-5.0, 5.0)))
    frames = st.integers(1, max_rows).flatmap(lambda n: hnp.arrays(np.uint8, (n, *IMAGE)))
    if kind == "cnn":
        return frames
    if kind == "multiinput-normalized":
        return vectors.flatmap(lambda x: st.fixed_dictionaries({
            "pos": st.just(x),
            "door": hnp.arrays(np.int64, len(x), elements=st.integers(0, 2)),
            "bits": hnp.arrays(np.int8, (len(x), 2), elements=st.integers(0, 1))}))
    if kind == "multiinput-image":
        return frames.flatmap(lambda x: st.fixed_dictionaries({
            "frame": st.just(x),
            "dir": hnp.arrays(np.int64, len(x), elements=st.integers(1, 3))}))
    return vectors


def fixed_obs(kind: str, n: int, low: float = -1.0, high: float = 1.0):
    """A deterministic batch of ``n`` observations for ``kind``."""
    if kind == "tabular":
        return np.arange(n) % NUM_STATES
    x = np.linspace(low, high, n * OBS_DIM).reshape(n, OBS_DIM)
    frames = (np.arange(n * 16).reshape(n, *IMAGE) * 7 % 256).astype(np.uint8)
    if kind == "cnn":
        return frames
    if kind == "multiinput-normalized":
        return {"pos": x, "door": np.arange(n) % 3, "bits": (np.arange(2 * n) % 2).reshape(n, 2)}
    if kind == "multiinput-image":
        return {"frame": frames, "dir": 1 + np.arange(n) % 3}
    return x


def perturbed_theta(data, policy: Policy, scale: float = 0.5) -> np.ndarray:
    """θ drawn near the initial parameters (the orthogonal init scaled output layer is tiny)."""
    delta = data.draw(
        hnp.arrays(np.float64, policy.num_params, elements=finite_floats(-scale, scale))
    )
    return policy.theta + delta


# -- Fisher-vector product ---------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_linearize_equals_the_traced_default(kind, data):
    """Each policy's hand-written :meth:`Policy.linearize` (parameters, ``J v``, ``J^T w``)
    equals the base class's autograd trace of :meth:`Policy.distribution_params`."""
    policy = build(kind)
    theta = perturbed_theta(data, policy)
    obs = data.draw(observations(kind))
    fast, traced = policy.linearize(obs, theta), Policy.linearize(policy, obs, theta)
    v = data.draw(hnp.arrays(np.float64, policy.num_params, elements=finite_floats(-1, 1)))
    w = data.draw(hnp.arrays(np.float64, fast.output.shape, elements=finite_floats(-1, 1)))
    tol = 1e-12 * (1.0 + np.abs(theta).max())
    np.testing.assert_allclose(fast.output, traced.output, rtol=0, atol=tol)
    np.testing.assert_allclose(fast.jvp(v), traced.jvp(v), rtol=0, atol=tol)
    np.testing.assert_allclose(fast.vjp(w), traced.vjp(w), rtol=0, atol=tol * len(obs))


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=20)  # each example builds two dense n x n matrices
@given(data=st.data())
def test_fisher_operator_equals_hessian_of_mean_kl(kind, data):
    """F v = J^T (F_dist/N) J v equals ∇²_θ' (1/N) Σ_i KL(π_θ(·|s_i) ‖ π_θ'(·|s_i))|_{θ'=θ} v
    (TRPO App. C.1): the matrix-free Gauss–Newton operator against the dense autograd Hessian,
    at a θ passed explicitly (not the policy's current one). Tolerance: n·eps·max|H|
    (Higham's inner-product bound, n = number of parameters)."""
    policy = build(kind, seed=data.draw(st.integers(0, 3)))
    obs = data.draw(observations(kind))
    theta = perturbed_theta(data, policy)
    old_params = policy.distribution_params(obs, theta)
    H = hessian(lambda t: policy.mean_kl(obs, old_params, t))(theta)
    F = policy.fisher_operator(obs, theta)
    n = policy.num_params
    assert F.shape == (n, n)
    F_dense = F @ np.eye(n)
    tol = 4 * n * EPS * max(1.0, np.abs(H).max())
    assert np.allclose(F_dense, H, rtol=0, atol=tol)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=20)  # each example builds the dense n x n operator
@given(data=st.data())
def test_fisher_operator_is_symmetric_positive_semidefinite(kind, data):
    """The policy Fisher (1/N) Σ J_iᵀ F_i J_i is symmetric PSD: its dense matrix has F = Fᵀ
    and eigenvalues ≥ −n·eps·max|F|, and F.rmatvec = F.matvec. With no θ given the operator
    is evaluated at the current θ."""
    policy = build(kind, seed=1)
    policy.theta = perturbed_theta(data, policy)
    obs = data.draw(observations(kind))
    n = policy.num_params
    F = policy.fisher_operator(obs)
    F_dense = F @ np.eye(n)
    v = data.draw(hnp.arrays(np.float64, n, elements=finite_floats(-1.0, 1.0)))
    assert np.array_equal(F @ v, policy.fisher_operator(obs, policy.theta) @ v)
    tol = 4 * n * EPS * max(1.0, np.abs(F_dense).max())
    assert np.allclose(F.rmatvec(v), F @ v, rtol=0, atol=tol * n)
    assert np.allclose(F_dense, F_dense.T, rtol=0, atol=tol)
    assert np.linalg.eigvalsh(0.5 * (F_dense + F_dense.T)).min() >= -tol


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_mean_kl_is_zero_at_old_params_and_nonnegative(kind, data):
    """mean_kl(obs, y(θ), θ) = 0 and mean_kl(obs, y(θ), θ') ≥ 0 (Gibbs' inequality)."""
    policy = build(kind, seed=2)
    obs = data.draw(observations(kind))
    old = policy.distribution_params(obs)
    assert abs(policy.mean_kl(obs, old, policy.theta)) <= 64 * EPS
    assert policy.mean_kl(obs, old, perturbed_theta(data, policy)) >= -64 * EPS


# -- fast path = traced path -----------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_step_and_act_agree_with_traced_path(kind, data):
    """The numpy hot path equals the autograd path: step's params = distribution_params(obs),
    its log-probs = log_prob(obs, actions), act(deterministic) = the distribution's mode, and
    act draws the same actions as step from the same seed."""
    policy = build(kind, seed=3)
    policy.theta = perturbed_theta(data, policy)
    obs = data.draw(observations(kind))
    actions, log_probs, params = policy.step(obs, np.random.default_rng(7))
    ref = policy.distribution_params(obs)
    tol = 64 * EPS * (1.0 + np.abs(ref).max())
    assert params.shape == ref.shape
    assert np.allclose(params, ref, rtol=0, atol=tol)
    assert np.allclose(log_probs, policy.log_prob(obs, actions), rtol=0, atol=16 * tol)
    assert np.array_equal(policy.act(obs, np.random.default_rng(7)), actions)
    mode = policy.act(obs, np.random.default_rng(0), deterministic=True)
    assert np.array_equal(mode, policy.distribution(obs).mode())


@pytest.mark.parametrize("kind", KINDS)
def test_hot_path_never_traces(kind, monkeypatch):
    """act and step use only the cached numpy weights: they still work when the traced
    forward pass is disabled (DESIGN: the sampling hot path does not trace)."""
    policy = build(kind, seed=4)
    obs = fixed_obs(kind, 5)

    def forbidden(*args, **kwargs):
        raise AssertionError("the traced path was called from the hot path")

    monkeypatch.setattr(policy, "_params_from", forbidden)
    assert len(policy.act(obs, np.random.default_rng(0))) == 5
    assert len(policy.step(obs, np.random.default_rng(0))[1]) == 5


@pytest.mark.parametrize("kind", KINDS)
def test_act_is_reproducible_and_theta_refreshes_cache(kind):
    """Same seed, same actions; setting θ refreshes the fast path (step params follow θ)."""
    policy = build(kind, seed=5)
    obs = fixed_obs(kind, 8)
    a1 = policy.act(obs, np.random.default_rng(11))
    a2 = policy.act(obs, np.random.default_rng(11))
    assert np.array_equal(a1, a2)
    policy.theta = policy.theta + 1.0
    _, _, params = policy.step(obs, np.random.default_rng(0))
    assert np.allclose(params, policy.distribution_params(obs), rtol=0, atol=1e-12)


def test_policy_action_frequencies_match_probabilities():
    """TabularSoftmax.act draws a in state s with frequency π(a|s) within 5 binomial SE."""
    policy = TabularSoftmax(2, 3, init_std=1.0, seed=0)
    M = 20_000
    a = policy.act(np.ones(M, dtype=np.int64), np.random.default_rng(0))
    p = policy.probs()[1]
    se = np.sqrt(p * (1 - p) / M)
    assert np.all(np.abs(np.bincount(a, minlength=3) / M - p) <= 5 * se)


# -- the pieces ------------------------------------------------------------------------
@given(hnp.arrays(np.float64, NUM_STATES * 3, elements=finite_floats(-5.0, 5.0)))
def test_tabular_probs_are_softmax_of_theta(theta):
    """probs(θ) is the row-stochastic (S, A) matrix softmax(θ.reshape(S, A)) and the
    distribution of state s is its row s."""
    policy = TabularSoftmax(NUM_STATES, 3)
    P = policy.probs(theta)
    assert np.allclose(P, scipy.special.softmax(theta.reshape(NUM_STATES, 3), axis=1))
    assert np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=8 * EPS)
    s = np.array([3, 0, 3])
    assert np.allclose(policy.distribution(s, theta).probs(), P[s])


@given(st.data())
def test_gaussian_log_std_is_last_entries_and_state_independent(data):
    """GaussianMLP's log-std is θ[-act_dim:], the same for every observation."""
    policy = build("gaussian")
    theta = perturbed_theta(data, policy)
    obs = data.draw(observations("gaussian"))
    d = policy.distribution(obs, theta)
    assert isinstance(d, DiagGaussian)
    assert np.array_equal(d.log_std, np.tile(theta[-2:], (len(obs), 1)))


@pytest.mark.parametrize("sizes, gain", [((3, 7, 5, 2), 0.01), ((6, 4, 1), 1.0)])
def test_mlp_orthogonal_initialisation(sizes, gain):
    """Hidden weights satisfy WᵀW = 2I (or WWᵀ = 2I when wide), the last layer has gain
    output_gain, biases are 0 (Saxe et al. 2014; PPO implementation details)."""
    net = MLP(sizes, output_gain=gain, seed=0)
    layers = net.unflatten(net.params)
    for k, (W, b) in enumerate(layers):
        g2 = gain**2 if k == len(layers) - 1 else 2.0
        G = W.T @ W if W.shape[0] >= W.shape[1] else W @ W.T
        assert np.allclose(G, g2 * np.eye(len(G)), rtol=0, atol=16 * EPS * max(1.0, g2))
        assert np.array_equal(b, np.zeros_like(b))
    assert net.num_params == sum(a * c + c for a, c in zip(sizes[:-1], sizes[1:], strict=True))


@pytest.mark.parametrize("activation, act", [
    ("tanh", np.tanh), ("relu", lambda h: np.maximum(h, 0.0)), ("identity", lambda h: h),
])
@given(data=st.data())
def test_mlp_forward_numpy_equals_forward(activation, act, data):
    """forward_numpy (cached weights, in-place activation) equals the traced forward, and
    both equal act(x W_0 + b_0) W_1 + b_1 written out by hand."""
    net = MLP((3, 5, 2), activation=activation, seed=0)
    theta = data.draw(hnp.arrays(np.float64, net.num_params, elements=finite_floats(-2, 2)))
    x = data.draw(hnp.arrays(np.float64, (4, 3), elements=finite_floats(-5, 5)))
    net.set_params(theta)
    W0, b0 = theta[:15].reshape(3, 5), theta[15:20]
    W1, b1 = theta[20:30].reshape(5, 2), theta[30:]
    ref = act(x @ W0 + b0) @ W1 + b1
    assert np.allclose(net.forward(theta, x), ref, rtol=0, atol=1e-12)
    assert np.allclose(net.forward_numpy(x), ref, rtol=0, atol=1e-12)


@given(hnp.arrays(np.float64, 7, elements=finite_floats(-20.0, 20.0)))
def test_tanh_primitive_derivatives_match_autograd(x):
    """The tanh primitive's first and second derivatives, (1 − tanh²) and −2 tanh (1 − tanh²),
    equal those of autograd's numpy.tanh (forward and reverse mode)."""
    ones = np.ones_like(x)
    assert np.allclose(elementwise_grad(tanh)(x), elementwise_grad(anp.tanh)(x), atol=4 * EPS)
    assert np.allclose(make_jvp(tanh)(x)(ones)[1], make_jvp(anp.tanh)(x)(ones)[1], atol=4 * EPS)
    d2 = elementwise_grad(elementwise_grad(tanh))(x)
    assert np.allclose(d2, elementwise_grad(elementwise_grad(anp.tanh))(x), atol=8 * EPS)


@given(st.lists(hnp.arrays(np.float64, st.tuples(st.integers(0, 8), st.just(2)),
                           elements=finite_floats()), min_size=1, max_size=5))
def test_normalizer_running_moments_equal_numpy(batches):
    """After update(B_1), …, update(B_k) the running mean/var equal np.mean/np.var of all rows
    (Chan–Golub–LeVeque parallel update); rounding ≤ c·n·eps·max|x|²."""
    norm = ObservationNormalizer(2)
    for B in batches:
        norm.update(B)
    X = np.concatenate(batches)
    assert norm.count == len(X)
    if len(X) == 0:
        assert np.array_equal(norm.mean, np.zeros(2)) and np.array_equal(norm.var, np.ones(2))
        return
    scale = 1.0 + np.abs(X).max()
    tol = 16 * len(X) * EPS * scale
    assert np.allclose(norm.mean, X.mean(axis=0), rtol=0, atol=tol)
    assert np.allclose(norm.var, X.var(axis=0), rtol=0, atol=tol * scale)


@given(hnp.arrays(np.float64, (6, 2), elements=finite_floats(-100.0, 100.0)),
       st.floats(0.5, 5.0))
def test_normalizer_normalizes_and_clips(x, clip):
    """normalize(x) = clip((x − μ)/√(σ² + ε), −clip, clip), and never leaves [−clip, clip]."""
    norm = ObservationNormalizer(2, clip=clip)
    norm.update(np.array([[1.0, -2.0], [3.0, 2.0], [2.0, 0.0]]))
    z = norm.normalize(x)
    ref = np.clip((x - norm.mean) / np.sqrt(norm.var + norm.epsilon), -clip, clip)
    assert np.allclose(z, ref, rtol=1e-14, atol=1e-14)
    assert np.all(np.abs(z) <= clip)


# -- checkpoints ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip(kind):
    """load_state_dict(state_dict()) restores θ and the normaliser exactly (same actions
    from the same seed); Policy.from_state_dict rebuilds the same architecture (a
    MultiInputPolicy is rebuilt from its spaces, then loaded)."""
    policy = build(kind, seed=6)
    policy.theta = policy.theta + 0.25
    state = policy.state_dict()
    other = build(kind, seed=7)
    other.load_state_dict(state)
    if kind.startswith("multiinput"):
        with pytest.raises(ValueError, match="built from its spaces"):
            Policy.from_state_dict(state)
        clone = build(kind, seed=8)
        clone.load_state_dict(state)
    else:
        clone = Policy.from_state_dict(state)
    obs = fixed_obs(kind, 6, -3.0, 3.0)
    for p in (other, clone):
        assert np.array_equal(p.theta, policy.theta)
        assert np.array_equal(p.act(obs, np.random.default_rng(0)),
                              policy.act(obs, np.random.default_rng(0)))
        if policy.obs_normalizer is not None:
            assert np.array_equal(p.obs_normalizer.mean, policy.obs_normalizer.mean)
            assert np.array_equal(p.obs_normalizer.var, policy.obs_normalizer.var)
            assert p.obs_normalizer.count == policy.obs_normalizer.count
    state["theta"][:] = 0.0  # the state dict holds copies
    assert not np.array_equal(policy.theta, state["theta"])


@pytest.mark.parametrize("cls, dim", [(CategoricalMLP, 3), (GaussianMLP, 2)])
def test_float32_policy_round_trips_and_matches_float64(cls, dim):
    """A float32 MLP policy keeps its dtype through a checkpoint, refuses a float64 one, and
    its distribution parameters and Fisher-vector products agree with the float64
    policy's to single precision."""
    pi32 = cls(OBS_DIM, dim, (8, 8), seed=0, dtype="float32")
    pi64 = cls(OBS_DIM, dim, (8, 8), seed=0)
    obs = np.random.default_rng(0).standard_normal((40, OBS_DIM))
    clone = Policy.from_state_dict(pi32.state_dict())
    assert clone.net.dtype == np.float32
    with pytest.raises(ValueError):
        pi64.load_state_dict(pi32.state_dict())
    y32, y64 = pi32.distribution_params(obs), pi64.distribution_params(obs)
    np.testing.assert_allclose(y32, y64, rtol=0, atol=1e-6)
    v = np.random.default_rng(1).standard_normal(pi64.num_params)
    Fv64 = pi64.fisher_operator(obs) @ v
    np.testing.assert_allclose(pi32.fisher_operator(obs) @ v, Fv64, rtol=0,
                               atol=1e-5 * np.abs(Fv64).max())


def test_load_state_dict_rejects_mismatched_checkpoints():
    """A checkpoint of another class, architecture or normalisation setting is a ValueError
    that names both architectures."""
    gauss = GaussianMLP(3, 2, (4,), seed=0)
    with pytest.raises(ValueError, match="architecture"):
        GaussianMLP(3, 2, (5,), seed=0).load_state_dict(gauss.state_dict())
    with pytest.raises(ValueError, match="CategoricalMLP"):
        CategoricalMLP(3, 2, (4,), seed=0).load_state_dict(gauss.state_dict())
    with pytest.raises(ValueError, match="normalisation"):
        GaussianMLP(3, 2, (4,), obs_normalizer=ObservationNormalizer(3)).load_state_dict(
            gauss.state_dict()
        )


# -- construction and bad input --------------------------------------------------------------
def test_make_policy_dispatches_on_spaces():
    """Discrete→Discrete: TabularSoftmax; Box→Discrete: CategoricalMLP; Box→Box: GaussianMLP,
    with a normaliser of the observation shape when obs_normalization=True."""
    box4, box2 = spaces.Box(-1.0, 1.0, (4,)), spaces.Box(-2.0, 2.0, (2,))
    tab = make_policy(spaces.Discrete(5), spaces.Discrete(3))
    assert isinstance(tab, TabularSoftmax) and tab.num_params == 15
    cat = make_policy(box4, spaces.Discrete(2), hidden_sizes=(8,), seed=0)
    assert isinstance(cat, CategoricalMLP) and cat.num_params == 4 * 8 + 8 + 8 * 2 + 2
    assert cat.obs_normalizer is None
    gau = make_policy(box4, box2, hidden_sizes=(8,), seed=0, obs_normalization=True)
    assert isinstance(gau, GaussianMLP) and gau.distribution_class is DiagGaussian
    assert gau.num_params == 4 * 8 + 8 + 8 * 2 + 2 + 2
    assert gau.obs_normalizer.shape == (4,)
    assert cat.distribution_class is Categorical
    same = make_policy(box4, box2, hidden_sizes=(8,), seed=0, obs_normalization=True)
    assert np.array_equal(same.theta, gau.theta)  # seeded


def test_make_policy_builds_the_policies_of_the_new_spaces():
    """MultiDiscrete / MultiBinary actions on vectors: MultiCategoricalMLP / BernoulliMLP;
    rank-3 Box frames with Discrete actions: CategoricalCNN (Nature torso by default, layout
    read from the shape); Dict / Tuple observations, or frames with other actions:
    MultiInputPolicy. Each acts on a batch of its observations with actions of the space."""
    box3, rng = spaces.Box(-1.0, 1.0, (3,)), np.random.default_rng(0)
    mc = make_policy(box3, spaces.MultiDiscrete([2, 3]), hidden_sizes=(4,), seed=0)
    assert isinstance(mc, MultiCategoricalMLP) and mc.nvec == (2, 3)
    assert mc.distribution_class.nvec == (2, 3)
    be = make_policy(box3, spaces.MultiBinary(4), hidden_sizes=(4,), seed=0,
                     obs_normalization=True)
    assert isinstance(be, BernoulliMLP) and be.num_bits == 4 and be.obs_normalizer.shape == (3,)
    for policy, space in ((mc, spaces.MultiDiscrete([2, 3])), (be, spaces.MultiBinary(4))):
        a = policy.act(np.zeros((5, 3)), rng)
        assert all(space.contains(row) for row in a)
    atari = make_policy(spaces.Box(0, 255, (84, 84, 4), np.uint8), spaces.Discrete(6), seed=0)
    assert isinstance(atari, CategoricalCNN) and atari.net.layout == "HWC"
    assert atari.net.feature_shapes[-1] == (7, 7, 64)
    chw = make_policy(spaces.Box(0.0, 1.0, (2, 8, 8)), spaces.Discrete(2), seed=0,
                      conv_layers=((4, 3, 1),), conv_hidden_sizes=(8,))
    assert isinstance(chw, CategoricalCNN) and chw.net.layout == "CHW"
    assert chw.act(np.zeros((3, 2, 8, 8)), rng).shape == (3,)
    minatar = make_policy(spaces.Box(0, 1, (10, 10, 4), bool), spaces.MultiBinary(2), seed=0,
                          conv_layers=((16, 3, 1),), conv_hidden_sizes=(32,))
    assert isinstance(minatar, MultiInputPolicy)
    assert minatar.act(np.zeros((3, 10, 10, 4), bool), rng).shape == (3, 2)
    blackjack = spaces.Tuple((spaces.Discrete(32), spaces.Discrete(11), spaces.Discrete(2)))
    bj = make_policy(blackjack, spaces.Discrete(2), hidden_sizes=(8,), seed=0)
    assert isinstance(bj, MultiInputPolicy) and bj.layout.flat_dim == 45
    obs = (np.array([20, 5]), np.array([10, 1]), np.array([0, 1]))
    assert bj.act(obs, rng).shape == (2,)
    goal = spaces.Dict({"observation": spaces.Box(-1.0, 1.0, (4,)),
                        "desired_goal": spaces.Box(-1.0, 1.0, (2,))})
    gc = make_policy(goal, spaces.Box(-1.0, 1.0, (2,)), seed=0, obs_normalization=True)
    assert isinstance(gc, MultiInputPolicy) and gc.obs_normalizer.shape == (6,)


@pytest.mark.parametrize("obs_space, act_space, match", [
    (spaces.Discrete(4), spaces.Box(-1.0, 1.0, (2,)), "Discrete.*Box"),
    (spaces.Box(-1.0, 1.0, (3,)), spaces.Tuple((spaces.Discrete(2),)),
     r"action_space Tuple.*not supported"),
    (spaces.Box(-1.0, 1.0, (3,)), spaces.MultiDiscrete([2, 3], start=[1, 0]),
     "must start at 0"),
    (spaces.Box(-1.0, 1.0, (3,)), spaces.MultiDiscrete([[2, 3], [2, 2]]), "must be 1-D"),
    (spaces.Dict({"image": spaces.Box(0, 255, (7, 7, 3), np.uint8),
                  "mission": spaces.Text(10)}), spaces.Discrete(3),
     r"observation\['mission'\]: Text spaces .*FilterObservation"),
    (spaces.Dict({"a": spaces.Dict({"b": spaces.Dict({"c": spaces.Discrete(2)})})}),
     spaces.Discrete(2), r"observation\['a'\]\['b'\]: Dict/Tuple spaces nested deeper"),
    (spaces.Box(0, 255, (8, 8, 3), np.int32), spaces.Discrete(2),
     r"observation: images must be uint8, bool or float"),
    (spaces.Tuple((spaces.Box(0, 1, (5, 5, 1)), spaces.Box(0, 1, (5, 5, 1)))),
     spaces.Discrete(2), r"observation\[1\]: a second image leaf"),
])
def test_make_policy_rejects_unsupported_spaces(obs_space, act_space, match):
    """What no encoder or distribution handles is a one-line ValueError naming the space (the
    leaf's path in a structured one) and the fix."""
    with pytest.raises(ValueError, match=match) as info:
        make_policy(obs_space, act_space)
    assert "\n" not in str(info.value)


def test_multiinput_checkpoint_with_other_spaces_is_refused():
    """Loading a MultiInputPolicy's state into a policy built from other spaces (a leaf
    changed) is a ValueError naming both architectures."""
    pi = build("multiinput-image")
    other_space = spaces.Dict({"frame": spaces.Box(0, 255, IMAGE, np.uint8),
                               "dir": spaces.Discrete(4, start=1)})
    other = MultiInputPolicy(other_space, spaces.MultiDiscrete(NVEC), conv_layers=TINY_CONV,
                             conv_hidden_sizes=(3,))
    with pytest.raises(ValueError, match="checkpoint holds a MultiInputPolicy with architecture"):
        other.load_state_dict(pi.state_dict())


def test_multiinput_act_checks_structured_observations():
    """A MultiInputPolicy needs the dict of arrays (a plain array, a missing leaf, a NaN
    in a Box leaf and a Discrete value out of range are ValueErrors naming the leaf)."""
    pi, rng = build("multiinput-normalized"), np.random.default_rng(0)
    obs = fixed_obs("multiinput-normalized", 3)
    with pytest.raises(ValueError, match="as the vector env returns it .a Dict of arrays"):
        pi.act(np.zeros((3, 3)), rng)
    with pytest.raises(ValueError, match=r"obs has no observation\['door'\]"):
        pi.act({k: v for k, v in obs.items() if k != "door"}, rng)
    bad = dict(obs, pos=np.full((3, OBS_DIM), np.nan))
    with pytest.raises(ValueError, match=r"observation\['pos'\] contains NaN"):
        pi.act(bad, rng)
    with pytest.raises(ValueError, match=r"observation\['door'\] holds a value outside"):
        pi.act(dict(obs, door=np.array([0, 3, 1])), rng)


def test_multiinput_normalizer_covers_only_the_box_leaves():
    """With obs_normalization the Box leaf's columns are normalised and the one-hot and bit
    columns are passed as they are; normalizer_input is what the statistics are kept over."""
    pi = build("multiinput-normalized")
    obs = fixed_obs("multiinput-normalized", 4)
    assert np.array_equal(pi.normalizer_input(obs), obs["pos"])
    images, flat = pi._preprocess(obs)
    cols = pi.layout.box_columns
    np.testing.assert_allclose(flat[:, cols], pi.obs_normalizer.normalize(obs["pos"]))
    rest = np.setdiff1d(np.arange(pi.layout.flat_dim), cols)
    assert images is None
    assert np.array_equal(flat[:, rest], pi.layout.encode(obs)[:, rest])


def test_make_policy_rejects_image_boxes_and_shifted_discrete():
    """A 2-D Box and a Discrete with start ≠ 0 are ValueErrors saying how to fix them."""
    with pytest.raises(ValueError, match="1-D Box"):
        make_policy(spaces.Box(0.0, 1.0, (4, 4)), spaces.Discrete(2))
    with pytest.raises(ValueError, match="start"):
        make_policy(spaces.Box(0.0, 1.0, (4,)), spaces.Discrete(2, start=1))


def test_theta_setter_validates_and_getter_copies():
    """θ has a fixed shape and must be finite; the getter returns a copy."""
    policy = build("gaussian")
    with pytest.raises(ValueError, match=rf"theta must have shape \({policy.num_params},\)"):
        policy.theta = np.zeros(3)
    bad = policy.theta
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        policy.theta = bad
    t = policy.theta
    t[:] = 0.0
    assert not np.array_equal(policy.theta, t)


def test_bad_observations_and_arguments_raise():
    """Wrong observation shapes, out-of-range states and bad constructor arguments are
    ValueErrors naming the argument."""
    with pytest.raises(ValueError, match=r"obs must have shape \(N, 3\)"):
        build("categorical").act(np.zeros(3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="integer states"):
        build("tabular").distribution_params(np.array([0, NUM_STATES]))
    with pytest.raises(ValueError, match="hidden_sizes"):
        CategoricalMLP(3, 2, hidden_sizes=(4, 0))
    with pytest.raises(ValueError, match="obs_normalizer has shape"):
        GaussianMLP(3, 2, obs_normalizer=ObservationNormalizer(4))
    with pytest.raises(ValueError, match="obs_batch must have shape"):
        ObservationNormalizer(3).update(np.zeros((2, 4)))


def test_tabular_act_and_step_reject_states_out_of_range_or_not_integers():
    """act and step check the states as distribution_params does: -1 (which indexing would
    wrap to the last state), S and float states are the same ValueError."""
    policy, rng = build("tabular"), np.random.default_rng(0)
    for bad in (np.array([-1]), np.array([NUM_STATES]), np.array([0.0, 1.0])):
        for call, args in ((policy.act, (bad, rng)), (policy.step, (bad, rng)),
                           (policy.distribution_params, (bad,))):
            with pytest.raises(ValueError, match=rf"integer states in \[0, {NUM_STATES}\)"):
                call(*args)
    assert policy.act(np.array([0, NUM_STATES - 1], dtype=np.int32), rng).shape == (2,)


@pytest.mark.parametrize("kind", ["categorical", "gaussian", "categorical-normalized"])
def test_act_rejects_nonfinite_observations_and_a_missing_generator(kind):
    """act on NaN or inf observations is a ValueError (not action 0 or NaN actions), and an
    rng that is not a numpy Generator is a ValueError saying what to pass, in act and step."""
    policy, obs = build(kind), np.zeros((2, OBS_DIM))
    for value in (np.nan, np.inf):
        bad = obs.copy()
        bad[1, 0] = value
        with pytest.raises(ValueError, match="NaN or inf"):
            policy.act(bad, np.random.default_rng(0))
    for rng in (None, 0):
        with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
            policy.act(obs, rng)
        with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
            policy.step(obs, rng)


def test_normalizer_checks_shapes_and_loaded_state():
    """normalize needs the normaliser's shape in the last axes (no broadcasting of a column
    or a scalar); the constructor takes an int or a tuple; a loaded state needs finite
    statistics, var >= 0 and a non-negative count. A refused state changes nothing."""
    norm = ObservationNormalizer(3)
    for bad in (np.zeros((3, 1)), 1.0, np.zeros(4)):
        with pytest.raises(ValueError, match=r"obs must have shape \(\.\.\., 3\)"):
            norm.normalize(bad)
    assert norm.normalize(np.zeros(3)).shape == (3,)
    assert norm.normalize(np.zeros((5, 3))).shape == (5, 3)
    with pytest.raises(ValueError, match="shape must be a positive int"):
        ObservationNormalizer(3.0)
    norm.update(np.arange(6.0).reshape(2, 3))
    good = norm.state_dict()
    for key, value, match in [("mean", np.full(3, np.nan), "finite"),
                              ("var", np.array([1.0, -1.0, 1.0]), "finite and >= 0"),
                              ("count", -5, "count"), ("count", 2.5, "count"),
                              ("clip", 0.0, "clip"), ("epsilon", np.nan, "epsilon")]:
        with pytest.raises(ValueError, match=match):
            norm.load_state_dict({**good, key: value})
    after = norm.state_dict()
    assert after["count"] == good["count"] and np.array_equal(after["mean"], good["mean"])


def test_bad_seeds_name_the_argument():
    """A negative or non-integer seed is a ValueError naming ``seed`` for every policy;
    Generators and SeedSequences are accepted."""
    for make in (lambda seed: TabularSoftmax(3, 2, init_std=1.0, seed=seed),
                 lambda seed: CategoricalMLP(3, 2, (4,), seed=seed),
                 lambda seed: GaussianMLP(3, 2, (4,), seed=seed)):
        for seed in (-1, 1.5, True):
            with pytest.raises(ValueError, match="seed must be a non-negative integer"):
                make(seed)
        a = make(np.random.default_rng(3)).theta
        assert np.array_equal(a, make(np.random.default_rng(3)).theta)
        assert np.array_equal(make(np.random.SeedSequence(4)).theta,
                              make(np.random.SeedSequence(4)).theta)


@pytest.mark.parametrize("kind", ["multicategorical", "bernoulli", "cnn",
                                  "multiinput-normalized", "multiinput-image"])
@pytest.mark.parametrize("fisher_fraction", [1.0, 0.5])
def test_trpo_step_runs_unchanged_on_the_new_policies(kind, fisher_fraction):
    """The natural step needs nothing new: on a batch sampled from each new policy (dict
    observations included, subsampled for the Fisher by index), trpo_step returns a step
    whose mean KL is within the radius and whose surrogate improved, or keeps θ and says so;
    with advantages that reward one action it takes a step."""
    from rl.algorithms import TRPOConfig
    from rl.algorithms.objective import PolicyObjective
    from rl.algorithms.trpo import trpo_step

    policy = build(kind, seed=9)
    obs = fixed_obs(kind, 40, -2.0, 2.0)
    actions, log_probs, params = policy.step(obs, np.random.default_rng(1))
    first = actions if actions.ndim == 1 else actions[:, 0]
    advantages = np.where(first == 0, 1.0, -1.0)  # a direction the policy can follow
    objective = PolicyObjective(policy, obs, actions, advantages, log_probs, params)
    config = TRPOConfig(max_kl=0.01, fisher_fraction=fisher_fraction)
    theta, diag = trpo_step(objective, config, rng=np.random.default_rng(2))
    assert diag["trpo/line_search_success"], diag["trpo/status"]
    assert diag["trpo/kl"] <= config.max_kl
    assert diag["trpo/surrogate_after"] > diag["trpo/surrogate_before"]
    assert np.isclose(float(objective.mean_kl(theta)), diag["trpo/kl"], rtol=1e-9, atol=1e-15)
