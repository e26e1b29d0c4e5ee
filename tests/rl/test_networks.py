"""The MLP's hand-written Jacobian products equal autograd's, and its fast tanh is tanh.

:meth:`rl.networks.MLP.linearize` caches one forward pass and applies ``J v`` (forward mode)
and ``J^T w`` (backpropagation) by hand; these tests hold them to autograd's
``make_jvp`` / ``make_vjp`` of the traced :meth:`rl.networks.MLP.forward`.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from autograd import make_jvp, make_vjp
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.networks import _EXP_TANH_MIN_SIZE, _POOL_MAX_BYTES, MLP, SquaredErrorKernel, _tanh_into
from tests.strategies import finite_floats

EPS = np.finfo(np.float64).eps


@st.composite
def networks(draw):
    """An MLP with 1-3 layers of width 1-6, a point θ near its initialisation and a batch."""
    sizes = tuple(draw(st.lists(st.integers(1, 6), min_size=2, max_size=4)))
    activation = draw(st.sampled_from(["tanh", "relu", "identity"]))
    net = MLP(sizes, activation=activation, seed=draw(st.integers(0, 2**16)))
    delta = draw(hnp.arrays(np.float64, net.num_params, elements=finite_floats(-1.0, 1.0)))
    n = draw(st.integers(1, 7))
    x = draw(hnp.arrays(np.float64, (n, sizes[0]), elements=finite_floats(-3.0, 3.0)))
    return net, net.params + delta, x


def relu_ties(net, theta, x) -> bool:
    """Whether a ReLU pre-activation is exactly 0, where the derivative is a convention
    (autograd's ``maximum`` splits it 1/2 : 1/2, the kernels take 0)."""
    if net.activation != "relu":
        return False
    h = x
    for k, (W, b) in enumerate(net.unflatten(theta)):
        z = h @ W + b
        if k < len(net.sizes) - 2 and np.any(z == 0.0):
            return True
        h = np.maximum(z, 0.0)
    return False


@given(networks(), st.data())
def test_linearize_products_equal_autograd(problem, data):
    """``output``, ``J v`` and ``J^T w`` of :meth:`MLP.linearize` equal the traced forward pass
    and autograd's forward- and reverse-mode products, to ``64 eps`` times the scale of the
    operands (the same operations in a different order). ReLU ties (pre-activation exactly
    0) are excluded: there the derivative is a convention."""
    net, theta, x = problem
    assume(not relu_ties(net, theta, x))
    lin = net.linearize(theta, x)
    vjp, y = make_vjp(lambda t: net.forward(t, x))(theta)
    v = data.draw(hnp.arrays(np.float64, net.num_params, elements=finite_floats(-2.0, 2.0)))
    w = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats(-2.0, 2.0)))
    jv = make_jvp(lambda t: net.forward(t, x))(theta)(v)[1]
    np.testing.assert_allclose(lin.output, y, rtol=0, atol=64 * EPS * max(1.0, np.abs(y).max()))
    scale = 1.0 + np.abs(theta).max() + np.abs(x).max()
    tol = 64 * EPS * scale**2 * (1.0 + np.abs(v).max() + np.abs(w).max()) * net.num_params
    np.testing.assert_allclose(lin.jvp(v), jv, rtol=0, atol=tol)
    np.testing.assert_allclose(lin.vjp(w), vjp(w), rtol=0, atol=tol)


@given(networks())
def test_linearize_products_are_adjoint(problem):
    """The dot-product test ``<w, J v> = <J^T w, v>`` holds to rounding, so the Gauss-Newton
    and Fisher operators built on the products are symmetric."""
    net, theta, x = problem
    lin = net.linearize(theta, x)
    assert lin.check(net.num_params, np.random.default_rng(0)) < 1e-10


