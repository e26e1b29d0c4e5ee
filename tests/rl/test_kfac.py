"""K-FAC for the MLP policies: exact where the theory says so, and equal to a dense
computation of its own definition everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from autograd import jacobian

from rl.distributions import Categorical
from rl.kfac import fisher_roots, kfac_blocks, kfac_fisher_operator
from rl.policies import CategoricalMLP, GaussianMLP, TabularSoftmax

EPS = np.finfo(np.float64).eps


def _dense(op, n):
    return op @ np.eye(n)


@pytest.mark.parametrize("obs_dim,act_dim,rows", [(1, 1, 1), (3, 2, 40), (5, 3, 200)])
def test_kfac_is_the_exact_fisher_for_a_linear_layer_with_a_gaussian_head(obs_dim, act_dim,
                                                                          rows):
    """One linear layer, Gaussian head: the score of the mean is Sigma^{-1}(a - mu) whatever
    the input, so G = E[g g^T] = Sigma^{-1} does not depend on the input and
    F = E[a a^T] (x) Sigma^{-1} exactly; the log-std block 2I is exact too (uncoupled)."""
    rng = np.random.default_rng(obs_dim)
    policy = GaussianMLP(obs_dim, act_dim, hidden_sizes=(), init_log_std=-0.3, seed=0)
    policy.theta = policy.theta + 0.5 * rng.standard_normal(policy.num_params)
    obs = rng.standard_normal((rows, obs_dim))
    w = rng.random(rows)
    w /= w.sum()
    n = policy.num_params
    F = _dense(policy.fisher_operator(obs), n)  # exact, weights 1/N
    K = kfac_fisher_operator(policy, obs).todense()
    np.testing.assert_allclose(K, F, rtol=0, atol=64 * n * EPS * np.abs(F).max())
    # with row weights, against the exact weighted Fisher J^T diag(w) F_dist J
    from rl.algorithms.objective import PolicyObjective

    params = policy.distribution_params(obs)
    obj = PolicyObjective(policy, obs, np.zeros((rows, act_dim)), np.zeros(rows),
                          np.zeros(rows), params, weights=w)
    Fw = _dense(obj.fisher_operator(), n)
    Kw = kfac_fisher_operator(policy, obs, w).todense()
    np.testing.assert_allclose(Kw, Fw, rtol=0, atol=64 * n * EPS * np.abs(Fw).max())


@pytest.mark.parametrize("hidden", [(), (4,), (4, 3)])
def test_kfac_is_exact_for_a_single_input(hidden):
    """One observation (one input, so no expectation over inputs): for a single linear
    layer the block is a a^T (x) F_dist exactly, for a categorical head too. With hidden
    layers only the bias blocks of each layer are exact in general (below)."""
    policy = CategoricalMLP(3, 4, hidden, seed=1)
    obs = np.random.default_rng(2).standard_normal((1, 3))
    n = policy.num_params
    F = _dense(policy.fisher_operator(obs), n)
    K = kfac_fisher_operator(policy, obs).todense()
    if not hidden:
        np.testing.assert_allclose(K, F, rtol=0, atol=64 * n * EPS * np.abs(F).max())
    else:  # one input: each layer's diagonal block is exact (a a^T is deterministic)
        o = 0
        for n_in, n_out in zip((3, *hidden), (*hidden, 4), strict=True):
            size = (n_in + 1) * n_out
            blk = slice(o, o + size)
            np.testing.assert_allclose(K[blk, blk], F[blk, blk], rtol=0,
                                       atol=64 * n * EPS * np.abs(F).max())
            o += size


def _bias_slices(sizes):
    out, o = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        out.append((slice(o, o + n_in * n_out), slice(o + n_in * n_out, o + (n_in + 1) * n_out),
                    n_in, n_out))
        o += (n_in + 1) * n_out
    return out


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_kfac_factors_equal_their_dense_definition(kind):
    """For a two-hidden-layer network: A_l = sum_n w_n abar abar^T from the layer inputs
    (recomputed by a plain forward pass) and G_l = sum_n w_n J_b^T F_dist J_b with J_b the
    autograd Jacobian of the distribution parameters in the layer's bias -- which is also
    why K-FAC's bias-bias block is exact: abar's last entry is the constant 1."""
    rng = np.random.default_rng(3)
    if kind == "categorical":
        policy, out = CategoricalMLP(3, 4, (5, 4), seed=0), 4
    else:
        policy, out = GaussianMLP(3, 2, (5, 4), init_log_std=0.2, seed=0), 2
    policy.theta = policy.theta + 0.3 * rng.standard_normal(policy.num_params)
    obs = rng.standard_normal((9, 3))
    w = rng.random(9)
    w /= w.sum()
    blocks = kfac_blocks(policy, obs, w)
    theta = policy.theta
    y = policy.distribution_params(obs)
    # output Fisher per row, in the network's outputs
    if kind == "categorical":
        p = np.asarray(Categorical(y).probs())
        Fout = np.stack([np.diag(pi) - np.outer(pi, pi) for pi in p])
    else:
        Fout = np.stack([np.diag(np.exp(-2 * yi[2:])) for yi in y])
    roots = fisher_roots(policy.distribution_class, y)
    np.testing.assert_allclose(roots @ np.swapaxes(roots, 1, 2), Fout, rtol=0, atol=1e-14)
    sizes = policy.net.sizes
    h = obs
    for layer, (wsl, bsl, n_in, n_out) in enumerate(_bias_slices(sizes)):
        abar = np.hstack([h, np.ones((len(h), 1))])
        np.testing.assert_allclose(blocks[layer][0], abar.T @ (w[:, None] * abar),
                                   rtol=1e-12, atol=1e-14)

        def outputs(b, bsl=bsl):
            import autograd.numpy as anp

            th = anp.concatenate([theta[: bsl.start], b, theta[bsl.stop:]])
            return policy.distribution_params(obs, th)[:, :out]

        Jb = jacobian(outputs)(theta[bsl])  # (N, out, n_out)
        G = np.einsum("n,noi,nop,npj->ij", w, Jb, Fout, Jb)
        np.testing.assert_allclose(blocks[layer][1], G, rtol=1e-10, atol=1e-14)
        W = theta[wsl].reshape(n_in, n_out)
        h = np.tanh(abar[:, :-1] @ W + theta[bsl]) if layer < len(sizes) - 2 else None
    # the bias-bias block of K-FAC equals the exact Fisher's
    n = policy.num_params
    from rl.algorithms.objective import PolicyObjective

    obj = PolicyObjective(policy, obs, np.zeros(9, dtype=int) if kind == "categorical"
                          else np.zeros((9, 2)), np.zeros(9), np.zeros(9), y, weights=w)
    F = _dense(obj.fisher_operator(), n)
    K = kfac_fisher_operator(policy, obs, w).todense()
    for _, bsl, _, _ in _bias_slices(sizes):
        np.testing.assert_allclose(K[bsl, bsl], F[bsl, bsl], rtol=1e-10,
                                   atol=1e-12 * np.abs(F).max())


def test_kfac_operator_of_a_policy_is_spd_and_inverts():
    """With damping the K-FAC operator of a deep policy is symmetric positive definite and
    its inverse product undoes its forward product."""
    rng = np.random.default_rng(4)
    policy = GaussianMLP(4, 2, (6, 6), seed=0)
    obs = rng.standard_normal((30, 4))
    K = kfac_fisher_operator(policy, obs, damping=0.1)
    M = K.todense()
    np.testing.assert_array_equal(M, M.T)
    assert np.linalg.eigvalsh(M)[0] > 0.0
    v = rng.standard_normal(policy.num_params)
    tol = 64 * len(v) * EPS * np.linalg.cond(M) * np.linalg.norm(v)
    np.testing.assert_allclose(K @ (K.inverse() @ v), v, rtol=0, atol=tol)


def test_kfac_refuses_other_policies():
    with pytest.raises(ValueError, match="MLP policy"):
        kfac_fisher_operator(TabularSoftmax(3, 2), np.array([0, 1]))


def _batch_objective(kind, n=60, seed=0):
    from rl.algorithms.objective import PolicyObjective

    rng = np.random.default_rng(seed)
    if kind == "categorical":
        policy = CategoricalMLP(3, 3, (6,), seed=0)
    else:
        policy = GaussianMLP(3, 2, (6,), seed=0)
    obs = rng.standard_normal((n, 3))
    old = policy.distribution_params(obs)
    actions, logp = policy.distribution_class(old).sample_with_log_prob(rng)
    return PolicyObjective(policy, obs, actions, rng.standard_normal(n), logp, old)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_kfac_preconditioned_trpo_solves_the_same_system(kind):
    """preconditioner='kfac' changes CG's iterations, not the system: run to convergence,
    plain and preconditioned CG give the same direction (to the CG tolerance times the
    condition number), hence the same TRPO step."""
    from rl.algorithms import TRPOConfig, trpo_step

    steps = {}
    for pre in ("none", "kfac"):
        obj = _batch_objective(kind)
        n = obj.policy.num_params
        cfg = TRPOConfig(preconditioner=pre, cg_iterations=4 * n, cg_rtol=1e-12)
        theta, diag = trpo_step(obj, cfg)
        assert diag["cg/status"] == "CONVERGED"
        steps[pre] = theta - obj.theta_old
    scale = np.linalg.norm(steps["none"])
    np.testing.assert_allclose(steps["kfac"], steps["none"], rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_kfac_direction_is_the_kfac_natural_gradient_scaled_and_line_searched(kind):
    """direction='kfac': the step is along K^{-1} g (K the damped K-FAC Fisher), its
    quadratic-model KL on the boundary before the line search, the accepted KL <= delta."""
    from rl.algorithms import TRPOConfig, trpo_step

    obj = _batch_objective(kind)
    cfg = TRPOConfig(direction="kfac", max_kl=0.01)
    g = obj.gradient()
    d = kfac_fisher_operator(obj.policy, obj.observations, damping=cfg.damping).inverse() @ g
    theta, diag = trpo_step(obj, cfg)
    assert diag["trpo/line_search_success"]
    step = theta - obj.theta_old
    cosine = float(step @ d) / (np.linalg.norm(step) * np.linalg.norm(d))
    assert cosine == pytest.approx(1.0, abs=1e-12)
    assert diag["cg/nit"] == 1
    assert diag["trpo/kl"] <= 0.01


@pytest.mark.parametrize("changes,match", [
    ({"preconditioner": "jacobi"}, "preconditioner"),
    ({"direction": "adam"}, "direction"),
    ({"preconditioner": "kfac", "damping": 0.0}, "damping"),
    ({"direction": "kfac", "damping": 0.0}, "damping"),
])
def test_kfac_settings_are_validated(changes, match):
    from rl.algorithms import TRPOConfig

    with pytest.raises(ValueError, match=match):
        TRPOConfig(**changes)


def test_the_preconditioner_is_a_command_line_setting():
    """``--set preconditioner=kfac`` and ``--set direction=kfac`` reach TRPOConfig."""
    pytest.importorskip("gymnasium")
    from rl.train import resolve_config

    _, cfg = resolve_config("trpo", "CartPole-v1", overrides={"preconditioner": "kfac"})
    assert cfg.preconditioner == "kfac"
    _, cfg = resolve_config("trpo", "CartPole-v1", overrides={"direction": "kfac"})
    assert cfg.direction == "kfac"


# ----------------------------------------------------------------- the convolutional torso
def _cnn(image_shape=(4, 4, 2), conv=((3, 4, 1),), hidden=(5,), actions=3, seed=0):
    from rl.policies import CategoricalCNN

    return CategoricalCNN(image_shape, actions, conv_layers=conv, hidden_sizes=hidden,
                          seed=seed)


def test_cnn_kfac_is_exact_for_one_image_and_one_output_position():
    """One image, a kernel as large as the image (one output position): every layer's
    block of the Fisher is a a^T (x) sum_k delta_k delta_k^T, so K-FAC's blocks are exact."""
    policy = _cnn()
    obs = np.random.default_rng(3).standard_normal((1, 4, 4, 2))
    n = policy.num_params
    F = _dense(policy.fisher_operator(obs), n)
    K = kfac_fisher_operator(policy, obs).todense()
    o = 0
    for size in ((4 * 4 * 2 + 1) * 3, (3 + 1) * 5, (5 + 1) * 3):  # conv, dense, logits
        blk = slice(o, o + size)
        np.testing.assert_allclose(K[blk, blk], F[blk, blk], rtol=0,
                                   atol=64 * n * EPS * np.abs(F).max())
        o += size
    assert o == n


