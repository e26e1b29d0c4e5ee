"""Flat-parameter multilayer perceptrons: one float64 vector θ, one forward pass per purpose.

:class:`MLP` computes ``h_{k+1} = act(h_k W_k + b_k)`` in four ways, each named for what
it serves:

* the **traced pass** (:meth:`MLP.forward` at an autograd box): differentiable by autograd,
  float64;
* the **output pass** (:meth:`MLP.forward` at a plain θ, :meth:`MLP.forward_numpy` on many
  rows): plain numpy in the compute dtype, hidden layers in scratch buffers kept between
  calls;
* the **recording pass** (:meth:`MLP.linearize`, :meth:`MLP.kronecker_factors`): the output
  pass that also keeps every layer's input and activation derivative, which the
  hand-written Jacobian-vector and vector-Jacobian products of the update's hot path
  (gradients, Fisher- and Gauss-Newton-vector products) reuse;
* the **few-rows pass** (:meth:`MLP.forward_numpy` on a sampler step's rows): the output
  pass's arithmetic on fresh arrays, with none of its bookkeeping.

Minibatch regression (the value network's Adam and L-BFGS fits) runs its own pass, forward
and backward on preallocated buffers, in a :class:`SquaredErrorKernel`.
"""

from __future__ import annotations

import weakref
from itertools import pairwise

import autograd.numpy as anp
import numpy as np
from autograd.extend import defjvp, defvjp, primitive
from autograd.tracer import Box

from rl.validation import as_generator
from trustregion import Linearization

__all__ = ["MLP", "SquaredErrorKernel", "orthogonal", "tanh"]

_ACTIVATIONS = ("tanh", "relu", "identity")
_DTYPES = ("float64", "float32")

# below this many entries numpy's own tanh is as fast as the exp form (it costs five
# ufunc calls); above it the exp form is about twice as fast in float64
_EXP_TANH_MIN_SIZE = 2048
# batches of at most this many rows take the plain forward pass of forward_numpy
_SMALL_BATCH = 16
# a network keeps arrays of dropped linearisations for reuse up to this many bytes, and
# only arrays of at least _POOL_MIN_BYTES (smaller ones come cheaply from the C heap)
_POOL_MAX_BYTES = 64 << 20
_POOL_MIN_BYTES = 1 << 16


