"""The convolutional torso: its forward pass is the textbook convolution, its hand-written
Jacobian products equal autograd's and finite differences, and its memory is bounded by
the chunk.

:meth:`rl.conv.ConvNet.linearize` applies ``J v`` (forward mode) and ``J^T w``
(backpropagation through im2col / col2im) by hand; these tests hold them to autograd's
``make_jvp`` / ``make_vjp`` of :meth:`rl.conv.ConvNet.forward` (which gathers its patches by
index, a different route to the same matrix) and to central differences, and the forward
pass to ``scipy.signal.correlate``.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.signal
from autograd import make_jvp, make_vjp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl.advantages import ConvValueFunction
from rl.conv import NATURE_CONV, ConvNet
from tests.strategies import finite_floats

EPS = np.finfo(np.float64).eps


def reference_forward(net: ConvNet, theta, images, extra=None):
    """The network written from the definition: each convolution as ``scipy.signal.correlate``
    ("valid") of every input channel with its kernel, summed, subsampled by the stride; ReLU;
    then the dense layers. Returns the output and every pre-activation (for ReLU ties)."""
    x = np.asarray(images, dtype=np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
    if net.layout == "CHW":
        x = np.moveaxis(x, 1, -1)
    offset, pre = 0, []
    h = x
    for c_out, k, s in net.conv_layers:
        C = h.shape[-1]
        K = theta[offset:offset + C * k * k * c_out].reshape(C, k, k, c_out)
        offset += C * k * k * c_out
        b = theta[offset:offset + c_out]
        offset += c_out
        H, W = (h.shape[1] - k) // s + 1, (h.shape[2] - k) // s + 1
        z = np.empty((h.shape[0], H, W, c_out))
        for n in range(h.shape[0]):
            for o in range(c_out):
                z[n, :, :, o] = b[o] + sum(
                    scipy.signal.correlate(h[n, :, :, c], K[c, :, :, o], mode="valid")[::s, ::s]
                    for c in range(C))
        pre.append(z)
        h = np.maximum(z, 0.0)
    f = h.reshape(h.shape[0], -1)
    if extra is not None:
        f = np.concatenate([f, extra], axis=1)
    for W, b in net.head.unflatten(theta[offset:])[:-1]:
        z = f @ W + b
        pre.append(z)
        f = np.maximum(z, 0.0)
    W, b = net.head.unflatten(theta[offset:])[-1]
    return f @ W + b, pre


@st.composite
def conv_problems(draw, max_rows=4):
    """A small ConvNet (1-2 convolutions, kernels 1-3, strides 1-2, 0-1 dense layers, an
    optional extra input, HWC or CHW, a chunk size from 1), θ near its initialisation, and a
    batch of float or uint8 images."""
    H, W, C = draw(st.integers(3, 7)), draw(st.integers(3, 7)), draw(st.integers(1, 3))
    layers, h, w = [], H, W
    for _ in range(draw(st.integers(1, 2))):
        k = draw(st.integers(1, min(3, h, w)))
        s = draw(st.integers(1, 2))
        layers.append((draw(st.integers(1, 3)), k, s))
        h, w = (h - k) // s + 1, (w - k) // s + 1
    layout = draw(st.sampled_from(["HWC", "CHW"]))
    shape = (H, W, C) if layout == "HWC" else (C, H, W)
    extra_dim = draw(st.integers(0, 2))
    net = ConvNet(shape, draw(st.integers(1, 3)), layout=layout, conv_layers=layers,
                  hidden_sizes=tuple(draw(st.lists(st.integers(1, 4), max_size=1))),
                  extra_dim=extra_dim, seed=draw(st.integers(0, 2**16)),
                  chunk_size=draw(st.integers(1, 3)),
                  max_cache_bytes=draw(st.sampled_from([0, 1 << 30])))
    theta = net.params + draw(hnp.arrays(np.float64, net.num_params,
                                         elements=finite_floats(-0.5, 0.5)))
    n = draw(st.integers(1, max_rows))
    if draw(st.booleans()):
        x = draw(hnp.arrays(np.uint8, (n, *shape)))
    else:
        x = draw(hnp.arrays(np.float64, (n, *shape), elements=finite_floats(-2.0, 2.0)))
    extra = (draw(hnp.arrays(np.float64, (n, extra_dim), elements=finite_floats(-2.0, 2.0)))
             if extra_dim else None)
    return net, theta, x, extra


def _ties(pre) -> bool:
    """A ReLU pre-activation exactly 0, where the derivative is a convention."""
    return any(np.any(z == 0.0) for z in pre)


@settings(max_examples=30)
@given(conv_problems())
def test_forward_is_the_textbook_convolution(problem):
    """forward (traced gather), forward at plain θ and forward_numpy (im2col by strides, in
    chunks) all equal the definition written with scipy.signal.correlate, to rounding."""
    net, theta, x, extra = problem
    ref, _ = reference_forward(net, theta, x, extra)
    tol = 64 * EPS * net.num_params * (1.0 + np.abs(ref).max())
    np.testing.assert_allclose(net.forward(theta, x, extra), ref, rtol=0, atol=tol)
    net.set_params(theta)
    np.testing.assert_allclose(net.forward_numpy(x, extra), ref, rtol=0, atol=tol)
    from autograd import grad  # the traced path, through a scalar function of θ
    g = grad(lambda t: net.forward(t, x, extra)[0, 0])(theta)
    assert g.shape == theta.shape


@settings(max_examples=30)
@given(conv_problems(), st.data())
def test_linearize_products_equal_autograd(problem, data):
    """``output``, ``J v`` and ``J^T w`` of :meth:`ConvNet.linearize` (cached or recomputed
    chunk by chunk) equal autograd's forward- and reverse-mode products of the traced forward,
    to ``64 eps`` times the number of parameters and the operands' scale (the same sums in
    another order). ReLU ties are excluded (there the derivative is a convention)."""
    net, theta, x, extra = problem
    _, pre = reference_forward(net, theta, x, extra)
    assume(not _ties(pre))
    lin = net.linearize(theta, x, extra)

    def f(t):
        return net.forward(t, x, extra)

    vjp, y = make_vjp(f)(theta)
    v = data.draw(hnp.arrays(np.float64, net.num_params, elements=finite_floats(-1.0, 1.0)))
    w = data.draw(hnp.arrays(np.float64, y.shape, elements=finite_floats(-1.0, 1.0)))
    scale = (1.0 + np.abs(theta).max()) ** 2 * (1.0 + np.abs(np.asarray(x, float)).max())
    tol = 64 * EPS * net.num_params * scale * (1.0 + np.abs(y).max())
    np.testing.assert_allclose(lin.output, y, rtol=0, atol=tol)
    np.testing.assert_allclose(lin.jvp(v), make_jvp(f)(theta)(v)[1], rtol=0, atol=tol)
    np.testing.assert_allclose(lin.vjp(w), vjp(w), rtol=0, atol=tol * len(x))
    assert lin.check(net.num_params, np.random.default_rng(0)) < 1e-10


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jvp_matches_central_differences(layout, seed):
    """``J v ≈ (y(θ + h v) − y(θ − h v)) / 2h`` with h = 1e-5: the network is a polynomial in
    θ between ReLU kinks, so the error is O(h²) (truncation) + O(eps/h) (rounding), below 1e-7
    relative; the seeds are fixed and no pre-activation lies within h·|dz| of a kink (checked)."""
    rng = np.random.default_rng(seed)
    shape = (6, 7, 2) if layout == "HWC" else (2, 6, 7)
    net = ConvNet(shape, 3, layout=layout, conv_layers=((3, 3, 2), (2, 2, 1)),
                  hidden_sizes=(5,), extra_dim=1, seed=seed, chunk_size=2)
    theta = net.params + 0.3 * rng.standard_normal(net.num_params)
    x = rng.integers(0, 256, (4, *shape), dtype=np.uint8)
    extra = rng.standard_normal((4, 1))
    v = rng.standard_normal(net.num_params)
    h = 1e-5
    _, pre_plus = reference_forward(net, theta + h * v, x, extra)
    _, pre_minus = reference_forward(net, theta - h * v, x, extra)
    assert all(np.array_equal(a > 0, b > 0) for a, b in zip(pre_plus, pre_minus, strict=True))
    fd = (net.forward(theta + h * v, x, extra) - net.forward(theta - h * v, x, extra)) / (2 * h)
    jv = net.linearize(theta, x, extra).jvp(v)
    np.testing.assert_allclose(jv, fd, rtol=0, atol=1e-7 * (1.0 + np.abs(jv).max()))
    # and the gradient of a scalar, <w, y(θ)>, by central differences along v
    w = rng.standard_normal(jv.shape)
    g = net.linearize(theta, x, extra).vjp(w)
    np.testing.assert_allclose(g @ v, np.sum(w * fd), rtol=1e-7, atol=1e-9)


def test_layouts_chunks_and_cache_give_the_same_numbers():
    """The same θ on the same images in HWC and in CHW order gives the same outputs and
    products; chunk size and caching change only the order of the work (outputs agree to
    rounding, cached and recomputed products bit for bit)."""
    rng = np.random.default_rng(3)
    kw = dict(conv_layers=((4, 3, 2), (3, 2, 1)), hidden_sizes=(6,), seed=0)
    hwc = ConvNet((8, 9, 3), 2, layout="HWC", chunk_size=5, **kw)
    chw = ConvNet((3, 8, 9), 2, layout="CHW", chunk_size=2, **kw)
    recompute = ConvNet((8, 9, 3), 2, layout="HWC", chunk_size=5, max_cache_bytes=0, **kw)
    assert np.array_equal(hwc.params, chw.params)
    x = rng.standard_normal((11, 8, 9, 3))
    v, w = rng.standard_normal(hwc.num_params), rng.standard_normal((11, 2))
    a, b = hwc.linearize(hwc.params, x), chw.linearize(chw.params, np.moveaxis(x, -1, 1))
    c = recompute.linearize(hwc.params, x)
    tol = 1e-13
    np.testing.assert_allclose(a.output, b.output, rtol=0, atol=tol)
    np.testing.assert_allclose(a.jvp(v), b.jvp(v), rtol=0, atol=tol)
    np.testing.assert_allclose(a.vjp(w), b.vjp(w), rtol=0, atol=tol)
    assert np.array_equal(a.jvp(v), c.jvp(v)) and np.array_equal(a.vjp(w), c.vjp(w))


def test_uint8_pixels_are_scaled_and_bools_are_bits():
    """uint8 images are the floats x / 255; bool images are 0.0 / 1.0."""
    rng = np.random.default_rng(4)
    net = ConvNet((5, 5, 2), 2, conv_layers=((2, 3, 1),), hidden_sizes=(), seed=0)
    x = rng.integers(0, 256, (3, 5, 5, 2), dtype=np.uint8)
    np.testing.assert_allclose(net.forward_numpy(x), net.forward_numpy(x / 255.0), atol=1e-15)
    bits = rng.random((3, 5, 5, 2)) < 0.5
    assert np.array_equal(net.forward_numpy(bits), net.forward_numpy(bits.astype(float)))


def test_nature_layout_on_atari_frames():
    """The default is the DQN Nature torso: 84 x 84 x 4 frames go to 20 x 20 x 32, 9 x 9 x 64,
    7 x 7 x 64 = 3136 features, then 512 units; the parameter count is the sum of the layers'."""
    net = ConvNet((84, 84, 4), 6, seed=0)
    assert net.conv_layers == NATURE_CONV and net.hidden_sizes == (512,)
    assert net.feature_shapes == [(84, 84, 4), (20, 20, 32), (9, 9, 64), (7, 7, 64)]
    assert net.num_features == 3136
    expected = (4 * 64 * 32 + 32) + (32 * 16 * 64 + 64) + (64 * 9 * 64 + 64) \
        + (3136 * 512 + 512) + (512 * 6 + 6)
    assert net.num_params == expected
    kernel = net.params[:4 * 64 * 32].reshape(4 * 64, 32)
    np.testing.assert_allclose(kernel.T @ kernel, 2.0 * np.eye(32), atol=1e-12)  # orthogonal