def test_linearize_does_not_touch_the_cached_parameters():
    """Linearising at θ leaves the sampler's cached weights (``params``) alone, and the products
    do not change between calls (the cache is read-only)."""
    net = MLP((3, 4, 2), seed=0)
    before = net.params.copy()
    x = np.random.default_rng(1).standard_normal((5, 3))
    lin = net.linearize(before + 1.0, x)
    np.testing.assert_array_equal(net.params, before)
    v = np.ones(net.num_params)
    first = lin.jvp(v).copy()
    lin.vjp(np.ones((5, 2)))
    np.testing.assert_array_equal(lin.jvp(v), first)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_linearizations_reuse_memory_only_once_their_products_are_dropped(dtype, activation):
    """A linearisation's large arrays go back to its network's pool when nothing can use them
    any more (the :class:`Linearization` and its ``jvp`` / ``vjp`` all dropped) and the next
    linearisation takes them from there. Products kept alive while others come and go give
    exactly the numbers of a network that never shares memory (a deep copy per linearisation)."""
    net = MLP((3, 64, 64, 2), activation=activation, seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((512, 3))  # 512 x 64 arrays: large enough to be pooled
    thetas = [net.params + 0.3 * rng.standard_normal(net.num_params) for _ in range(4)]
    v, w = rng.standard_normal(net.num_params), rng.standard_normal((512, 2))

    def reference(theta):
        lin = copy.deepcopy(net).linearize(theta, x)
        return lin.output.copy(), lin.jvp(v).copy(), lin.vjp(w).copy()

    def products(lin_or_pair):
        jvp, vjp = lin_or_pair
        return jvp(v).copy(), vjp(w).copy()

    def pooled():
        return sum(len(a) for a in net._pool.values())

    lin_a = net.linearize(thetas[0], x)
    kept_a = (lin_a.jvp, lin_a.vjp)  # the products outlive the Linearization
    out_a = lin_a.output
    products(kept_a)
    del lin_a
    assert pooled() == 0  # its products are alive: nothing may be reused
    lin_b = net.linearize(thetas[1], x)
    products((lin_b.jvp, lin_b.vjp))
    del lin_b
    assert pooled() > 0  # lin_b is gone with its products: its arrays are free
    before = pooled()
    lin_c = net.linearize(thetas[2], x)
    assert pooled() < before  # ... and lin_c took some of them
    lin_d = net.linearize(thetas[3], x)
    for kept, out, theta in [(kept_a, out_a, thetas[0]),
                             ((lin_c.jvp, lin_c.vjp), lin_c.output, thetas[2]),
                             ((lin_d.jvp, lin_d.vjp), lin_d.output, thetas[3])]:
        ref_out, ref_jv, ref_vj = reference(theta)
        jv, vj = products(kept)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(jv, ref_jv)
        np.testing.assert_array_equal(vj, ref_vj)
    del kept_a, lin_c, lin_d
    held = sum(a.nbytes for free in net._pool.values() for a in free)
    assert 0 < held <= _POOL_MAX_BYTES


def test_the_pool_of_linearisation_memory_is_bounded(monkeypatch):
    """However many linearisations are dropped at once, the network keeps at most
    ``_POOL_MAX_BYTES`` of their arrays."""
    monkeypatch.setattr("rl.networks._POOL_MAX_BYTES", 3 * 512 * 64 * 8)  # 3 arrays
    net = MLP((3, 64, 64, 2), seed=0)
    x = np.random.default_rng(1).standard_normal((512, 3))
    lins = [net.linearize(net.params, x) for _ in range(4)]  # 4 x 4 arrays of 256 KiB
    del lins
    held = [a.nbytes for free in net._pool.values() for a in free]
    assert len(held) == 3 and sum(held) == 3 * 512 * 64 * 8


def test_linearize_rejects_bad_input():
    """Wrong θ or batch shapes, and a wrong-length ``v``, raise ValueErrors naming the argument."""
    net = MLP((3, 4, 2), seed=0)
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="flat_params"):
        net.linearize(np.zeros(3), x)
    with pytest.raises(ValueError, match="x must have shape"):
        net.linearize(net.params, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="v must have"):
        net.linearize(net.params, x).jvp(np.zeros(4))


