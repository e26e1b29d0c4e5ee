"""A convolutional torso on a flat parameter vector, in numpy: images to features to outputs.

:class:`ConvNet` is the image counterpart of :class:`rl.networks.MLP`, with the same three
paths through one float64 θ:

* :meth:`ConvNet.forward` — traceable by autograd (the reference the tests compare with,
  and the trial-point evaluations of the update);
* :meth:`ConvNet.linearize` — the output with hand-written Jacobian-vector and
  vector-Jacobian products (the policy gradient and the Fisher-vector product
  ``Jᵀ F J v``);
* :meth:`ConvNet.forward_numpy` — plain numpy on the cached weights (the sampler).

A convolution is one matrix product on the image's patches (im2col [1]_): the patches are a
strided view of the input (``numpy.lib.stride_tricks.sliding_window_view``), copied into a
``(rows · H_out · W_out, C · k · k)`` matrix; the transpose convolution of the backward
pass adds the patch gradients back into the image, one strided slice per kernel offset.
Every pass walks the batch in chunks of ``chunk_size`` images, so the patch matrices (the
largest temporaries: 100 k numbers per 84 x 84 x 4 image in the first Nature layer) are
bounded by the chunk, not the batch.

References
----------
.. [1] K. Chellapilla, S. Puri, P. Simard, "High performance convolutional neural networks
   for document processing", 10th International Workshop on Frontiers in Handwriting
   Recognition, 2006.
"""

from __future__ import annotations

import numbers

import autograd.numpy as anp
import numpy as np
from autograd.tracer import Box
from numpy.lib.stride_tricks import sliding_window_view

from rl.networks import MLP, orthogonal
from rl.validation import as_generator
from trustregion import Linearization

__all__ = ["ConvNet", "NATURE_CONV", "MINATAR_CONV", "conv_torso_for"]

#: The DQN "Nature" torso: (out_channels, kernel, stride) of each convolution, followed by a
#: 512-unit dense layer (Mnih et al., "Human-level control through deep reinforcement
#: learning", Nature 518, 2015, Methods).
NATURE_CONV = ((32, 8, 4), (64, 4, 2), (64, 3, 1))

#: The MinAtar torso for small frames: one convolution of 16 3 x 3 filters, stride 1,
#: followed by a 128-unit dense layer (Young and Tian, "MinAtar: An Atari-inspired testbed
#: for thorough and reproducible reinforcement learning experiments", arXiv:1903.03176,
#: 2019, Sec. 4).
MINATAR_CONV = ((16, 3, 1),)


def conv_torso_for(image_shape, layout: str = "HWC"):
    """``(conv_layers, hidden_sizes)`` of the default torso for images of ``image_shape``.

    The Nature torso (:data:`NATURE_CONV`, one dense layer of 512) where it fits, that is on
    frames of at least 36 x 36 pixels (84 x 84 Atari frames); on smaller frames, where its
    8 x 8 stride-4 kernels cannot run, the MinAtar torso (:data:`MINATAR_CONV`, 128).

    Parameters
    ----------
    image_shape : tuple of 3 ints
        One frame, in ``layout`` order.
    layout : {"HWC", "CHW"}, default "HWC"

    Examples
    --------
    >>> conv_torso_for((84, 84, 4))
    (((32, 8, 4), (64, 4, 2), (64, 3, 1)), (512,))
    >>> conv_torso_for((10, 10, 4))
    (((16, 3, 1),), (128,))
    """
    shape = tuple(int(v) for v in image_shape)
    H, W = shape[:2] if layout == "HWC" else shape[1:]
    for _, k, s in NATURE_CONV:
        if k > H or k > W:
            return MINATAR_CONV, (128,)
        H, W = (H - k) // s + 1, (W - k) // s + 1
    return NATURE_CONV, (512,)

_LAYOUTS = ("HWC", "CHW")
_DTYPES = ("float64", "float32")