def test_memory_is_bounded_by_the_chunk():
    """With a fixed chunk size, the peak memory the forward pass and a recomputing
    linearisation's products allocate grows with the batch only by the outputs and the
    gradient (a few numbers per image), not by the patch matrices and activations
    (thousands per image): measured with tracemalloc, which numpy reports its buffers to."""
    rng = np.random.default_rng(5)
    net = ConvNet((24, 24, 2), 3, conv_layers=((8, 4, 2), (8, 3, 1)), hidden_sizes=(16,),
                  seed=0, chunk_size=8, max_cache_bytes=0)

    def peak(n):
        x = rng.integers(0, 256, (n, 24, 24, 2), dtype=np.uint8)
        w = rng.standard_normal((n, 3))
        v = rng.standard_normal(net.num_params)
        tracemalloc.start()
        net.forward_numpy(x)
        lin = net.linearize(net.params, x)
        lin.jvp(v)
        lin.vjp(w)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    small, large = peak(16), peak(256)
    per_image = net.activation_bytes(1)
    # the unbounded version would add ≥ 240 images' activations to the peak
    assert large - small < 0.1 * 240 * per_image
    cached = ConvNet((24, 24, 2), 3, conv_layers=((8, 4, 2), (8, 3, 1)), hidden_sizes=(16,),
                     seed=0, chunk_size=8)
    assert cached.activation_bytes(256) == 256 * per_image