def _tanh_into(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = tanh(z)``; ``out`` may be ``z``.

    Large float64 arrays use ``tanh(z) = 1 - 2 / (exp(2z) + 1)``: numpy's float64 ``exp``
    is vectorised where its ``tanh`` is not, and the form has absolute error below 1e-15
    (it overflows to the correct limit ±1 for large ``|z|``). float32 ``tanh`` is
    vectorised already.
    """
    if z.size < _EXP_TANH_MIN_SIZE or z.dtype != np.float64:
        return np.tanh(z, out=out)
    np.multiply(z, 2.0, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.divide(2.0, out, out=out)
    np.subtract(1.0, out, out=out)
    return out


@primitive
def tanh(x):
    """``numpy.tanh`` whose derivative reuses the output: ``d tanh(x) = (1 - tanh(x)²) dx``.

    autograd's own rule evaluates ``1 / cosh(x)²`` — a second transcendental pass over
    every hidden unit; this one costs two multiplications. It stays differentiable to any
    order because the rule is written in terms of the (traced) output.

    Examples
    --------
    >>> from autograd import grad
    >>> bool(np.isclose(grad(tanh)(0.5), 1.0 / np.cosh(0.5) ** 2, rtol=1e-14))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    return _tanh_into(x, np.empty_like(x))


defvjp(tanh, lambda ans, x: lambda g: g * (1.0 - ans * ans))
defjvp(tanh, lambda g, ans, x: g * (1.0 - ans * ans))
tanh.__module__ = __name__  # documented (and doctested) as part of this module


def orthogonal(shape: tuple[int, int], gain: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a (semi-)orthogonal matrix scaled by ``gain``.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the matrix.
    gain : float
        Scale applied to the orthogonal matrix.
    rng : numpy.random.Generator
        Source of the Gaussian matrix.

    Returns
    -------
    W : ndarray of shape ``shape``
        ``gain * Q`` with orthonormal columns (rows >= cols) or rows (rows < cols).

    Notes
    -----
    ``Q`` is the factor of the QR decomposition of a standard Gaussian matrix with the
    signs of ``diag(R)`` folded in, which makes ``Q`` Haar-distributed [1]_. This is
    the initialisation of the OpenAI baselines / CleanRL policies.

    References
    ----------
    .. [1] F. Mezzadri, "How to generate random matrices from the classical compact
       groups", Notices of the AMS 54(5), 2007.

    Examples
    --------
    >>> W = orthogonal((5, 3), 2.0, np.random.default_rng(0))
    >>> bool(np.allclose(W.T @ W, 4.0 * np.eye(3)))
    True
    """
    rows, cols = shape
    big, small = max(rows, cols), min(rows, cols)
    A = rng.standard_normal((big, small))
    Q, R = np.linalg.qr(A)
    Q = Q * np.sign(np.where(np.diag(R) == 0.0, 1.0, np.diag(R)))
    if rows < cols:
        Q = Q.T
    return gain * Q


def _times_transpose(delta: np.ndarray, WT: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = δ Wᵀ`` (backpropagation through a layer). With one column ``δ Wᵀ`` is an
    outer product, which broadcasting forms faster than a BLAS matrix product does."""
    if delta.shape[1] == 1:
        return np.multiply(delta, WT, out=out)
    return np.matmul(delta, WT, out=out)


class _Workspace:
    """The arrays one linearisation owns; the products' closures keep it alive."""

    __slots__ = ("arrays", "__weakref__")

    def __init__(self):
        self.arrays: list[np.ndarray] = []


def _return_to_pool(pool: dict, arrays: list) -> None:
    """Give a dead linearisation's arrays back to its network's pool, up to
    ``_POOL_MAX_BYTES`` in all (the rest is freed)."""
    held = sum(a.nbytes for free in pool.values() for a in free)
    for a in arrays:
        if held + a.nbytes <= _POOL_MAX_BYTES:
            pool.setdefault(a.shape, []).append(a)
            held += a.nbytes
    arrays.clear()


class MLP:
    """Fully connected network on a flat parameter vector.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``(in, hidden_1, ..., out)``; at least two entries, all >= 1.
    activation : {"tanh", "relu", "identity"}, default "tanh"
        Hidden-layer nonlinearity; the output layer is linear.
    output_gain : float, default 1.0
        Gain of the orthogonal initialisation of the last layer (0.01 for policy
        heads, 1.0 for value heads, as in the PPO/TRPO reference implementations).
    seed : int >= 0, numpy.random.Generator or None
        Randomness for the initial parameters stored in :attr:`params`.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the numpy passes (:meth:`linearize`, :meth:`forward_numpy` and
        :meth:`forward` at a plain θ). θ itself, the outputs and the Jacobian products'
        results are float64 whatever the choice; float32 computes the layers in single
        precision (about twice as fast, relative rounding ~1e-7, the precision deep-learning
        libraries train in). The autograd-traced :meth:`forward` is float64 always.

    Attributes
    ----------
    sizes : tuple of int
    num_params : int
        Length of the flat parameter vector.
    params : ndarray of shape (num_params,)
        The parameters cached for :meth:`forward_numpy` (a copy; set with
        :meth:`set_params`).

    Notes
    -----
    Layout of θ: for each layer ``k`` in order, the weight ``W_k`` of shape
    ``(sizes[k], sizes[k+1])`` in row-major order, then the bias ``b_k``. The
    forward pass is ``h_{k+1} = act(h_k W_k + b_k)`` with no activation on the last
    layer. Initialisation: orthogonal weights [1]_ with gain √2 on hidden layers and
    ``output_gain`` on the last, zero biases, as in the PPO reference code [2]_.

    References
    ----------
    .. [1] A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the
       nonlinear dynamics of learning in deep linear neural networks", ICLR 2014.
    .. [2] S. Huang et al., "The 37 Implementation Details of Proximal Policy
       Optimization", ICLR Blog Track, 2022.

    Examples
    --------
    >>> net = MLP((3, 8, 2), seed=0)
    >>> net.num_params
    50
    >>> x = np.ones((4, 3))
    >>> bool(np.allclose(net.forward(net.params, x), net.forward_numpy(x)))
    True
    """

    def __init__(self, sizes, *, activation: str = "tanh", output_gain: float = 1.0, seed=None,
                 dtype="float64"):
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"sizes must be a sequence of at least two positive ints (input, ..., output); "
                f"got {sizes!r}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}; got {activation!r}")
        output_gain = float(output_gain)
        if not np.isfinite(output_gain) or output_gain < 0.0:
            raise ValueError(f"output_gain must be a finite number >= 0; got {output_gain!r}")
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
        if name not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}; got {dtype!r}")
        self.dtype = np.dtype(name)
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.output_gain = output_gain
        # (weight slice, weight shape, bias slice) per layer
        self._layout = []
        offset = 0
        for n_in, n_out in pairwise(self.sizes):
            w = slice(offset, offset + n_in * n_out)
            offset += n_in * n_out
            b = slice(offset, offset + n_out)
            offset += n_out
            self._layout.append((w, (n_in, n_out), b))
        self.num_params = offset
        self._weights: list[tuple[np.ndarray, np.ndarray]] = []
        self._scratch: dict = {}
        self._pool: dict = {}  # shape -> arrays of dropped linearisations
        self.set_params(self.init_params(as_generator(seed)))

    def __repr__(self) -> str:
        extra = "" if self.dtype == np.float64 else f", dtype='{self.dtype}'"
        return (
            f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
            f"output_gain={self.output_gain}{extra})"
        )

    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """Draw initial parameters (orthogonal weights, zero biases).

        Parameters
        ----------
        rng : numpy.random.Generator

        Returns
        -------
        theta : ndarray of shape (num_params,), float64

        Examples
        --------
        >>> net = MLP((2, 4, 1), output_gain=0.01)
        >>> theta = net.init_params(np.random.default_rng(1))
        >>> theta.shape, float(abs(theta[-1]))
        ((17,), 0.0)
        """
        theta = np.zeros(self.num_params)
        last = len(self._layout) - 1
        for k, (w, shape, _b) in enumerate(self._layout):
            gain = self.output_gain if k == last else np.sqrt(2.0)
            theta[w] = orthogonal(shape, gain, rng).ravel()
        return theta

    def _check_params(self, flat) -> np.ndarray:
        try:
            flat = np.asarray(flat, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"flat_params must be a 1-D array of {self.num_params} real numbers; got "
                f"{type(flat).__name__}"
            ) from exc
        if flat.shape != (self.num_params,):
            raise ValueError(
                f"flat_params must have shape ({self.num_params},) for an MLP with sizes "
                f"{self.sizes}; got shape {flat.shape}"
            )
        return flat

    def set_params(self, flat) -> None:
        """Cache ``flat`` unflattened as contiguous numpy weights for :meth:`forward_numpy`.

        Parameters
        ----------
        flat : array_like of shape (num_params,)
        """
        flat = self._check_params(flat)
        if not np.all(np.isfinite(flat)):
            raise ValueError("flat_params contains NaN or inf; pass finite parameters")
        self.params = flat.copy()
        dt = self.dtype
        self._weights = [
            (np.ascontiguousarray(self.params[w].reshape(shape), dtype=dt),
             self.params[b].astype(dt))
            for w, shape, b in self._layout
        ]

    def unflatten(self, flat_params):
        """Split θ into ``[(W_0, b_0), (W_1, b_1), ...]`` by slicing (autograd-traceable)."""
        return [(flat_params[w].reshape(shape), flat_params[b]) for w, shape, b in self._layout]

    def forward(self, flat_params, x):
        """Network output for parameters ``flat_params``, traceable by autograd.

        Parameters
        ----------
        flat_params : array_like of shape (num_params,)
            May be an autograd box; anything else (an array, a list) runs the plain
            numpy pass.
        x : ndarray of shape (N, sizes[0])

        Returns
        -------
        y : array of shape (N, sizes[-1])
        """
        if isinstance(flat_params, np.ndarray) or not isinstance(flat_params, Box):
            # not traced: the plain numpy pass
            flat = self._check_params(flat_params)
            x = self._checked_inputs(x)
            return self._output_pass(self._layers(flat), x)
        return self._traced_pass(flat_params, x)

    def _traced_pass(self, flat_params, x):
        """The forward pass in ``autograd.numpy``: differentiable by autograd (float64)."""
        h = x
        layers = self.unflatten(flat_params)
        for k, (W, b) in enumerate(layers):
            h = anp.dot(h, W) + b
            if k < len(layers) - 1:
                if self.activation == "tanh":
                    h = tanh(h)
                elif self.activation == "relu":
                    h = anp.maximum(h, 0.0)
        return h

    def _buffer(self, key, shape) -> np.ndarray:
        """A scratch array of the compute dtype kept between calls (reused, not zeroed).

        Large temporaries allocated afresh on every pass are mapped and unmapped by the C
        allocator each time, and the page faults of touching them again can cost as much as
        the arithmetic of a small network's pass (``benchmarks/bench_update.py`` times the
        update these passes make up).
        """
        buf = self._scratch.get((key, shape))
        if buf is None:
            buf = self._scratch[(key, shape)] = np.empty(shape, dtype=self.dtype)
        return buf

    def _take(self, workspace, shape) -> np.ndarray:
        """An array of the compute dtype owned by ``workspace`` (one linearisation) until
        that is dropped: from the pool of arrays of dropped linearisations if one of this
        shape is there, else fresh. Same reason as :meth:`_buffer`: a linearisation on
        4096 rows otherwise maps and page-faults about 8 MB of fresh memory."""
        free = self._pool.get(shape)
        buf = free.pop() if free else np.empty(shape, dtype=self.dtype)
        if buf.nbytes >= _POOL_MIN_BYTES:
            workspace.arrays.append(buf)
        return buf

    def _workspace(self) -> _Workspace:
        """A fresh owner for :meth:`_take`; its arrays return to the pool when it dies."""
        workspace = _Workspace()
        weakref.finalize(workspace, _return_to_pool, self._pool, workspace.arrays)
        return workspace

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_scratch"] = {}  # scratch space is not part of the network
        state["_pool"] = {}
        return state

    def _layers(self, flat):
        """``[(W_k, b_k), ...]`` of ``flat`` in the compute dtype (views when float64)."""
        dt = self.dtype
        return [(flat[w].reshape(shape).astype(dt, copy=False), flat[b].astype(dt, copy=False))
                for w, shape, b in self._layout]

    def _checked_inputs(self, x) -> np.ndarray:
        """``x`` as an ``(N, sizes[0])`` array of the compute dtype, or ``ValueError``."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x must have shape (N, {self.sizes[0]}); got shape {x.shape}")
        return x.astype(self.dtype, copy=False)

    def _output_pass(self, layers, x) -> np.ndarray:
        """The numpy forward pass at ``layers`` (:meth:`_layers`, or the cached weights) on
        checked inputs ``x``: the float64 output, the hidden layers computed in scratch
        space that the next pass reuses (:meth:`_buffer`)."""
        last = len(layers) - 1
        h = x
        for k, (W, b) in enumerate(layers):
            if k == last:
                z = h @ W  # the output: a fresh array
            else:
                z = np.matmul(h, W, out=self._buffer(k, (x.shape[0], W.shape[1])))
            z += b
            if k < last:
                if self.activation == "tanh":
                    _tanh_into(z, z)
                elif self.activation == "relu":
                    np.maximum(z, 0.0, out=z)
            h = z
        return h.astype(np.float64, copy=False)

    def _recording_pass(self, layers, x, workspace):
        """The output pass that keeps what the Jacobian products reuse: returns the float64
        output, every layer's input ``h_k`` (``x`` first) and every hidden layer's activation
        derivative ``act'(z_k)`` (``None`` for the identity), in arrays ``workspace`` (a
        :meth:`_workspace`) owns until it is dropped."""
        last = len(layers) - 1
        inputs, derivs = [x], []
        h = x
        for k, (W, b) in enumerate(layers):
            shape = (x.shape[0], W.shape[1])
            if k == last:
                z = h @ W  # the output: a fresh array
            else:
                z = np.matmul(h, W, out=self._take(workspace, shape))
            z += b
            if k < last:
                if self.activation == "tanh":
                    _tanh_into(z, z)
                    d = np.multiply(z, z, out=self._take(workspace, shape))
                    np.subtract(1.0, d, out=d)  # tanh' = 1 - tanh²
                    derivs.append(d)
                elif self.activation == "relu":
                    derivs.append(np.greater(z, 0.0, out=self._take(workspace, shape)))
                    np.maximum(z, 0.0, out=z)
                else:
                    derivs.append(None)
                inputs.append(z)
            h = z
        return h.astype(np.float64, copy=False), inputs, derivs

    def linearize(self, flat_params, x) -> Linearization:
        """The network linearised at ``flat_params``: output and Jacobian products.

        One forward pass caches every layer's input ``h_k`` and activation derivative
        ``act'(z_k)``; the products then reuse them (no autograd trace):

        * ``jvp(v)``: ``dz_k = dh_k W_k + h_k dW_k + db_k``, ``dh_{k+1} = act'(z_k) ⊙ dz_k``
          (forward mode, two matrix products per layer);
        * ``vjp(u)``: ``dW_k = h_kᵀ δ_k``, ``db_k = Σ_n δ_k``, ``δ_{k-1} = (δ_k W_kᵀ) ⊙
          act'(z_{k-1})`` (backpropagation, two matrix products per layer).

        The cached activations and the products' work arrays are reused by later
        linearisations of this network once the returned object and its ``jvp`` and
        ``vjp`` are all dropped; until then they are this linearisation's alone.

        Parameters
        ----------
        flat_params : ndarray of shape (num_params,)
        x : ndarray of shape (N, sizes[0])

        Returns
        -------
        trustregion.Linearization
            ``output`` of shape (N, sizes[-1]); ``jvp`` maps a (num_params,) vector to
            an (N, sizes[-1]) array and ``vjp`` back; both agree with autograd's
            products of :meth:`forward` to rounding (``tests/rl/test_networks.py``).

        Examples
        --------
        >>> net = MLP((3, 8, 2), seed=0)
        >>> x = np.random.default_rng(1).standard_normal((5, 3))
        >>> lin = net.linearize(net.params, x)
        >>> bool(np.allclose(lin.output, net.forward_numpy(x)))
        True
        >>> lin.check(net.num_params, np.random.default_rng(2)) < 1e-12
        True
        """
        flat = self._check_params(flat_params)
        x = self._checked_inputs(x)
        layers = self._layers(flat)
        workspace = self._workspace()  # its arrays return to the pool with the products
        y, inputs, derivs = self._recording_pass(layers, x, workspace)
        layout = self._layout
        weights = [W for W, _b in layers]
        n_params, n_layers = self.num_params, len(layout)
        dt = self.dtype

        n_rows = y.shape[0]
        scratch = {}  # this linearisation's own work arrays, reused by every product

        def work(key, cols):  # the products reach the workspace through this closure
            buf = scratch.get(key)
            if buf is None:
                buf = scratch[key] = self._take(workspace, (n_rows, cols))
            return buf

        def jvp(v):
            v = np.asarray(v, dtype=np.float64).reshape(-1)
            if v.shape[0] != n_params:
                raise ValueError(f"v must have {n_params} entries; got {v.shape[0]}")
            dh = None
            for k, (w, shape, b) in enumerate(layout):
                dW = v[w].reshape(shape).astype(dt, copy=False)
                if k < n_layers - 1:
                    dz = np.matmul(inputs[k], dW, out=work(("dz", k), shape[1]))
                else:
                    dz = inputs[k] @ dW  # the result: a fresh array
                if dh is not None:
                    dz += np.matmul(dh, weights[k], out=work(("tmp", k), shape[1]))
                dz += v[b].astype(dt, copy=False)
                if k < n_layers - 1 and derivs[k] is not None:
                    dz *= derivs[k]
                dh = dz
            return dh.astype(np.float64, copy=False)

        def vjp(u):
            delta = np.asarray(u, dtype=dt).reshape(y.shape)
            g = np.empty(n_params)
            ones = scratch.get("ones")
            if ones is None:
                ones = scratch["ones"] = np.ones(n_rows, dtype=dt)
            for k in range(n_layers - 1, -1, -1):
                w, shape, b = layout[k]
                g[w] = (inputs[k].T @ delta).reshape(-1)
                g[b] = ones @ delta  # Σ_n δ as a product: faster than sum(axis=0)
                if k > 0:
                    delta = _times_transpose(delta, weights[k].T, work(("delta", k), shape[0]))
                    if derivs[k - 1] is not None:
                        delta *= derivs[k - 1]
            return g

        return Linearization(y, jvp, vjp)

    def kronecker_factors(self, flat_params, x, roots, weights):
        """Per-layer K-FAC factors for an output curvature given by its square roots.

        Parameters
        ----------
        flat_params : ndarray of shape (num_params,)
        x : ndarray of shape (N, sizes[0])
        roots : ndarray of shape (N, sizes[-1], K)
            Per row a matrix :math:`R_n` with :math:`R_n R_n^T` the curvature of the loss in
            the network's output (for a Fisher matrix: the output distribution's Fisher).
        weights : ndarray of shape (N,)
            Non-negative row weights.

        Returns
        -------
        list of (A, G)
            One pair per layer, in the order of the parameter layout:
            :math:`A_l = \\sum_n w_n \\bar a_n \\bar a_n^T` with :math:`\\bar a_n = [h_{l,n}, 1]`
            the layer's input and a one for the bias, of size ``sizes[l] + 1``, and
            :math:`G_l = \\sum_n w_n \\sum_k \\delta_{l,n,k} \\delta_{l,n,k}^T`, with
            :math:`\\delta_{l,n,k}` the column :math:`R_n e_k` backpropagated to the layer's
            pre-activation, of size ``sizes[l + 1]``. The layer's parameters ``[W_l; b_l]``
            read row-major are the matrix ``V`` of :func:`trustregion.kronecker_factored_operator`,
            and :math:`A_l \\otimes G_l` is the K-FAC approximation of their block
            (Martens & Grosse 2015), with the expectation over the output distribution taken
            exactly through :math:`R_n`.
        """
        flat = self._check_params(flat_params)
        roots = np.asarray(roots, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        x = np.asarray(x)
        if roots.ndim != 3 or roots.shape[:2] != (x.shape[0], self.sizes[-1]):
            raise ValueError(f"roots must have shape ({x.shape[0]}, {self.sizes[-1]}, K); got "
                             f"{roots.shape}")
        if w.shape[0] != x.shape[0]:
            raise ValueError(f"weights must have {x.shape[0]} entries; got {w.shape[0]}")
        layers = self._layers(flat)
        _, inputs, derivs = self._recording_pass(layers, self._checked_inputs(x),
                                                 self._workspace())
        factors = []
        for k, h in enumerate(inputs):
            a = np.empty((h.shape[0], h.shape[1] + 1))
            a[:, :-1] = h
            a[:, -1] = 1.0
            factors.append([a.T @ (w[:, None] * a), np.zeros((self.sizes[k + 1],) * 2)])
        for j in range(roots.shape[2]):  # backpropagate each root column
            delta = roots[:, :, j]
            for k in range(len(layers) - 1, -1, -1):
                factors[k][1] += delta.T @ (w[:, None] * delta)
                if k > 0:
                    delta = delta @ np.asarray(layers[k][0], dtype=np.float64).T
                    if derivs[k - 1] is not None:
                        delta = delta * derivs[k - 1]
        return [(A, G) for A, G in factors]

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """Network output at the cached parameters, plain numpy (the sampling hot path):
        the forward pass of :meth:`forward` on the weights :meth:`set_params` stored in the
        compute dtype.

        Parameters
        ----------
        x : ndarray of shape (N, sizes[0])

        Returns
        -------
        y : ndarray of shape (N, sizes[-1])
        """
        x = np.asarray(x)
        if x.ndim == 2 and x.shape[0] <= _SMALL_BATCH and x.shape[1] == self.sizes[0]:
            return self._few_rows_pass(x)
        return self._output_pass(self._weights, self._checked_inputs(x))

    def _few_rows_pass(self, x):
        """The forward pass for a few rows (a sampler step) at the cached weights: fresh
        arrays, no bookkeeping.

        The arithmetic of :meth:`_output_pass`, so the same numbers; kept apart because for
        a handful of rows the scratch-buffer lookups of that pass cost as much as the
        products themselves.
        """
        h = x.astype(self.dtype, copy=False)
        act = self.activation
        for W, b in self._weights[:-1]:
            h = h @ W
            h += b
            if act == "tanh":
                _tanh_into(h, h)
            elif act == "relu":
                np.maximum(h, 0.0, out=h)
        W, b = self._weights[-1]
        y = h @ W
        y += b
        return y.astype(np.float64, copy=False)


class SquaredErrorKernel:
    """``½ mean ‖net_θ(x) − z‖²`` and its gradient in θ, for many batches at changing θ.

    The minibatch fits of a value network (Adam, L-BFGS) evaluate this loss and gradient
    hundreds of times per update on small batches (128 rows), where the work is a few
    tiny matrix products and the cost is the numpy calls around them. The kernel keeps
    the weights and the gradient as views into two flat arrays of the network's compute
    dtype, and every activation in buffers sized for ``max_rows``, so that one
    evaluation is one forward pass and one backpropagation with no allocation, slicing
    or conversion of θ (:meth:`MLP.linearize` followed by its ``vjp`` does the same
    arithmetic with that overhead, and is what the tests compare against).

    Parameters
    ----------
    net : MLP
        The network; its architecture and compute dtype are read once.
    max_rows : int
        The largest batch the kernel will see.

    Notes
    -----
    With residual ``r = net_θ(x) − z`` over ``n`` rows, the loss is ``½ Σ r² / n`` and
    the gradient is backpropagation of ``δ = r / n``: ``∇W_k = h_kᵀ δ_k``, ``∇b_k = Σ_n
    δ_k``, ``δ_{k-1} = (δ_k W_kᵀ) ⊙ act'(z_{k-1})``, with ``tanh' = 1 − h²`` and
    ``relu' = [h > 0]`` computed from the stored activations ``h``.

    Examples
    --------
    >>> net = MLP((3, 8, 1), seed=0)
    >>> x, z = np.random.default_rng(1).standard_normal((2, 5, 3))[0], np.ones(5)
    >>> kernel = SquaredErrorKernel(net, max_rows=5)
    >>> kernel.set_params(net.params)
    >>> loss, grad = kernel(x, z)
    >>> lin = net.linearize(net.params, x)
    >>> r = lin.output[:, 0] - z
    >>> bool(np.isclose(loss, 0.5 * r @ r / 5)) and bool(np.allclose(grad, lin.vjp(r[:, None] / 5)))
    True
    """

    def __init__(self, net: MLP, max_rows: int):
        if not isinstance(net, MLP):
            raise ValueError(f"net must be an rl.networks.MLP; got {type(net).__name__}")
        if isinstance(max_rows, bool) or int(max_rows) != max_rows or max_rows < 1:
            raise ValueError(f"max_rows must be a positive integer; got {max_rows!r}")
        self.net = net
        self.max_rows = int(max_rows)
        dt = net.dtype
        self._theta = np.empty(net.num_params, dtype=dt)
        self._grad = np.empty(net.num_params, dtype=dt)
        self._W = [self._theta[w].reshape(shape) for w, shape, _b in net._layout]
        self._b = [self._theta[b] for _w, _shape, b in net._layout]
        self._gW = [self._grad[w].reshape(shape) for w, shape, _b in net._layout]
        self._gb = [self._grad[b] for _w, _shape, b in net._layout]
        self._WT = [W.T for W in self._W]
        self._h = [np.empty((self.max_rows, n), dtype=dt) for n in net.sizes[1:]]
        self._delta = [np.empty((self.max_rows, n), dtype=dt) for n in net.sizes[1:-1]]
        self._deriv = [np.empty((self.max_rows, n), dtype=dt) for n in net.sizes[1:-1]]
        self._ones = np.ones(self.max_rows, dtype=dt)
        self._loaded = False

    def set_params(self, flat) -> None:
        """Load θ (float64, shape ``(num_params,)``) into the kernel's weights."""
        flat = self.net._check_params(flat)
        self._theta[...] = flat
        self._loaded = True

    @property
    def params(self) -> np.ndarray:
        """The kernel's θ in the compute dtype: the array its weights are views of.

        An optimiser may update it in place between calls (:meth:`rl.optimizers.Adam.
        step_in_place`); read the result back with ``params.astype(numpy.float64)``.
        """
        return self._theta

    def __call__(self, x, z, *, copy=True):
        """``(loss, gradient)`` at the loaded θ on rows ``x`` with targets ``z``.

        Parameters
        ----------
        x : ndarray of shape (n, sizes[0]), ``n <= max_rows``
        z : ndarray of shape (n,) (one output) or (n, sizes[-1])

        copy : bool, default True
            ``False`` returns the kernel's own gradient buffer, in the compute dtype, which
            the next call overwrites.

        Returns
        -------
        loss : float
        gradient : ndarray of shape (num_params,)
            A fresh float64 array, or with ``copy=False`` the buffer.
        """
        if not self._loaded:
            raise ValueError("no parameters loaded; call set_params(theta) first")
        net = self.net
        n = x.shape[0] if x.ndim == 2 else -1
        if x.ndim != 2 or x.shape[1] != net.sizes[0] or not 1 <= n <= self.max_rows:
            raise ValueError(f"x must have shape (n, {net.sizes[0]}) with 1 <= n <= max_rows = "
                             f"{self.max_rows}; got shape {x.shape}")
        out_dim = net.sizes[-1]
        if z.shape not in ((n, out_dim), (n,) if out_dim == 1 else None):
            raise ValueError(f"z must have shape ({n}, {out_dim})"
                             + (f" or ({n},)" if out_dim == 1 else "") + f"; got {z.shape}")
        dt = net.dtype
        if x.dtype != dt:
            x = x.astype(dt)
        if z.dtype != dt:
            z = z.astype(dt)
        last = len(self._W) - 1
        act = net.activation
        h = x
        hs = [x]
        for k in range(last + 1):
            a = np.dot(h, self._W[k], out=self._h[k][:n])
            a += self._b[k]
            if k < last:
                if act == "tanh":
                    np.tanh(a, out=a)
                elif act == "relu":
                    np.maximum(a, 0.0, out=a)
                hs.append(a)
            h = a
        delta = h  # the output buffer becomes the residual, then δ = r / n
        delta -= z.reshape(n, out_dim)
        r = delta.ravel()
        loss = 0.5 * float(r @ r) / n
        delta *= 1.0 / n
        ones = self._ones[:n]
        for k in range(last, -1, -1):
            np.dot(hs[k].T, delta, out=self._gW[k])
            np.dot(ones, delta, out=self._gb[k])  # Σ_n δ as a product: faster than sum
            if k > 0:
                prev = _times_transpose(delta, self._WT[k], self._delta[k - 1][:n])
                a = hs[k]
                if act == "tanh":
                    d = np.multiply(a, a, out=self._deriv[k - 1][:n])
                    np.subtract(1.0, d, out=d)
                    prev *= d
                elif act == "relu":
                    prev *= a > 0.0
                delta = prev
        return loss, (self._grad.astype(np.float64) if copy else self._grad)