@pytest.mark.parametrize("size", [7, _EXP_TANH_MIN_SIZE, 4 * _EXP_TANH_MIN_SIZE])
def test_fast_tanh_equals_numpy_tanh(size):
    """The exp form of tanh agrees with ``numpy.tanh`` to ``2 eps`` absolute over [-800, 800]
    (including 0, tiny arguments and the overflowing tails), below and above the size at
    which it switches forms, and writes in place."""
    z = np.concatenate([np.linspace(-800.0, 800.0, size - 5), [0.0, 1e-300, -1e-12, 19.0, -19.5]])
    ref = np.tanh(z)
    out = _tanh_into(z.copy(), np.empty_like(z))
    np.testing.assert_allclose(out, ref, rtol=0, atol=2 * EPS)
    assert np.all(np.abs(out) <= 1.0)
    inplace = z.copy()
    _tanh_into(inplace, inplace)
    np.testing.assert_array_equal(inplace, out)


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_float32_network_agrees_with_float64_to_single_precision(activation):
    """A float32 network computes the float64 network's output and products to single
    precision (relative error below 1e-5 of the result's scale) and hands back float64."""
    rng = np.random.default_rng(3)
    net64 = MLP((5, 16, 16, 3), activation=activation, seed=0)
    net32 = MLP((5, 16, 16, 3), activation=activation, seed=0, dtype="float32")
    theta = net64.params + 0.3 * rng.standard_normal(net64.num_params)
    x = rng.standard_normal((300, 5))
    lin64, lin32 = net64.linearize(theta, x), net32.linearize(theta, x)
    v, w = rng.standard_normal(net64.num_params), rng.standard_normal((300, 3))
    for a, b in ((lin32.output, lin64.output), (lin32.jvp(v), lin64.jvp(v)),
                 (lin32.vjp(w), lin64.vjp(w)), (net32.forward(theta, x), lin64.output)):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
    net32.set_params(theta)
    np.testing.assert_allclose(net32.forward_numpy(x), lin64.output, rtol=0,
                               atol=1e-5 * np.abs(lin64.output).max())
    assert lin32.check(net32.num_params, rng) < 1e-5


def test_dtype_is_validated():
    """Only float64 and float32 are accepted, by name or numpy type."""
    assert MLP((2, 3, 1), dtype=np.float32).dtype == np.float32
    for bad in ("float16", "double-ish", int):
        with pytest.raises(ValueError, match="dtype must be one of"):
            MLP((2, 3, 1), dtype=bad)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_forward_numpy_small_batches_take_the_same_arithmetic(dtype, activation):
    """forward_numpy takes a lighter path for a few rows (a sampler step): bit for bit the
    batch pass on the same rows, and the batch pass on more rows to rounding."""
    net = MLP((3, 200, 7, 2), activation=activation, seed=1, dtype=dtype)
    x = np.random.default_rng(2).standard_normal((40, 3)) * 3.0
    big = net.forward_numpy(x)  # 40 rows: the batch pass
    tol = 1e-12 if dtype == "float64" else 1e-5
    for lo in range(0, 40, 8):
        small = net.forward_numpy(x[lo:lo + 8])
        np.testing.assert_array_equal(
            small, net._output_pass(net._weights, net._checked_inputs(x[lo:lo + 8])))
        np.testing.assert_allclose(small, big[lo:lo + 8], rtol=tol, atol=tol)
    np.testing.assert_array_equal(net.forward_numpy(x[:1]), net.forward(net.params, x[:1]))