def test_bad_input_raises_clear_errors():
    """Wrong image shapes (with the layout hint), dtypes, extra inputs, kernels larger than
    their input, malformed conv_layers and bad sizes are one-line ValueErrors naming the
    argument and the fix."""
    net = ConvNet((6, 6, 2), 2, conv_layers=((2, 3, 1),), hidden_sizes=(), seed=0)
    with pytest.raises(ValueError, match=r"images must have shape \(N, 6, 6, 2\) in HWC"):
        net.forward_numpy(np.zeros((1, 6, 6)))
    with pytest.raises(ValueError, match="layout='CHW'"):
        net.forward_numpy(np.zeros((1, 2, 6, 6)))
    with pytest.raises(ValueError, match="images must be uint8"):
        net.forward_numpy(np.zeros((1, 6, 6, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="extra was given"):
        net.forward_numpy(np.zeros((1, 6, 6, 2)), np.zeros((1, 1)))
    with_extra = ConvNet((6, 6, 2), 2, conv_layers=((2, 3, 1),), extra_dim=3, seed=0)
    with pytest.raises(ValueError, match=r"extra must have shape \(1, 3\)"):
        with_extra.forward_numpy(np.zeros((1, 6, 6, 2)))
    with pytest.raises(ValueError, match="conv_layers\\[1\\] has kernel 9"):
        ConvNet((10, 10, 1), 2, conv_layers=((4, 3, 1), (4, 9, 1)))
    for bad in ((), ((4, 3),), ((4, 0, 1),), "abc"):
        with pytest.raises(ValueError, match="conv_layers must be"):
            ConvNet((10, 10, 1), 2, conv_layers=bad)
    for kwargs, match in ((dict(image_shape=(10, 10)), "image_shape"),
                          (dict(layout="NHWC"), "layout"), (dict(chunk_size=0), "chunk_size"),
                          (dict(out_dim=0), "out_dim"), (dict(dtype="int8"), "dtype"),
                          (dict(seed=-1), "seed")):
        args = dict(image_shape=(10, 10, 1), out_dim=2, conv_layers=((2, 3, 1),))
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            ConvNet(args.pop("image_shape"), args.pop("out_dim"), **args)
    with pytest.raises(ValueError, match=r"flat_params must have shape"):
        net.linearize(np.zeros(3), np.zeros((1, 6, 6, 2)))
    with pytest.raises(ValueError, match="v must have"):
        net.linearize(net.params, np.zeros((1, 6, 6, 2))).jvp(np.zeros(3))


def test_float32_network_agrees_with_float64_to_single_precision():
    """dtype="float32" computes in single precision: outputs and products within ~1e-5 of
    the float64 network's (relative rounding 6e-8 per operation over a few hundred terms)."""
    rng = np.random.default_rng(6)
    kw = dict(conv_layers=((4, 3, 2),), hidden_sizes=(8,), seed=1)
    n64 = ConvNet((9, 9, 2), 3, **kw)
    n32 = ConvNet((9, 9, 2), 3, dtype="float32", **kw)
    x = rng.integers(0, 256, (5, 9, 9, 2), dtype=np.uint8)
    a, b = n64.linearize(n64.params, x), n32.linearize(n32.params, x)
    v, w = rng.standard_normal(n64.num_params), rng.standard_normal((5, 3))
    for p, q in ((a.output, b.output), (a.jvp(v), b.jvp(v)), (a.vjp(w), b.vjp(w))):
        assert q.dtype == np.float64
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-5 * (1.0 + np.abs(p).max()))


# -- the value function on images ------------------------------------------------------------
def _frames_and_targets(n=48, seed=7):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, 6, 6, 2), dtype=np.uint8)
    targets = 3.0 + 2.0 * frames[:, :3, :3, 0].mean(axis=(1, 2)) / 255.0  # a local feature
    return frames, targets