def _conv_spec(conv_layers) -> tuple[tuple[int, int, int], ...]:
    try:
        spec = tuple(tuple(layer) for layer in conv_layers)
    except TypeError:
        spec = None
    if not spec or not all(
        len(layer) == 3 and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                and v >= 1 for v in layer)
        for layer in spec
    ):
        raise ValueError(
            "conv_layers must be a non-empty sequence of (out_channels, kernel, stride) triples "
            f"of positive ints, e.g. {NATURE_CONV}; got {conv_layers!r}"
        )
    return tuple(tuple(int(v) for v in layer) for layer in spec)


class ConvNet:
    """Convolutional network on a flat parameter vector: convolutions, dense layers, output.

    Parameters
    ----------
    image_shape : tuple of 3 ints
        Shape of one image, in ``layout`` order.
    out_dim : int
        Width of the output (the distribution parameters).
    layout : {"HWC", "CHW"}, default "HWC"
        Axis order of the images (gymnasium's Atari and MinAtar frames are HWC; frames
        stacked in front are CHW).
    conv_layers : sequence of (out_channels, kernel, stride), default NATURE_CONV
        The convolutions, each followed by a ReLU ("valid" padding, square kernels).
    hidden_sizes : sequence of int, default (512,)
        Dense ReLU layers after the flattened convolution features (Nature: one of 512).
    extra_dim : int, default 0
        Width of a vector input concatenated with the flattened convolution features before
        the dense layers (the other leaves of a Dict observation).
    output_gain : float, default 1.0
        Gain of the orthogonal initialisation of the output layer (0.01 for a policy head).
    seed : int >= 0, numpy.random.Generator or None
    dtype : {"float64", "float32"}, default "float64"
        Precision of the numpy passes (θ and the results are float64 whatever the choice).
    chunk_size : int, default 64
        Images per chunk in every numpy pass; bounds the temporaries.
    max_cache_bytes : int, default 2**29
        :meth:`linearize` keeps every layer's activations for its products when they fit
        in this many bytes, and otherwise recomputes them chunk by chunk in each product
        (memory bounded by the chunk, one more forward pass per product).

    Attributes
    ----------
    num_params : int
    params : ndarray of shape (num_params,)
        The parameters cached for :meth:`forward_numpy`.
    feature_shapes : list of tuple
        ``(H, W, C)`` of the input and of each convolution's output.

    Notes
    -----
    With ``h_0`` the image as ``(H, W, C)`` (``uint8`` pixels scaled by 1/255, ``bool`` as
    0/1), layer ``l`` computes ``z_l = P(h_l) K_l + b_l``, ``h_{l+1} = relu(z_l)``, where
    ``P(h)`` is the im2col matrix whose row ``(n, i, j)`` is the ``C k k`` patch of image ``n``
    at ``(s i, s j)``, and ``K_l`` the kernel as a ``(C k k, C')`` matrix. The dense part is
    :class:`rl.networks.MLP`'s arithmetic on ``f = [vec(h_L), extra]`` with ReLU. Products
    (derived with the Fisher-vector product, :ref:`the convolutional torso <conv-products>`):

    * ``J v``: ``dz_l = P(h_l) dK_l + db_l + P(dh_l) K_l``, ``dh_{l+1} = [z_l > 0] ⊙ dz_l``;
    * ``Jᵀ u``: ``∇K_l = P(h_l)ᵀ δ_l``, ``∇b_l = Σ δ_l``, ``δ_{l-1} = [z_{l-1} > 0] ⊙
      Pᵀ(δ_l K_lᵀ)``, where ``Pᵀ`` adds each patch back at its place (col2im).

    θ holds, per convolution, ``K_l`` of shape ``(C, k, k, C')`` then ``b_l``, then the
    dense layers as in :class:`rl.networks.MLP`. Initialisation: orthogonal ``K_l`` (as a
    ``(C k k, C')`` matrix) with gain √2, zero biases, as in the PPO Atari reference [1]_.

    References
    ----------
    .. [1] S. Huang et al., "The 37 Implementation Details of Proximal Policy
       Optimization", ICLR Blog Track, 2022 (``ppo_atari.py``).

    Examples
    --------
    >>> net = ConvNet((12, 12, 2), 3, conv_layers=((4, 3, 2), (4, 3, 1)), hidden_sizes=(8,),
    ...               seed=0)
    >>> net.feature_shapes
    [(12, 12, 2), (5, 5, 4), (3, 3, 4)]
    >>> x = np.random.default_rng(1).integers(0, 256, (5, 12, 12, 2), dtype=np.uint8)
    >>> bool(np.allclose(net.forward(net.params, x), net.forward_numpy(x)))
    True
    >>> lin = net.linearize(net.params, x)
    >>> lin.check(net.num_params, np.random.default_rng(2)) < 1e-12
    True
    """

    def __init__(self, image_shape, out_dim: int, *, layout: str = "HWC",
                 conv_layers=NATURE_CONV, hidden_sizes=(512,), extra_dim: int = 0,
                 output_gain: float = 1.0, seed=None, dtype="float64", chunk_size: int = 64,
                 max_cache_bytes: int = 1 << 29):
        shape = tuple(image_shape) if np.ndim(image_shape) == 1 else None
        if shape is None or len(shape) != 3 or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                for v in shape):
            raise ValueError(f"image_shape must be 3 positive ints (H, W, C) or (C, H, W); got "
                             f"{image_shape!r}")
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}; got {layout!r}")
        for name, value, low in (("out_dim", out_dim, 1), ("extra_dim", extra_dim, 0),
                                 ("chunk_size", chunk_size, 1),
                                 ("max_cache_bytes", max_cache_bytes, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
        if name not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}; got {dtype!r}")
        self.image_shape = tuple(int(v) for v in shape)
        self.layout = layout
        self.conv_layers = _conv_spec(conv_layers)
        self.hidden_sizes = tuple(hidden_sizes)
        self.extra_dim = int(extra_dim)
        self.out_dim = int(out_dim)
        self.dtype = np.dtype(name)
        self.chunk_size = int(chunk_size)
        self.max_cache_bytes = int(max_cache_bytes)
        self.output_gain = float(output_gain)

        H, W, C = self.image_shape if layout == "HWC" else (*self.image_shape[1:],
                                                            self.image_shape[0])
        self.feature_shapes = [(H, W, C)]
        self._conv_layout = []  # (kernel slice, kernel shape, bias slice, k, s)
        offset = 0
        for l, (c_out, k, s) in enumerate(self.conv_layers):
            if k > H or k > W:
                raise ValueError(
                    f"conv_layers[{l}] has kernel {k} but its input is {H} x {W} (image_shape "
                    f"{self.image_shape}, layout {layout}); use smaller kernels or strides for "
                    "small images, e.g. conv_layers=((16, 3, 1),)")
            kernel = slice(offset, offset + C * k * k * c_out)
            offset = kernel.stop
            bias = slice(offset, offset + c_out)
            offset = bias.stop
            self._conv_layout.append((kernel, (C, k, k, c_out), bias, k, s))
            H, W, C = (H - k) // s + 1, (W - k) // s + 1, c_out
            self.feature_shapes.append((H, W, C))
        self.num_features = H * W * C
        # the dense part: MLP's layout and arithmetic, ReLU, on [features, extra]
        self.head = MLP((self.num_features + self.extra_dim, *self.hidden_sizes, self.out_dim),
                        activation="relu", output_gain=self.output_gain, dtype=self.dtype,
                        seed=0)
        self._conv_params = offset
        self.num_params = offset + self.head.num_params
        self.set_params(self.init_params(as_generator(seed)))

    def __repr__(self) -> str:
        return (f"ConvNet(image_shape={self.image_shape}, out_dim={self.out_dim}, "
                f"layout={self.layout!r}, conv_layers={self.conv_layers}, "
                f"hidden_sizes={self.hidden_sizes}, extra_dim={self.extra_dim})")

    # -- parameters ---------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """Orthogonal kernels (gain √2) and zero biases; the dense part as
        :meth:`rl.networks.MLP.init_params` (gain √2 hidden, ``output_gain`` last)."""
        theta = np.zeros(self.num_params)
        for kernel, (C, k, _k, c_out), _bias, _k2, _s in self._conv_layout:
            theta[kernel] = orthogonal((C * k * k, c_out), np.sqrt(2.0), rng).ravel()
        theta[self._conv_params:] = self.head.init_params(rng)
        return theta

    def _check_params(self, flat) -> np.ndarray:
        try:
            flat = np.asarray(flat, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"flat_params must be a 1-D array of {self.num_params} real "
                             f"numbers; got {type(flat).__name__}") from exc
        if flat.shape != (self.num_params,):
            raise ValueError(f"flat_params must have shape ({self.num_params},) for {self!r}; "
                             f"got shape {flat.shape}")
        return flat

    def set_params(self, flat) -> None:
        """Cache ``flat`` as the compute-dtype weights :meth:`forward_numpy` uses."""
        flat = self._check_params(flat)
        if not np.all(np.isfinite(flat)):
            raise ValueError("flat_params contains NaN or inf; pass finite parameters")
        self.params = flat.copy()
        self._weights = self._kernels(self.params)
        self.head.set_params(self.params[self._conv_params:])

    def _kernels(self, flat):
        """``[(K_l as a (C k k, C') matrix, b_l), ...]`` in the compute dtype."""
        dt = self.dtype
        return [(np.ascontiguousarray(flat[kernel].reshape(C * k * k, c_out), dtype=dt),
                 flat[bias].astype(dt))
                for kernel, (C, k, _k, c_out), bias, _k2, _s in self._conv_layout]

    # -- inputs -------------------------------------------------------------------------
    def _check_inputs(self, images, extra):
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            hint = ""
            if x.ndim == 4 and sorted(x.shape[1:]) == sorted(self.image_shape):
                other = "CHW" if self.layout == "HWC" else "HWC"
                hint = f" (images in {other} order? build the network with layout={other!r})"
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.image_shape))}"
                             f") in {self.layout} order; got shape {x.shape}{hint}")
        if not (x.dtype == np.uint8 or x.dtype == np.bool_ or x.dtype.kind == "f"):
            raise ValueError(f"images must be uint8 (pixels, scaled by 1/255), bool or float; got "
                             f"dtype {x.dtype} (cast with images.astype(np.float32))")
        if self.extra_dim:
            e = np.asarray(extra) if extra is not None else None
            if e is None or e.shape != (x.shape[0], self.extra_dim):
                raise ValueError(f"extra must have shape ({x.shape[0]}, {self.extra_dim}) (the "
                                 "vector input beside the images); got "
                                 f"{None if e is None else e.shape}")
        elif extra is not None:
            raise ValueError("extra was given but the network has extra_dim=0; build it with "
                             "extra_dim=<width> or pass extra=None")
        else:
            e = None
        return x, e

    def _prepare(self, x):
        """One chunk of raw images as ``(n, H, W, C)`` in the compute dtype (scaled)."""
        if self.layout == "CHW":
            x = np.moveaxis(x, 1, -1)
        h = np.asarray(x, dtype=self.dtype)  # a copy for any input but a matching float
        if x.dtype == np.uint8:
            h = h * self.dtype.type(1.0 / 255.0)
        return h

    # -- traced path --------------------------------------------------------------------
    def forward(self, flat_params, images, extra=None):
        """Network output, traceable by autograd in ``flat_params`` (float64).

        Parameters
        ----------
        flat_params : array of shape (num_params,)
            An autograd box traces; anything else runs :meth:`forward_numpy`'s arithmetic at
            these parameters.
        images : ndarray of shape (N, *image_shape)
        extra : ndarray of shape (N, extra_dim), optional

        Returns
        -------
        y : array of shape (N, out_dim)
        """
        x, e = self._check_inputs(images, extra)
        if not isinstance(flat_params, Box):
            flat = self._check_params(flat_params)
            return self._numpy_pass(x, e, self._kernels(flat), flat[self._conv_params:])
        h = np.moveaxis(x, 1, -1) if self.layout == "CHW" else x
        h = np.asarray(h, dtype=np.float64) * (1.0 / 255.0 if x.dtype == np.uint8 else 1.0)
        n = h.shape[0]
        for (kernel, (C, k, _k, c_out), bias, _k2, s), (H, W, _c) in zip(
                self._conv_layout, self.feature_shapes[1:], strict=True):
            # gather the patches by index (the reference im2col), (n, H, W, k, k, C)
            rows = (np.arange(H) * s)[:, None, None, None] + np.arange(k)[None, None, :, None]
            cols = (np.arange(W) * s)[None, :, None, None] + np.arange(k)[None, None, None, :]
            patches = anp.transpose(h[:, rows, cols, :], (0, 1, 2, 5, 3, 4))
            z = anp.dot(anp.reshape(patches, (n * H * W, C * k * k)),
                        anp.reshape(flat_params[kernel], (C * k * k, c_out))) + flat_params[bias]
            h = anp.reshape(anp.maximum(z, 0.0), (n, H, W, c_out))
        f = anp.reshape(h, (n, self.num_features))
        if e is not None:
            f = anp.concatenate([f, np.asarray(e, dtype=np.float64)], axis=1)
        return self.head.forward(flat_params[self._conv_params:], f)

    # -- numpy passes -------------------------------------------------------------------
    def _chunks(self, n):
        return [slice(a, min(a + self.chunk_size, n)) for a in range(0, n, self.chunk_size)]

    def _conv_chunk(self, h, kernels, keep=False):
        """The convolutions on one prepared chunk; returns the features ``(n, F)`` and, with
        ``keep``, every layer's input ``h_l`` (``h_0`` the prepared chunk)."""
        acts = [h]
        n = h.shape[0]
        for (Km, b), (_kernel, (_C, k, _k, c_out), _bias, _k2, s), (H, W, _c) in zip(
                kernels, self._conv_layout, self.feature_shapes[1:], strict=True):
            z = _im2col(h, k, s, H, W) @ Km
            z += b
            np.maximum(z, 0.0, out=z)
            h = z.reshape(n, H, W, c_out)
            acts.append(h)
        return h.reshape(n, self.num_features), (acts if keep else None)

    def _features(self, f, e):
        if e is None:
            return f
        return np.concatenate([f, np.asarray(e, dtype=self.dtype)], axis=1)

    def _numpy_pass(self, x, e, kernels, head_params=None):
        n = x.shape[0]
        y = np.empty((n, self.out_dim))
        for c in self._chunks(n):
            f, _ = self._conv_chunk(self._prepare(x[c]), kernels)
            f = self._features(f, None if e is None else e[c])
            y[c] = (self.head.forward_numpy(f) if head_params is None
                    else self.head.forward(head_params, f))
        return y

    def forward_numpy(self, images, extra=None) -> np.ndarray:
        """Output at the cached parameters, plain numpy in chunks (the sampling hot path).

        Parameters
        ----------
        images : ndarray of shape (N, *image_shape), uint8, bool or float
        extra : ndarray of shape (N, extra_dim), optional

        Returns
        -------
        y : float64 ndarray of shape (N, out_dim)
        """
        x, e = self._check_inputs(images, extra)
        return self._numpy_pass(x, e, self._weights)

    def activation_bytes(self, num_images: int) -> int:
        """Bytes of the activations :meth:`linearize` would keep for ``num_images`` images
        (every layer's input, the dense layers' included) in the compute dtype."""
        per_image = sum(H * W * C for H, W, C in self.feature_shapes)
        per_image += self.num_features + self.extra_dim + sum(self.hidden_sizes)
        return int(num_images) * per_image * self.dtype.itemsize

    def linearize(self, flat_params, images, extra=None) -> Linearization:
        """The network linearised at ``flat_params``: output and Jacobian products in θ.

        The products walk the batch chunk by chunk. When :meth:`activation_bytes` of the
        batch is at most ``max_cache_bytes`` the forward pass keeps every layer's input
        for them; otherwise each product recomputes a chunk's activations before using
        them (memory bounded by ``chunk_size``, one more forward pass per product).

        Parameters
        ----------
        flat_params : ndarray of shape (num_params,)
        images : ndarray of shape (N, *image_shape)
        extra : ndarray of shape (N, extra_dim), optional

        Returns
        -------
        trustregion.Linearization
            ``output`` (N, out_dim); ``jvp`` maps (num_params,) to (N, out_dim), ``vjp``
            back; both agree with autograd's products of :meth:`forward`
            (``tests/rl/test_conv.py``).
        """
        flat = self._check_params(flat_params)
        x, e = self._check_inputs(images, extra)
        kernels = self._kernels(flat)
        dense = self._dense(flat)
        n = x.shape[0]
        chunks = self._chunks(n)
        keep = self.activation_bytes(n) <= self.max_cache_bytes
        cache = []

        def activations(i):
            """Every layer's input on chunk ``i``: conv ``h_0..h_L``, dense ``a_0..a_M``."""
            if cache:
                return cache[i]
            c = chunks[i]
            f, conv_acts = self._conv_chunk(self._prepare(x[c]), kernels, keep=True)
            a = [self._features(f, None if e is None else e[c])]
            for W, b in dense[:-1]:
                z = a[-1] @ W
                z += b
                a.append(np.maximum(z, 0.0, out=z))
            return conv_acts, a

        y = np.empty((n, self.out_dim))
        kept = []
        for i, c in enumerate(chunks):
            conv_acts, a = activations(i)
            W, b = dense[-1]
            y[c] = a[-1] @ W + b
            if keep:
                kept.append((conv_acts, a))
        cache.extend(kept)
        F, n_conv = self.num_features, self._conv_params
        layout, shapes, dense_layout = self._conv_layout, self.feature_shapes, self._dense_layout
        dt = self.dtype

        def jvp(v):
            v = np.asarray(v, dtype=np.float64).reshape(-1)
            if v.shape[0] != self.num_params:
                raise ValueError(f"v must have {self.num_params} entries; got {v.shape[0]}")
            tangents = self._kernels(v)
            d_dense = self._dense(v)
            out = np.empty((n, self.out_dim))
            for i, c in enumerate(chunks):
                conv_acts, a = activations(i)
                m = conv_acts[0].shape[0]
                dh = None
                for l, ((dK, db), (K, _b), (_kern, (_C, k, _k, c_out), _bias, _k2, s)) in \
                        enumerate(zip(tangents, kernels, layout, strict=True)):
                    H, W, _c = shapes[l + 1]
                    dz = _im2col(conv_acts[l], k, s, H, W) @ dK  # P(h_l) dK_l
                    dz += db
                    if dh is not None:
                        dz += _im2col(dh, k, s, H, W) @ K  # P(dh_l) K_l
                    dz *= conv_acts[l + 1].reshape(-1, c_out) > 0.0  # relu'(z_l)
                    dh = dz.reshape(m, H, W, c_out)
                # dense layers: dz_k = a_k dW_k + db_k + da_k W_k, da_0 = [d vec(h_L), 0]
                da = dh.reshape(m, F)
                for k_, ((W, _b), (dW, db)) in enumerate(zip(dense, d_dense, strict=True)):
                    dz = a[k_] @ dW
                    dz += db
                    dz += da @ (W[:F] if k_ == 0 else W)
                    if k_ < len(dense) - 1:
                        dz *= a[k_ + 1] > 0.0
                    da = dz
                out[c] = da
            return out

        def vjp(u):
            u = np.asarray(u, dtype=np.float64).reshape(n, self.out_dim)
            g = np.zeros(self.num_params)
            for i, c in enumerate(chunks):
                conv_acts, a = activations(i)
                m = conv_acts[0].shape[0]
                delta = u[c].astype(dt)
                for k_ in range(len(dense) - 1, -1, -1):  # dense: ∇W = aᵀ δ, δ ← δ Wᵀ ⊙ relu'
                    w_sl, _shape, b_sl = dense_layout[k_]
                    g[n_conv + w_sl.start:n_conv + w_sl.stop] += (a[k_].T @ delta).ravel()
                    g[n_conv + b_sl.start:n_conv + b_sl.stop] += delta.sum(axis=0)
                    W = dense[k_][0]
                    delta = delta @ (W[:F].T if k_ == 0 else W.T)
                    if k_ > 0:
                        delta *= a[k_] > 0.0
                for l in range(len(layout) - 1, -1, -1):  # convolutions, last to first
                    kernel, (_C, k, _k, c_out), bias, _k2, s = layout[l]
                    H, W, _c = shapes[l + 1]
                    d = delta.reshape(-1, c_out) * (conv_acts[l + 1].reshape(-1, c_out) > 0.0)
                    g[kernel] += (_im2col(conv_acts[l], k, s, H, W).T @ d).ravel()
                    g[bias] += d.sum(axis=0)
                    if l > 0:  # δ for h_l: the transpose convolution Pᵀ(δ Kᵀ)
                        delta = _col2im(d @ kernels[l][0].T, conv_acts[l].shape, k, s, H, W)
                del m
            return g

        return Linearization(y, jvp, vjp)

    def kronecker_factors(self, flat_params, images, roots, weights, extra=None):
        r"""Per-layer K-FAC factors for an output curvature given by its square roots.

        The convolutions get Grosse & Martens' (2016) KFC factors, the dense layers
        Martens & Grosse's (2015) K-FAC factors (as :meth:`rl.networks.MLP.kronecker_factors`).

        Parameters
        ----------
        flat_params : ndarray of shape (num_params,)
        images : ndarray of shape (N, *image_shape)
        roots : ndarray of shape (N, out_dim, K)
            Per row a matrix :math:`R_n` with :math:`R_n R_n^T` the curvature of the loss in
            the network's output (for a Fisher matrix: the output distribution's Fisher).
        weights : ndarray of shape (N,)
            Non-negative row weights.
        extra : ndarray of shape (N, extra_dim), optional

        Returns
        -------
        list of (A, G)
            One pair per layer in the order of θ: every convolution, then every dense
            layer. A convolution's kernel and bias read row-major are the matrix ``V`` of
            shape ``(C k k + 1, C')`` of :func:`trustregion.kronecker_factored_operator`;
            with :math:`\bar a_{n,t} = [\text{patch}_t(h_{l,n}), 1]` the patch at output
            position :math:`t` of :math:`T_l` and :math:`\delta_{n,t,k}` the column
            :math:`R_n e_k` backpropagated to the layer's pre-activation at :math:`t`,

            .. math::

               A_l = \sum_n w_n \sum_t \bar a_{n,t} \bar a_{n,t}^T, \qquad
               G_l = \frac{1}{T_l} \sum_n w_n \sum_k \sum_t
                     \delta_{n,t,k} \delta_{n,t,k}^T,

            the KFC approximation (independent activations and derivatives, spatially
            homogeneous and spatially uncorrelated derivatives) of the layer's block
            :math:`\sum_n w_n \sum_k \mathrm{vec}(\sum_t \bar a_{n,t}
            \delta_{n,t,k}^T) \mathrm{vec}(\cdot)^T`; it is exact for one image and one
            output position. Dense layers as in :meth:`rl.networks.MLP.kronecker_factors`.
        """
        flat = self._check_params(flat_params)
        x, e = self._check_inputs(images, extra)
        n = x.shape[0]
        roots = np.asarray(roots, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if roots.ndim != 3 or roots.shape[:2] != (n, self.out_dim):
            raise ValueError(f"roots must have shape ({n}, {self.out_dim}, K); got "
                             f"{roots.shape}")
        if w.shape[0] != n:
            raise ValueError(f"weights must have {n} entries; got {w.shape[0]}")
        kernels = [(K.astype(np.float64), b.astype(np.float64)) for K, b in self._kernels(flat)]
        dense = [(W.astype(np.float64), b.astype(np.float64)) for W, b in self._dense(flat)]
        layout, shapes, F = self._conv_layout, self.feature_shapes, self.num_features
        conv = [[np.zeros((C * k * k + 1,) * 2), np.zeros((c_out, c_out))]
                for _kern, (C, k, _k, c_out), _b, _k2, _s in layout]
        sizes = self.head.sizes
        heads = [[np.zeros((a + 1, a + 1)), np.zeros((b, b))]
                 for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        for c in self._chunks(n):
            h0 = np.asarray(self._prepare(x[c]), dtype=np.float64)
            m = h0.shape[0]
            acts = [h0]  # every convolution's input, then its output
            for (K, b), (_kern, (_C, k, _k, c_out), _bias, _k2, s), (H, W, _c) in zip(
                    kernels, layout, shapes[1:], strict=True):
                z = _im2col(acts[-1], k, s, H, W) @ K + b
                acts.append(np.maximum(z, 0.0).reshape(m, H, W, c_out))
            a = [self._features(acts[-1].reshape(m, F),
                                None if e is None else e[c]).astype(np.float64)]
            for W, b in dense[:-1]:
                a.append(np.maximum(a[-1] @ W + b, 0.0))
            wc = w[c]
            for k_, h in enumerate(a):  # dense A_k: sum_n w_n [h, 1][h, 1]^T
                ab = np.concatenate([h, np.ones((m, 1))], axis=1)
                heads[k_][0] += ab.T @ (wc[:, None] * ab)
            for l, (_kern, _shape, _bias, k, s) in enumerate(layout):
                H, W, _c = shapes[l + 1]
                P = _im2col(acts[l], k, s, H, W)  # (m T, C k k), rows by image then position
                ab = np.concatenate([P, np.ones((P.shape[0], 1))], axis=1)
                wt = np.repeat(wc, H * W)  # each position carries its image's weight
                conv[l][0] += ab.T @ (wt[:, None] * ab)
            for j in range(roots.shape[2]):  # backpropagate each root column
                delta = roots[c, :, j]
                for k_ in range(len(dense) - 1, -1, -1):
                    heads[k_][1] += delta.T @ (wc[:, None] * delta)
                    W = dense[k_][0]
                    delta = delta @ (W[:F].T if k_ == 0 else W.T)
                    if k_ > 0:
                        delta = delta * (a[k_] > 0.0)
                for l in range(len(layout) - 1, -1, -1):
                    _kern, (_C, k, _k, c_out), _bias, _k2, s = layout[l]
                    H, W, _c = shapes[l + 1]
                    d = delta.reshape(-1, c_out) * (acts[l + 1].reshape(-1, c_out) > 0.0)
                    wt = np.repeat(wc, H * W)
                    conv[l][1] += (d.T @ (wt[:, None] * d)) / (H * W)
                    if l > 0:
                        delta = _col2im(d @ kernels[l][0].T, acts[l].shape, k, s, H, W)
        return [(A, G) for A, G in conv] + [(A, G) for A, G in heads]

    @property
    def _dense_layout(self):
        """``(weight slice, shape, bias slice)`` of each dense layer within the head's θ
        (:class:`rl.networks.MLP`'s layout: row-major weight, then bias, layer by layer)."""
        out, offset = [], 0
        sizes = self.head.sizes
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            w = slice(offset, offset + n_in * n_out)
            b = slice(w.stop, w.stop + n_out)
            offset = b.stop
            out.append((w, (n_in, n_out), b))
        return out

    def _dense(self, flat):
        """The dense layers ``[(W_k, b_k), ...]`` of ``flat`` in the compute dtype."""
        dt = self.dtype
        return [(W.astype(dt), b.astype(dt))
                for W, b in self.head.unflatten(np.asarray(flat)[self._conv_params:])]


def _im2col(h, k, s, H, W):
    """The patch matrix of ``h`` (n, H_in, W_in, C): row ``(n, i, j)`` is the patch at
    ``(s i, s j)`` flattened in ``(C, k, k)`` order, shape ``(n H W, C k k)`` (a copy of a
    strided view)."""
    n, C = h.shape[0], h.shape[3]
    view = sliding_window_view(h, (k, k), axis=(1, 2))[:, ::s, ::s]  # (n, H, W, C, k, k)
    return view.reshape(n * H * W, C * k * k)


def _col2im(cols, shape, k, s, H, W):
    """The adjoint of :func:`_im2col`: add every patch row of ``cols`` (n H W, C k k) back at
    its place in an image of ``shape`` (n, H_in, W_in, C)."""
    n, C = shape[0], shape[3]
    cols = cols.reshape(n, H, W, C, k, k)
    out = np.zeros(shape, dtype=cols.dtype)
    for a in range(k):
        for b in range(k):
            out[:, a:a + s * (H - 1) + 1:s, b:b + s * (W - 1) + 1:s, :] += cols[:, :, :, :, a, b]
    return out