def test_cnn_kfac_factors_equal_kfc_from_autograd_per_position_derivatives():
    """Several images and output positions: A and G of the convolution against their KFC
    definitions, the patches gathered by loops and the per-position derivatives
    delta_{n,t,k} = d(R_n^T y_n)_k / dz_{n,t} taken by autograd through the rest of the
    network."""
    import autograd.numpy as anp

    policy = _cnn(image_shape=(5, 5, 2), conv=((3, 3, 1),), hidden=(4,), actions=2, seed=1)
    net = policy.net
    rng = np.random.default_rng(5)
    N, k, C, c_out, H = 3, 3, 2, 3, 3
    images = rng.standard_normal((N, 5, 5, 2))
    w = rng.random(N)
    w /= w.sum()
    theta = policy.theta
    kernel, _shape, bias, _k, _s = net._conv_layout[0]
    K, b = theta[kernel].reshape(C * k * k, c_out), theta[bias]
    head = theta[net._conv_params:]
    roots = fisher_roots(Categorical, policy.distribution_params(images))
    A = np.zeros((C * k * k + 1,) * 2)
    G = np.zeros((c_out, c_out))
    for n_ in range(N):
        patches = np.array([np.concatenate([images[n_, i:i + k, j:j + k, :]
                                            .transpose(2, 0, 1).ravel(), [1.0]])
                            for i in range(H) for j in range(H)])  # (T, C k k + 1)
        A += w[n_] * patches.T @ patches
        z = patches[:, :-1] @ K + b  # (T, c_out)

        layers = net.head.unflatten(head)  # the dense ReLU layers after the convolution

        def out(z_, layers=layers):
            a = anp.reshape(anp.maximum(z_, 0.0), (1, -1))
            for W, bb in layers[:-1]:
                a = anp.maximum(anp.dot(a, W) + bb, 0.0)
            W, bb = layers[-1]
            return (anp.dot(a, W) + bb)[0]

        J = jacobian(out)(z)  # (actions, T, c_out)
        for kk in range(roots.shape[2]):
            delta = np.einsum("o,otc->tc", roots[n_, :, kk], J)
            G += w[n_] * delta.T @ delta / (H * H)
    blocks = net.kronecker_factors(theta, images, roots, w)
    np.testing.assert_allclose(blocks[0][0], A, rtol=1e-12, atol=1e-12 * np.abs(A).max())
    np.testing.assert_allclose(blocks[0][1], G, rtol=1e-10, atol=1e-12 * np.abs(G).max())