@given(networks(), st.data())
def test_squared_error_kernel_equals_the_linearisation(problem, data):
    """The minibatch kernel's loss and gradient are ``½ mean ‖y − z‖²`` and ``J^T (y − z) / n``
    from :meth:`MLP.linearize` (itself tested against autograd above), for any batch of at
    most ``max_rows`` rows, at parameters loaded with ``set_params`` or updated in place."""
    net, theta, x = problem
    assume(not relu_ties(net, theta, x))
    n, out = x.shape[0], net.sizes[-1]
    z = data.draw(hnp.arrays(np.float64, (n, out), elements=finite_floats(-2.0, 2.0)))
    kernel = SquaredErrorKernel(net, max_rows=n + data.draw(st.integers(0, 3)))
    kernel.set_params(theta)
    for rows in (n, max(1, n // 2)):  # the buffers serve smaller batches too
        lin = net.linearize(theta, x[:rows])
        r = lin.output - z[:rows]
        loss, grad = kernel(x[:rows], z[:rows] if out > 1 else z[:rows, 0])
        scale = 1.0 + float(np.max(np.abs(r)))
        assert loss == pytest.approx(0.5 * float(np.sum(r * r)) / rows, rel=1e-12, abs=1e-14)
        g_ref = lin.vjp(r / rows)
        np.testing.assert_allclose(grad, g_ref, rtol=0,
                                   atol=1e-12 * scale * (1 + np.abs(g_ref).max()))
        assert grad.dtype == np.float64
    # in-place updates of kernel.params are what the next call sees
    kernel.params[...] = theta + 0.5
    lin = net.linearize(theta + 0.5, x)
    _, grad = kernel(x, z if out > 1 else z[:, 0], copy=False)
    np.testing.assert_allclose(grad, lin.vjp((lin.output - z) / n), rtol=1e-9, atol=1e-12)


def test_squared_error_kernel_float32_and_bad_input():
    net = MLP((3, 16, 1), seed=0, dtype="float32")
    x = np.random.default_rng(0).standard_normal((10, 3))
    z = np.random.default_rng(1).standard_normal(10)
    kernel = SquaredErrorKernel(net, 10)
    with pytest.raises(ValueError, match="set_params"):
        kernel(x, z)
    kernel.set_params(net.params)
    lin = MLP((3, 16, 1), seed=0).linearize(net.params, x)  # float64 reference
    r = lin.output[:, 0] - z
    loss, grad = kernel(x, z)
    assert loss == pytest.approx(0.5 * r @ r / 10, rel=1e-5)
    np.testing.assert_allclose(grad, lin.vjp(r[:, None] / 10), rtol=1e-4, atol=1e-6)
    assert kernel(x, z, copy=False)[1].dtype == np.float32
    for bad_x, bad_z, match in [(np.ones((11, 3)), np.ones(11), "max_rows"),
                                (np.ones((4, 2)), np.ones(4), "x must have shape"),
                                (np.ones((4, 3)), np.ones(5), "z must have shape")]:
        with pytest.raises(ValueError, match=match):
            kernel(bad_x, bad_z)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_rows"):
            SquaredErrorKernel(net, bad)
    with pytest.raises(ValueError, match="MLP"):
        SquaredErrorKernel("net", 4)


@pytest.mark.parametrize("seed", [-1, "a", 1.5, True])
def test_seed_is_validated_naming_it(seed):
    """A negative seed used to fail inside numpy ("expected non-negative integer")."""
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        MLP((2, 3), seed=seed)


def test_seed_accepts_integers_generators_and_seed_sequences():
    ref = MLP((2, 4, 1), seed=5).params
    for seed in (np.int64(5), np.random.default_rng(5), np.random.SeedSequence(5)):
        np.testing.assert_array_equal(MLP((2, 4, 1), seed=seed).params, ref)


def test_forward_accepts_array_likes_and_rejects_non_numbers():
    """A list of parameters used to reach the autograd path and fail with AttributeError
    ('list' object has no attribute 'reshape'); it now takes the plain numpy pass."""
    net = MLP((3, 4, 2), seed=0)
    x = np.random.default_rng(1).standard_normal((5, 3))
    expected = net.forward(net.params, x)
    np.testing.assert_array_equal(net.forward(list(net.params), x), expected)
    np.testing.assert_array_equal(net.forward(tuple(net.params), x), expected)
    with pytest.raises(ValueError, match=r"flat_params must have shape \(26,\)"):
        net.forward(list(net.params[:-1]), x)
    with pytest.raises(ValueError, match="flat_params must be a 1-D array of 26 real numbers"):
        net.forward(["a"] * net.num_params, x)
    # the traced path is unchanged: autograd's VJP of forward matches linearize's
    u = np.random.default_rng(2).standard_normal((5, 2))
    vjp, _ = make_vjp(lambda th: net.forward(th, x))(net.params)
    np.testing.assert_allclose(vjp(u), net.linearize(net.params, x).vjp(u), rtol=1e-12,
                               atol=1e-14)