@pytest.mark.parametrize("optimizer", ["trust-region", "lbfgs", "adam"])
def test_conv_value_function_fits_with_every_solver(optimizer):
    """Each solver of MLPValueFunction lowers the squared error of the convolutional value
    function on frames; frames stored flat (one row each) give the same predictions."""
    frames, y = _frames_and_targets()
    vf = ConvValueFunction((6, 6, 2), conv_layers=((4, 3, 1),), hidden_sizes=(8,), seed=0,
                           optimizer=optimizer, iterations=3, minibatch_size=16)
    info = vf.fit(frames, y)
    assert info["value/loss"] < info["value/loss_before"]
    np.testing.assert_array_equal(vf.predict(frames.reshape(len(frames), -1)), vf.predict(frames))


def test_conv_value_function_gradient_and_output_rescaling():
    """The L-BFGS / Adam gradient J^T r / N equals autograd's gradient of ½ mean((V − z)²);
    PopArt's rescaling of the output layer (Alg. 1 of van Hasselt et al.) leaves every
    prediction unchanged, the output layer found at the end of the ConvNet's θ."""
    from autograd import grad

    frames, y = _frames_and_targets(12)
    vf = ConvValueFunction((6, 6, 2), conv_layers=((3, 3, 2),), hidden_sizes=(5,), seed=1)
    phi = vf.net.params + 0.1 * np.random.default_rng(0).standard_normal(vf.num_params)
    loss, g = vf._loss_and_gradient(frames, y)(phi)

    def half_mse(t):
        r = vf.net.forward(t, frames)[:, 0] - y
        return 0.5 * (r @ r) / len(y)

    np.testing.assert_allclose(loss, half_mse(phi), rtol=1e-13)
    np.testing.assert_allclose(g, grad(half_mse)(phi), rtol=0, atol=1e-12 * (1 + abs(g).max()))
    vf.net.set_params(phi)
    before = vf.predict(frames)
    vf._restandardize(10.0 * y - 4.0)
    np.testing.assert_allclose(vf.predict(frames), before, rtol=1e-12, atol=1e-12)