def test_cnn_kfac_operator_is_spd_and_inverts():
    rng = np.random.default_rng(6)
    policy = _cnn(image_shape=(6, 6, 1), conv=((2, 3, 1), (2, 2, 2)), hidden=(4,), seed=2)
    obs = rng.integers(0, 256, size=(8, 6, 6, 1)).astype(np.uint8)
    K = kfac_fisher_operator(policy, obs, damping=0.1)
    M = K.todense()
    np.testing.assert_allclose(M, M.T, rtol=0, atol=1e-14 * np.abs(M).max())
    assert np.linalg.eigvalsh(0.5 * (M + M.T))[0] > 0.0
    v = rng.standard_normal(policy.num_params)
    tol = 64 * len(v) * EPS * np.linalg.cond(M) * np.linalg.norm(v)
    np.testing.assert_allclose(K @ (K.inverse() @ v), v, rtol=0, atol=tol)


def test_kfac_preconditioned_trpo_trains_a_convolutional_policy(tmp_path):
    """TRPO with the K-FAC preconditioner on image observations, through the runner: the
    CNN's KFC factors feed preconditioned CG, and the step differs from plain CG's."""
    from rl import train
    from tests.rl.space_tasks import ImageTask

    config = {"num_envs": 2, "steps_per_env": 64, "eval_episodes": 0, "hidden_sizes": (16,),
              "value_iterations": 3}
    runs = {pre: train("trpo", ImageTask, steps=256, seed=0, out=tmp_path / pre,
                       config={**config, "preconditioner": pre}, progress=False, plot=False)
            for pre in ("none", "kfac")}
    assert type(runs["kfac"].policy).__name__ == "CategoricalCNN"
    assert all(r.status == "completed" for r in runs.values())
    assert all(row["cg/status"] != "NON_FINITE" for row in runs["kfac"].history)
    assert not np.array_equal(runs["kfac"].policy.theta, runs["none"].policy.theta)