def test_conv_value_function_state_round_trip_and_errors():
    """state_dict / load_state_dict restore predictions exactly; a state of another
    architecture or of the MLP value function, and frames of the wrong shape, are
    ValueErrors naming the difference."""
    from rl.advantages import MLPValueFunction

    frames, y = _frames_and_targets()
    kw = dict(conv_layers=((4, 3, 1),), hidden_sizes=(8,))
    vf = ConvValueFunction((6, 6, 2), seed=0, **kw)
    vf.fit(frames, y)
    clone = ConvValueFunction((6, 6, 2), seed=5, **kw)
    clone.load_state_dict(vf.state_dict())
    np.testing.assert_array_equal(clone.predict(frames), vf.predict(frames))
    with pytest.raises(ValueError, match="state is for a network with image_shape"):
        ConvValueFunction((6, 6, 2), seed=0, conv_layers=((2, 3, 1),)).load_state_dict(
            vf.state_dict())
    with pytest.raises(ValueError, match="saved by 'ConvValueFunction'"):
        MLPValueFunction(72, seed=0).load_state_dict(vf.state_dict())
    with pytest.raises(ValueError, match=r"obs must have shape \(N, 6, 6, 2\) or \(N, 72\)"):
        vf.predict(np.zeros((3, 6, 6)))
